"""Logger, Tracer and Metrics: made once here, imported by every handler and domain module.

Powertools for AWS Lambda does the work: JSON logs with the invocation's keys, X-Ray traces, and
CloudWatch metrics in embedded metric format. Handlers decorate with ``@logger.inject_lambda_context``,
``@tracer.capture_lambda_handler`` and ``@metrics.log_metrics``; the domain logs and measures through
the same instances, so a key a handler appends (a job id, a chunk) is on every line of that
invocation. Metric values are counts, durations and dollars only: prompts, answers and keys never go
into metrics or logs.
"""

from __future__ import annotations

import os

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit

# The template sets the service name and namespace; the defaults keep both valid wherever the
# package is imported (tests, the bench, the offline stack).
logger = Logger()
tracer = Tracer()
metrics = Metrics(namespace=os.environ.get("POWERTOOLS_METRICS_NAMESPACE", "BatchGateway"))

__all__ = ["MetricUnit", "logger", "metrics", "tracer"]
