"""Each function's policy statements, from the translated template, resolved against the stack.

A function's ``Role`` is a ``GetAtt`` of an ``AWS::IAM::Role`` in the template (SAM makes one per
function from ``Policies``); its inline ``Policies`` and the ``ManagedPolicyArns`` that are the
template's own ``AWS::IAM::ManagedPolicy`` (e.g. DataKeyUsePolicy) are the statements checked.
AWS managed policies (AWSLambdaBasicExecutionRole: Lambda's own log delivery) are read from moto's
copy and used to allow, but are not reported as unused grants: no handler calls them.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

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


def function_policies(
    translated: Mapping[str, Any],
    functions: Mapping[str, str],
    physical: Mapping[str, str],
    resolve: Callable[[Any], Any],
) -> dict[str, FunctionPolicy]:
    """function name -> its policy, for every deployed function of the translated template."""
    resources = translated.get("Resources") or {}
    managed = {
        str(physical.get(logical_id, "")): logical_id
        for logical_id, r in resources.items()
        if r.get("Type") == "AWS::IAM::ManagedPolicy"
    }
    found: dict[str, FunctionPolicy] = {}
    for logical_id, name in functions.items():
        role_ref = (resources[logical_id].get("Properties") or {}).get("Role")
        role_id = role_ref.get("Fn::GetAtt", [""])[0] if isinstance(role_ref, dict) else ""
        if not isinstance(role_id, str) or role_id not in resources:
            found[name] = FunctionPolicy(logical_id, name, str(role_ref), known=False)
            continue
        role = resolve(resources[role_id].get("Properties") or {})
        policy = FunctionPolicy(logical_id, name, str(physical.get(role_id, role_id)))
        for entry in role.get("Policies") or []:
            if entry:
                _add(policy, str(entry.get("PolicyName", "inline")), entry.get("PolicyDocument"))
        for arn in role.get("ManagedPolicyArns") or []:
            if arn is None:
                continue
            if str(arn) in managed:
                document = resolve(
                    (resources[managed[str(arn)]].get("Properties") or {}).get("PolicyDocument")
                )
                _add(policy, managed[str(arn)], document)
            else:
                _add_aws_managed(policy, str(arn))
        found[name] = policy
    return found


def _add(policy: FunctionPolicy, name: str, document: Any) -> list[Statement]:
    raw = (document or {}).get("Statement") or []
    if isinstance(raw, dict):
        raw = [raw]
    statements = [Statement.parse(name, i, s) for i, s in enumerate(raw) if s]
    policy.statements.extend(statements)
    return statements


def _add_aws_managed(policy: FunctionPolicy, arn: str) -> None:
    from moto.iam.aws_managed_policies import aws_managed_policies_data

    name = arn.rsplit("/", 1)[-1]
    entry = json.loads(aws_managed_policies_data).get(name)
    if entry is None:
        return
    for statement in _add(policy, name, entry.get("Document")):
        policy.aws_managed.add(statement.label)
