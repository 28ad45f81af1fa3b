"""Metrics (CloudWatch embedded metric format through Powertools): one shared instance per function.

Handlers flush with ``@metrics.log_metrics``; the domain adds what it measures. Metric values are
counts, durations and dollars only: prompts, answers and keys never go into metrics or logs.
"""

from __future__ import annotations

import os

from aws_lambda_powertools import Metrics
from aws_lambda_powertools.metrics import MetricUnit

# The template sets the namespace; the default keeps metrics valid wherever the package is imported.
metrics = Metrics(namespace=os.environ.get("POWERTOOLS_METRICS_NAMESPACE", "BatchGateway"))

__all__ = ["MetricUnit", "metrics"]
