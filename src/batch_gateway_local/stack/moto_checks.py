"""The private moto pieces the offline stack patches, checked against the release it was written for.

:func:`check_moto_internals` lists what changed in them (the Lambda invoke, stream-mapping and
event-rule hooks, S3 events, CloudFormation's parser, the Step Functions interpreter's thread list and
its Distributed Map worker, whose children's histories ``sfn_history`` records, and the execution
stop that ``sfn_stop`` makes immediate);
the stack refuses to start when that list is not empty, and the tests fail when the installed moto is
not :data:`TESTED_MOTO_VERSION`, so an upgrade of moto is a deliberate step.
"""

from __future__ import annotations

from batch_gateway_local.stack.event_rules import check_event_rule_hook
from batch_gateway_local.stack.lambda_runtime.runtime import check_invoke_hook
from batch_gateway_local.stack.s3_events import check_s3_event_hooks
from batch_gateway_local.stack.sfn_history import check_child_history_hook
from batch_gateway_local.stack.sfn_stop import check_stop_hook
from batch_gateway_local.stack.stream_mappings import check_stream_hook

TESTED_MOTO_VERSION = "5.2.5"
"""The moto release whose private hooks this module was written against (pinned in pyproject)."""


def check_moto_internals() -> list[str]:
    """Problems with the private moto pieces this package relies on (empty when all is as expected)."""
    problems = check_invoke_hook() + check_stream_hook() + check_event_rule_hook() + check_s3_event_hooks()
    problems += check_child_history_hook() + check_stop_hook()
    try:
        from moto.cloudformation import parsing
        from moto.cloudformation.models import cloudformation_backends
        from moto.stepfunctions.parser.utils import TMP_THREADS
    except ImportError as exc:  # pragma: no cover - only with another moto
        return [*problems, f"moto module moved: {exc}"]
    for name in (
        "resource_class_from_type",
        "parse_and_create_resource",
        "clean_json",
        "get_model_map",
        "NULL_MODELS",
    ):
        if not hasattr(parsing, name):
            problems.append(f"moto.cloudformation.parsing.{name} no longer exists")
    if not hasattr(cloudformation_backends, "__getitem__"):
        problems.append("moto.cloudformation.models.cloudformation_backends is not a mapping")
    if not isinstance(TMP_THREADS, list):
        problems.append("moto.stepfunctions.parser.utils.TMP_THREADS is not a list")
    from moto.awslambda.models import LambdaBackend, LambdaFunction

    if not hasattr(LambdaBackend, "layers_versions_by_arn"):
        problems.append("moto.awslambda.models.LambdaBackend.layers_versions_by_arn no longer exists")
    if not hasattr(LambdaFunction, "save_logs"):
        problems.append("moto.awslambda.models.LambdaFunction.save_logs no longer exists")
    return problems
