"""``make iam-report``: run a few whole jobs with the IAM check on and sum up what it saw.

Prints the calls checked, the calls denied (must be 0; moto's own refusals included), the requests
moto's enforcement authorized (how many signed with a role's credentials) and, per principal (a
function, the state machine, the Bedrock service role), the grants (statement,
action, resource pattern) that no call used, each with the reason written next to it in
template.yaml (a trailing ``# iam: ...`` comment on the statement's ``Sid`` line, or on the SAM
policy template's line). The jobs (``run_workload``) cover the providers, a rejected file, failed
and partly failed provider batches, a cancel, the API, the scheduler and the reconciler; a grant
only a path outside them needs must say so in its reason.
"""

from __future__ import annotations

import contextlib
import os
import re
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TextIO

from batch_gateway_local.stack.iam.recorder import IamCheck

_REASON = re.compile(r"(?:Sid:\s*(?P<sid>\w+)|-\s*(?P<template>\w+Policy):).*#\s*iam:\s*(?P<reason>.+)$")
_FUNCTION = re.compile(r"^  (?P<id>[A-Za-z0-9]+):\s*$")
_TEMPLATE_LINE = re.compile(r"^\s*-\s*(?P<template>\w+Policy):")


@dataclass(frozen=True)
class Grant:
    function: str
    statement: str
    action: str
    resource: str


def all_grants(check: IamCheck) -> list[Grant]:
    grants: list[Grant] = []
    for policy in check.policies.values():
        for statement in policy.statements:
            if statement.effect != "Allow" or statement.label in policy.aws_managed:
                continue
            actions = statement.actions or ("NotAction",)
            resources = statement.resources or ("NotResource",)
            grants.extend(Grant(policy.logical_id, statement.label, a, r) for a in actions for r in resources)
    return grants


def unused_grants(check: IamCheck) -> list[Grant]:
    used = {
        (c.function, label, action, resource)
        for c in check.checked
        for label, action, resource in c.decision.matched
    }
    return [g for g in all_grants(check) if (g.function, g.statement, g.action, g.resource) not in used]


def template_reasons(template_text: str) -> dict[tuple[str, str], str]:
    """(resource logical id, Sid or policy template name) -> the ``# iam:`` reason on its line.

    A policy template is also keyed ``<name>#<n>``: its n-th use in the resource (a state machine
    has one LambdaInvokePolicy per function, each with its own reason)."""
    reasons: dict[tuple[str, str], str] = {}
    function = ""
    uses: dict[str, int] = {}
    for line in template_text.splitlines():
        top = _FUNCTION.match(line)
        if top:
            function, uses = top["id"], {}
            continue
        template = _TEMPLATE_LINE.match(line)
        if template:
            uses[template["template"]] = uses.get(template["template"], -1) + 1
        found = _REASON.search(line)
        if found:
            reasons[(function, found["sid"] or found["template"])] = found["reason"].strip()
            if found["template"]:
                reasons[(function, f"{found['template']}#{uses.get(found['template'], 0)}")] = found[
                    "reason"
                ].strip()
    return reasons


# What SAM grants for a function's DeadLetterQueue or an event source's OnFailure destination: the
# Lambda service sends there with the role, the handler never does.
SERVICE_REASON = "Lambda itself sends a failed event to the dead-letter queue / on-failure destination"


def reason_for(
    grant: Grant, reasons: dict[tuple[str, str], str], template_names: dict[str, str]
) -> str | None:
    name = grant.statement.rsplit("/", 1)[-1]
    policy = grant.statement.split("/", 1)[0]
    if name.startswith("#") and grant.action.startswith("sqs:SendMessage") and policy not in template_names:
        return SERVICE_REASON
    template = template_names.get(policy, "")
    return (
        reasons.get((grant.function, name))
        or reasons.get((policy, name))  # an AWS::IAM::Policy of its own, attached to the role
        or reasons.get((grant.function, template))  # "<policy template>#<n>": its n-th use
    )


def write_report(check: IamCheck, template_text: str, template_names: dict[str, str], out: TextIO) -> int:
    """Print the report; returns the number of problems (denied calls + unused grants without reason)."""
    reasons = template_reasons(template_text)
    denied = check.denied
    out.write(f"calls checked: {len(check.checked)}\n")
    roles = sorted({p.logical_id for key, p in check.policies.items() if key.startswith("arn:")})
    for role in roles:
        out.write(f"  of them {role}'s: {sum(1 for c in check.checked if c.function == role)}\n")
    out.write(f"calls denied:  {len(denied)} (by moto's own enforcement: {len(check.moto_denied)})\n")
    signed = sum(n for owner, n in check.moto_checked.items() if owner != "admin")
    out.write(
        f"requests moto authorized: {sum(check.moto_checked.values())}, {signed} of them signed with a "
        f"role's assumed credentials (from {len(check.moto_checked) - ('admin' in check.moto_checked)} roles)\n"
    )
    for call in _unique(c.describe() for c in denied):
        out.write(f"  DENIED {call}\n")
    unused = unused_grants(check)
    missing = 0
    out.write(f"grants no call used: {len(unused)}\n")
    for grant in unused:
        reason = reason_for(grant, reasons, template_names)
        missing += reason is None
        out.write(
            f"  {grant.function:<24} {grant.statement.rsplit('/', 1)[-1]:<28} {grant.action} on {grant.resource}\n"
            f"      {'kept: ' + reason if reason else 'NO REASON IN template.yaml: remove it or say why'}\n"
        )
    return len(denied) + missing


def _unique(lines: Iterable[str]) -> list[str]:
    return sorted(set(lines))


def main() -> int:
    from batch_gateway_local.stack.iam.workload import run_workload

    # The functions log JSON to stdout, as on Lambda: kept out of the report.
    with open(os.devnull, "w") as logs, contextlib.redirect_stdout(logs):
        check, template_text, template_names = run_workload()
    return 1 if write_report(check, template_text, template_names, sys.stdout) else 0


if __name__ == "__main__":
    raise SystemExit(main())
