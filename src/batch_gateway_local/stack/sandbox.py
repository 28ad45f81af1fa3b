"""The process made safe for moto, and moto checked against the release this package was written for.

:func:`offline_environment` sets fake credentials and the region and removes profile, endpoint and
container-credential variables, so no boto3 client can reach a real AWS endpoint.
:func:`share_global_sdk_settings` keeps the template's Globals ``AWS_*`` SDK settings set for the
whole process. :func:`check_moto_internals` lists what changed in the private moto pieces the
offline stack patches (the Lambda invoke, stream and event-rule hooks, S3 events, CloudFormation's
parser); the stack refuses to start when that list is not empty.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from batch_gateway_local.stack.event_rules import check_event_rule_hook
from batch_gateway_local.stack.lambda_runtime.runtime import check_invoke_hook
from batch_gateway_local.stack.s3_events import check_s3_event_hooks
from batch_gateway_local.stack.stream_mappings import check_stream_hook

TESTED_MOTO_VERSION = "5.2.5"
"""The moto release whose private hooks this module was written against (pinned in pyproject)."""

FAKE_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_SECURITY_TOKEN": "testing",
}

_REMOVED_ENV_PREFIXES = (
    "AWS_PROFILE",
    "AWS_DEFAULT_PROFILE",
    "AWS_ENDPOINT_URL",
    "AWS_CONTAINER_CREDENTIALS",
    "AWS_CONTAINER_AUTHORIZATION_TOKEN",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
    "AWS_ROLE_ARN",
    "AWS_ROLE_SESSION_NAME",
    "TEST_SERVER_MODE",
)


def check_moto_internals() -> list[str]:
    """Problems with the private moto pieces this package relies on (empty when all is as expected)."""
    problems = check_invoke_hook() + check_stream_hook() + check_event_rule_hook() + check_s3_event_hooks()
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


def offline_environment(region: str) -> None:
    for key in list(os.environ):
        if key.startswith(_REMOVED_ENV_PREFIXES):
            del os.environ[key]
    os.environ.update(FAKE_CREDENTIALS)
    os.environ.update(
        {
            "AWS_DEFAULT_REGION": region,
            "AWS_REGION": region,
            "AWS_EC2_METADATA_DISABLED": "true",
            "AWS_CONFIG_FILE": os.devnull,
            "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
        }
    )


def share_global_sdk_settings(template: Mapping[str, Any]) -> None:
    """Keep the SDK settings every function gets (Globals ``AWS_*`` variables) set for the whole process.

    Handlers swap ``os.environ`` per invocation while the Step Functions interpreter's threads create
    boto3 clients: botocore reads a setting as ``if name in os.environ: os.environ[name]``, so a key a
    swap deletes between the two steps failed an execution with ``States.Runtime: 'AWS_RETRY_MODE'``.
    Set once for everyone, such keys are the same before, during and after every invocation.
    """
    globals_env = template.get("Globals", {}).get("Function", {}).get("Environment", {}).get("Variables", {})
    for key, value in globals_env.items():
        if key.startswith("AWS_") and isinstance(value, str):
            os.environ[key] = value
