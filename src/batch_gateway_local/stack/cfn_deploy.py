"""The CloudFormation steps of entering an OfflineStack: create the stack, then finish what moto skips.

:func:`create_stack` creates the translated template's stack in moto's CloudFormation, waits for it
and reads back what it made (:class:`CreatedStack`), or raises OfflineStackError with each failed
resource's reason. Then, once the offline IAM check is in place, the steps that apply what moto's
CloudFormation ignores, through the services' own APIs: each function's ``Layers``
(:func:`attach_function_layers`), each bucket's configuration (:func:`configure_buckets`), each
table's ``TimeToLiveSpecification`` (:func:`configure_table_ttl`), and every state machine recreated
on the executing Step Functions backend (:func:`recreate_state_machines`).

Apart from :mod:`.offline_stack` (the context manager: the order of the steps, the patches, what
it exposes) because these are the deployment itself: what was asked of moto and how it answered.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from batch_gateway_local.stack.errors import OfflineStackError
from batch_gateway_local.stack.sam.buckets import s3_bucket_configuration_calls
from batch_gateway_local.stack.sam.cfn_extensions import CloudFormationExtensions
from batch_gateway_local.stack.sam.lambda_resources import attach_layers
from batch_gateway_local.stack.sam.state_machines import check_overrides_used, recreate_state_machine

Resolve = Callable[[Any], Any]
"""Resolves CloudFormation intrinsics against the deployed stack (``OfflineStack.resolve``)."""


@dataclass
class CreatedStack:
    """What moto's CloudFormation made of the template."""

    stack_id: str
    outputs: dict[str, str]
    resources: dict[str, str]
    """Logical id -> physical id."""
    resource_types: dict[str, str]


def create_stack(
    cfn: Any,
    stack_name: str,
    template_path: Path,
    translated: Mapping[str, Any],
    parameters: Mapping[str, str],
    extensions: CloudFormationExtensions,
) -> CreatedStack:
    """Create the stack and wait until it is complete (30 s at most); raise what failed otherwise."""
    try:
        response = cfn.create_stack(
            StackName=stack_name,
            TemplateBody=json.dumps(translated),
            Parameters=[{"ParameterKey": k, "ParameterValue": v} for k, v in parameters.items()],
            Capabilities=["CAPABILITY_IAM", "CAPABILITY_NAMED_IAM", "CAPABILITY_AUTO_EXPAND"],
        )
    except Exception as exc:
        report = _creation_report(stack_name, template_path, f"{type(exc).__name__}: {exc}", extensions)
        raise OfflineStackError(report) from exc
    stack_id = str(response["StackId"])
    deadline = time.monotonic() + 30
    while True:
        stack = cfn.describe_stacks(StackName=stack_id)["Stacks"][0]
        status = str(stack["StackStatus"])
        if not status.endswith("IN_PROGRESS"):
            break
        if time.monotonic() > deadline:
            raise OfflineStackError(f"stack {stack_name} still {status} after 30 s")
        time.sleep(0.05)
    if status != "CREATE_COMPLETE":
        events = cfn.describe_stack_events(StackName=stack_id)["StackEvents"]
        reasons = [
            f"{e.get('LogicalResourceId')}: {e.get('ResourceStatus')} {e.get('ResourceStatusReason', '')}"
            for e in events
            if "FAILED" in str(e.get("ResourceStatus", ""))
        ]
        error = f"stack status {status}; " + "; ".join(reasons)
        raise OfflineStackError(_creation_report(stack_name, template_path, error, extensions))
    created = CreatedStack(
        stack_id=stack_id,
        outputs={str(o["OutputKey"]): str(o["OutputValue"]) for o in stack.get("Outputs", [])},
        resources={},
        resource_types={},
    )
    for resource in cfn.describe_stack_resources(StackName=stack_id)["StackResources"]:
        if "LogicalResourceId" not in resource:
            continue  # moto lists a resource whose Condition is false as an empty entry
        logical_id = str(resource["LogicalResourceId"])
        created.resources[logical_id] = str(resource.get("PhysicalResourceId", ""))
        created.resource_types[logical_id] = str(resource["ResourceType"])
    return created


