"""IAM policy evaluation for the offline check: Allow/Deny, Action/NotAction, Resource/NotResource.

Written here, not taken from a library, because nothing on PyPI evaluates identity policies offline
for a given request (moto's own IAM checks are action-level only; its notes say so). Covers what the
template uses: ``*``/``?`` wildcards, explicit Deny over Allow, the condition operators String*,
Arn*, Bool and Null with ``...IfExists`` and the ``ForAnyValue:``/``ForAllValues:`` prefixes.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

ANY_RESOURCE = "*"


@dataclass(frozen=True)
class Request:
    """One authorization AWS makes for a call: an action on a resource with condition keys."""

    action: str
    resource: str
    context: tuple[tuple[str, str], ...] = ()

    @property
    def context_map(self) -> dict[str, str]:
        return dict(self.context)


@dataclass(frozen=True)
class Statement:
    """One policy statement, values already resolved against the deployed stack."""

    label: str
    """Where it comes from: ``<policy name>/<Sid or #index>``."""
    effect: str
    actions: tuple[str, ...] = ()
    not_actions: tuple[str, ...] = ()
    resources: tuple[str, ...] = ()
    not_resources: tuple[str, ...] = ()
    condition: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)

    @classmethod
    def parse(cls, policy_name: str, index: int, raw: Mapping[str, Any]) -> Statement:
        return cls(
            label=f"{policy_name}/{raw.get('Sid') or f'#{index}'}",
            effect=str(raw.get("Effect", "Allow")),
            actions=_strings(raw.get("Action")),
            not_actions=_strings(raw.get("NotAction")),
            resources=_strings(raw.get("Resource")),
            not_resources=_strings(raw.get("NotResource")),
            condition=dict(raw.get("Condition") or {}),
        )

    def action_pattern(self, action: str) -> str | None:
        """The Action entry that matches ``action`` (None: the statement does not cover it)."""
        if self.not_actions:
            return None if any(_match(p, action, ci=True) for p in self.not_actions) else "NotAction"
        return next((p for p in self.actions if _match(p, action, ci=True)), None)

    def resource_pattern(self, resource: str) -> str | None:
        """The Resource entry that matches; a request on ``*`` (a call that names no resource, e.g.
        a task token's) is checked on its action only, so it matches the first entry."""
        if resource == ANY_RESOURCE:
            return (self.resources or ("NotResource",))[0]
        if self.not_resources:
            return None if any(_match(p, resource) for p in self.not_resources) else "NotResource"
        return next((p for p in self.resources if _match(p, resource)), None)

    def conditions_hold(self, context: Mapping[str, str]) -> bool:
        return all(
            _condition(operator, key, values, context)
            for operator, block in self.condition.items()
            for key, values in (block or {}).items()
        )


@dataclass(frozen=True)
class Decision:
    allowed: bool
    matched: tuple[tuple[str, str, str], ...] = ()
    """(statement label, action pattern, resource pattern) of every Allow that matched."""
    denied_by: str | None = None
    """The label of an explicit Deny that matched, if any."""


def evaluate(statements: Iterable[Statement], request: Request) -> Decision:
    """Explicit Deny wins; otherwise allowed when some Allow statement matches."""
    context = request.context_map
    matched: list[tuple[str, str, str]] = []
    for statement in statements:
        action = statement.action_pattern(request.action)
        resource = statement.resource_pattern(request.resource) if action else None
        if action is None or resource is None or not statement.conditions_hold(context):
            continue
        if statement.effect == "Deny":
            return Decision(False, denied_by=statement.label)
        matched.append((statement.label, action, resource))
    return Decision(bool(matched), tuple(matched))


def _strings(value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, (list, tuple)):
        return tuple(str(v) for v in value if v is not None)
    return (str(value),)


@lru_cache(maxsize=4096)
def _pattern(pattern: str, ci: bool) -> re.Pattern[str]:
    regex = fnmatch.translate(pattern.replace("[", "[[]"))  # IAM has * and ? only
    return re.compile(regex, re.IGNORECASE if ci else 0)


def _match(pattern: str, value: str, *, ci: bool = False) -> bool:
    return bool(_pattern(pattern, ci).match(value))


def _condition(operator: str, key: str, values: Any, context: Mapping[str, str]) -> bool:
    wanted = _strings(values)
    base = operator.split(":", 1)[-1]  # ForAnyValue:/ForAllValues: - our keys are single-valued
    if_exists = base.endswith("IfExists")
    base = base.removesuffix("IfExists")
    if base == "Null":
        return (key not in context) == (wanted[0].lower() == "true")
    if key not in context:
        return if_exists
    actual = context[key]
    tests: dict[str, Callable[[str], bool]] = {
        "StringEquals": lambda w: actual == w,
        "StringNotEquals": lambda w: actual != w,
        "StringEqualsIgnoreCase": lambda w: actual.lower() == w.lower(),
        "StringLike": lambda w: _match(w, actual),
        "StringNotLike": lambda w: not _match(w, actual),
        "ArnEquals": lambda w: actual == w,
        "ArnLike": lambda w: _match(w, actual),
        "ArnNotEquals": lambda w: actual != w,
        "ArnNotLike": lambda w: not _match(w, actual),
        "Bool": lambda w: actual.lower() == w.lower(),
    }
    test = tests.get(base)
    if test is None:
        raise ValueError(f"offline IAM check: condition operator {operator} is not supported")
    if base.startswith(("StringNot", "ArnNot")):
        return all(test(w) for w in wanted)
    return any(test(w) for w in wanted)
