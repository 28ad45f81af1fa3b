"""Logger, Tracer and Metrics: made once here, imported by every handler and domain module.

Powertools for AWS Lambda does the work: JSON logs with the invocation's keys, X-Ray traces, and
CloudWatch metrics in embedded metric format. Handlers decorate with ``@logger.inject_lambda_context``,
``@tracer.capture_lambda_handler`` and ``@metrics.log_metrics``; the domain logs and measures through
the same instances, so a key a handler appends (a job id, a chunk) is on every line of that
invocation. Metric values are counts, durations and dollars only: prompts, answers and keys never go
into metrics or logs.
"""

from __future__ import annotations

import logging
import os
import sys
from typing import TextIO

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit


class _CurrentStdout(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes each record to ``sys.stdout`` as it is at that moment.

    A StreamHandler keeps the stream it was made with; this logger is made once, at import, which may
    be before a runtime swaps stdout (the offline stack captures each invocation's output that way).
    """

    @property
    def stream(self) -> TextIO:
        return sys.stdout

    @stream.setter
    def stream(self, _value: TextIO) -> None:
        pass  # StreamHandler.__init__ assigns one; the current stdout is always used instead


# The template sets the service name and namespace; the defaults are the template's, so logs and
# metrics read the same wherever the package is imported first (a function, a test, the bench).
SERVICE = os.environ.get("POWERTOOLS_SERVICE_NAME") or "batch-gateway"
logger = Logger(service=SERVICE, logger_handler=_CurrentStdout())
tracer = Tracer(service=SERVICE)
metrics = Metrics(namespace=os.environ.get("POWERTOOLS_METRICS_NAMESPACE", "BatchGateway"))

__all__ = ["MetricUnit", "logger", "metrics", "tracer"]