def _creation_report(
    stack_name: str, template_path: Path, error: str, extensions: CloudFormationExtensions
) -> str:
    lines = [f"creating stack {stack_name!r} from {template_path} in moto failed"]
    if extensions.failures:
        lines[0] += "; resource failures (innermost first):"
        unique = dict.fromkeys(
            f"  - {f.logical_id} ({f.resource_type}): {f.error}" for f in extensions.failures
        )
        lines.extend(unique)
        lines.append(f"moto's CreateStack response: {error}")
    else:
        lines[0] += f": {error}"
    return "\n".join(lines)


def template_resources(
    translated: Mapping[str, Any], resources: Mapping[str, str], resource_type: str
) -> list[tuple[str, dict[str, Any]]]:
    """The template's resources of one type that the stack created: (logical id, resource)."""
    return [
        (logical_id, resource)
        for logical_id, resource in translated["Resources"].items()
        if resource.get("Type") == resource_type and logical_id in resources
    ]


def attach_function_layers(
    lam: Any, translated: Mapping[str, Any], resources: Mapping[str, str], resolve: Resolve
) -> None:
    """moto's CloudFormation drops a function's ``Layers``; set them through the Lambda API."""
    functions = [
        (logical_id, resources[logical_id], resolve(layers))
        for logical_id, resource in template_resources(translated, resources, "AWS::Lambda::Function")
        if (layers := (resource.get("Properties") or {}).get("Layers"))
    ]
    attach_layers(lam, functions)


def configure_buckets(
    s3: Any, translated: Mapping[str, Any], resources: Mapping[str, str], resolve: Resolve
) -> None:
    """Each bucket's notifications, versioning and lifecycle, through the S3 API."""
    for logical_id, resource in template_resources(translated, resources, "AWS::S3::Bucket"):
        properties = resolve(resource.get("Properties") or {})
        for operation, kwargs in s3_bucket_configuration_calls(properties):
            try:
                getattr(s3, operation)(Bucket=resources[logical_id], **kwargs)
            except Exception as exc:
                raise OfflineStackError(f"{logical_id}: {operation} failed: {exc}") from exc


def configure_table_ttl(
    dynamodb: Any, translated: Mapping[str, Any], resources: Mapping[str, str], resolve: Resolve
) -> None:
    """moto's CloudFormation ignores a table's ``TimeToLiveSpecification``; set it through the API."""
    for logical_id, resource in template_resources(translated, resources, "AWS::DynamoDB::Table"):
        ttl = resolve((resource.get("Properties") or {}).get("TimeToLiveSpecification"))
        if not isinstance(ttl, dict) or str(ttl.get("Enabled")).lower() != "true":
            continue
        dynamodb.update_time_to_live(
            TableName=resources[logical_id],
            TimeToLiveSpecification={"AttributeName": str(ttl["AttributeName"]), "Enabled": True},
        )


def recreate_state_machines(
    clients: tuple[Any, Any],
    translated: Mapping[str, Any],
    resources: Mapping[str, str],
    resolve: Resolve,
    overrides: Mapping[str, str],
    account_id: str,
) -> dict[str, str]:
    """Every state machine again on the executing backend (``sam.state_machines``), with the
    ``definition_substitution_overrides`` applied (each must be used); logical id -> ARN."""
    state_machines: dict[str, str] = {}
    used: set[str] = set()
    for logical_id, resource in template_resources(translated, resources, "AWS::StepFunctions::StateMachine"):
        arn = resources[logical_id]
        properties = resolve(resource.get("Properties") or {})
        used |= recreate_state_machine(clients, logical_id, arn, properties, overrides, account_id)
        state_machines[logical_id] = arn
    check_overrides_used(overrides, used)
    return state_machines
