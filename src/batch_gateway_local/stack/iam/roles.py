"""Each principal's policy statements, from the translated template, resolved against the stack.

A function's ``Role`` is a ``GetAtt`` of an ``AWS::IAM::Role`` in the template (SAM makes one per
function from ``Policies``); its inline ``Policies``, the ``ManagedPolicyArns`` that are the
template's own ``AWS::IAM::ManagedPolicy`` (e.g. DataKeyUsePolicy) and the ``AWS::IAM::Policy``s
attached to it by ``Roles`` are the statements checked. The same for the other principals whose
calls are made offline: a state machine's ``RoleArn`` (moto's interpreter acts for it) and a role
that trusts ``bedrock.amazonaws.com`` (the emulator's Bedrock acts for it), keyed by their ARN.
AWS managed policies (AWSLambdaBasicExecutionRole: Lambda's own log delivery) are read from moto's
copy and used to allow, but are not reported as unused grants: no handler calls them.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, cast

from batch_gateway_local.stack.iam.policy import Statement


@dataclass
class FunctionPolicy:
    logical_id: str
    function_name: str
    role_name: str
    statements: list[Statement] = field(default_factory=list)
    aws_managed: set[str] = field(default_factory=set)
    """Labels of statements that come from AWS managed policies."""
    known: bool = True
    """False when the role is not in the template (its statements are unknown: not checked)."""
    role_logical_id: str = ""


def function_policies(
    translated: Mapping[str, Any],
    functions: Mapping[str, str],
    physical: Mapping[str, str],
    resolve: Callable[[Any], Any],
) -> dict[str, FunctionPolicy]:
    """function name -> its policy, for every deployed function of the translated template."""
    resources = translated.get("Resources") or {}
    found: dict[str, FunctionPolicy] = {}
    for logical_id, name in functions.items():
        role_ref = (resources[logical_id].get("Properties") or {}).get("Role")
        role_id = role_ref.get("Fn::GetAtt", [""])[0] if isinstance(role_ref, dict) else ""
        if not isinstance(role_id, str) or role_id not in resources:
            found[name] = FunctionPolicy(logical_id, name, str(role_ref), known=False)
            continue
        found[name] = role_policy(translated, logical_id, name, role_id, physical, resolve)
    return found


def other_principals(
    translated: Mapping[str, Any], physical: Mapping[str, str], resolve: Callable[[Any], Any], role_arn: str
) -> dict[str, FunctionPolicy]:
    """Role ARN -> policy, for each state machine's role and each role Bedrock may assume.

    ``role_arn`` is the ARN prefix of the account's roles (``arn:aws:iam::<account>:role/``). Keyed
    by the role, since that is what moto's interpreter and the emulator's Bedrock know they act for.
    """
    resources = translated.get("Resources") or {}
    found: dict[str, FunctionPolicy] = {}
    for logical_id, resource in resources.items():
        properties = resource.get("Properties") or {}
        if logical_id not in physical:
            continue
        role_id = ""
        if resource.get("Type") == "AWS::StepFunctions::StateMachine":
            ref = properties.get("RoleArn")
            role_id = ref.get("Fn::GetAtt", [""])[0] if isinstance(ref, dict) else ""
        elif resource.get("Type") == "AWS::IAM::Role" and _trusts(properties, "bedrock.amazonaws.com"):
            role_id = logical_id
        if isinstance(role_id, str) and role_id in physical:
            session = physical[logical_id].rsplit(":", 1)[-1] if role_id != logical_id else "bedrock"
            policy = role_policy(translated, logical_id, session, role_id, physical, resolve)
            found[role_arn + physical[role_id]] = policy
    return found


def _trusts(properties: Mapping[str, Any], service: str) -> bool:
    statements = (properties.get("AssumeRolePolicyDocument") or {}).get("Statement") or []
    for statement in statements if isinstance(statements, list) else [statements]:
        services = ((statement or {}).get("Principal") or {}).get("Service")
        if service in (services if isinstance(services, list) else [services]):
            return True
    return False


def role_policy(
    translated: Mapping[str, Any],
    logical_id: str,
    name: str,
    role_id: str,
    physical: Mapping[str, str],
    resolve: Callable[[Any], Any],
) -> FunctionPolicy:
    """The statements of the template's role ``role_id``, reported under ``logical_id``."""
    resources = translated.get("Resources") or {}
    managed = {
        str(physical.get(r_id, "")): r_id
        for r_id, r in resources.items()
        if r.get("Type") == "AWS::IAM::ManagedPolicy"
    }
    role = resolve(resources[role_id].get("Properties") or {})
    policy = FunctionPolicy(logical_id, name, str(physical.get(role_id, role_id)), role_logical_id=role_id)
    for entry in role.get("Policies") or []:
        if entry:
            _add(policy, str(entry.get("PolicyName", "inline")), entry.get("PolicyDocument"))
    for arn in role.get("ManagedPolicyArns") or []:
        if arn is None:
            continue
        if str(arn) in managed:
            document = resolve((resources[managed[str(arn)]].get("Properties") or {}).get("PolicyDocument"))
            _add(policy, managed[str(arn)], document)
        else:
            _add_aws_managed(policy, str(arn))
    for policy_id, resource in resources.items():
        properties = resource.get("Properties") or {}
        if resource.get("Type") == "AWS::IAM::Policy" and {"Ref": role_id} in (properties.get("Roles") or []):
            _add(policy, policy_id, resolve(properties.get("PolicyDocument")))
    return policy


def _add(policy: FunctionPolicy, name: str, document: Any) -> list[Statement]:
    raw = (document or {}).get("Statement") or []
    if isinstance(raw, dict):
        raw = [raw]
    statements = [Statement.parse(name, i, s) for i, s in enumerate(raw) if s]
    policy.statements.extend(statements)
    return statements


@lru_cache(maxsize=1)
def _aws_managed_policies() -> dict[str, Any]:
    """moto's copy of the AWS managed policies (~0.2 s to parse: once, not once per role)."""
    from moto.iam.aws_managed_policies import aws_managed_policies_data

    return cast(dict[str, Any], json.loads(aws_managed_policies_data))


def _add_aws_managed(policy: FunctionPolicy, arn: str) -> None:
    name = arn.rsplit("/", 1)[-1]
    entry = _aws_managed_policies().get(name)
    if entry is None:
        return
    for statement in _add(policy, name, entry.get("Document")):
        policy.aws_managed.add(statement.label)
