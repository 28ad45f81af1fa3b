"""State machines on moto's *executing* Step Functions backend, with their DefinitionSubstitutions.

moto's CloudFormation puts an ``AWS::StepFunctions::StateMachine`` into its non-executing backend and
drops ``DefinitionSubstitutions``. :func:`recreate_state_machine` creates it again under the same name
(hence the same ARN that environment variables and outputs already hold) from the real definition
(inline or the packaged ASL file) with the substitutions resolved from the stack, then the caller's
overrides applied (make ``Wait`` states short: the interpreter sleeps for real).
:func:`stop_executions` ends what still runs when the stack goes away.
"""

from __future__ import annotations

import json
import logging
import re
import threading
import time
import warnings
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from batch_gateway_local.stack.errors import OfflineStackError

_PLACEHOLDER = re.compile(r"\$\{([^${}\s]+)\}")


def substitution_value(value: Any) -> str:
    """How CloudFormation writes a DefinitionSubstitutions value into the definition."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def substitute_definition(
    definition: str, substitutions: Mapping[str, str], *, where: str = "definition"
) -> str:
    """Replace ``${Key}`` placeholders; a placeholder without a value is an error."""
    missing = sorted({m.group(1) for m in _PLACEHOLDER.finditer(definition)} - set(substitutions))
    if missing:
        raise OfflineStackError(f"{where}: no DefinitionSubstitutions value for {', '.join(missing)}")
    return _PLACEHOLDER.sub(lambda m: substitutions[m.group(1)], definition)


def definition_text(logical_id: str, properties: Mapping[str, Any], s3: Any) -> str:
    """The state machine's ASL text: inline (``Definition``/``DefinitionString``) or from S3."""
    if isinstance(properties.get("DefinitionString"), str):
        return str(properties["DefinitionString"])
    if isinstance(properties.get("Definition"), dict):
        return json.dumps(properties["Definition"])
    location = properties.get("DefinitionS3Location")
    if isinstance(location, dict):
        request = {"Bucket": str(location["Bucket"]), "Key": str(location["Key"])}
        if location.get("Version"):
            request["VersionId"] = str(location["Version"])
        return str(s3.get_object(**request)["Body"].read().decode("utf-8"))
    raise OfflineStackError(
        f"{logical_id}: state machine has no Definition, DefinitionString or DefinitionS3Location"
    )


def recreate_state_machine(
    clients: tuple[Any, Any],
    logical_id: str,
    arn: str,
    properties: Mapping[str, Any],
    overrides: Mapping[str, str],
    account_id: str,
) -> set[str]:
    """Create ``arn`` again on the executing backend; returns the override keys it used.

    ``clients`` are the Step Functions and S3 clients; ``properties`` are resolved against the stack.
    """
    sfn, s3 = clients
    substitutions = {
        str(k): substitution_value(v) for k, v in (properties.get("DefinitionSubstitutions") or {}).items()
    }
    used = {key for key in overrides if key in substitutions}
    substitutions.update({key: overrides[key] for key in used})
    definition = substitute_definition(
        definition_text(logical_id, properties, s3), substitutions, where=logical_id
    )
    request: dict[str, Any] = {
        "name": arn.rsplit(":", 1)[-1],
        "definition": definition,
        "roleArn": str(properties.get("RoleArn") or f"arn:aws:iam::{account_id}:role/offline-stack"),
        "type": str(properties.get("StateMachineType") or "STANDARD"),
    }
    tags = [{"key": str(t["Key"]), "value": str(t["Value"])} for t in properties.get("Tags") or []]
    if tags:
        request["tags"] = tags
    try:
        created = sfn.create_state_machine(**request)
    except Exception as exc:
        raise OfflineStackError(f"{logical_id}: the substituted definition was rejected: {exc}") from exc
    if created["stateMachineArn"] != arn:
        raise OfflineStackError(
            f"{logical_id}: recreated state machine has ARN {created['stateMachineArn']}, stack has {arn}"
        )
    return used


def check_overrides_used(overrides: Mapping[str, str], used: set[str]) -> None:
    unused = sorted(set(overrides) - used)
    if unused:
        raise OfflineStackError(
            f"definition_substitution_overrides keys not in any DefinitionSubstitutions: {', '.join(unused)}"
        )


def stop_executions(sfn: Any, threads: Callable[[], Sequence[threading.Thread]], timeout: float) -> None:
    """Stop running executions, then wait up to ``timeout`` s for the interpreter's ``threads()``.

    A stopped execution makes the interpreter log errors (e.g. from an aborted Map) while it unwinds:
    expected here, so they are kept quiet until its threads are gone.
    """
    interpreter_log = logging.getLogger("moto.stepfunctions")
    level = interpreter_log.level
    interpreter_log.setLevel(logging.CRITICAL)
    try:
        _stop_running(sfn)
        deadline = time.monotonic() + timeout
        started = list(threads())
        for thread in started:
            thread.join(max(0.0, deadline - time.monotonic()))
        alive = [t.name for t in started if t.is_alive()]
        if alive:
            warnings.warn(
                f"OfflineStack: {len(alive)} Step Functions thread(s) still running after "
                f"{timeout} s; they may call AWS APIs after the mock stopped",
                stacklevel=3,
            )
    finally:
        interpreter_log.setLevel(level)


def _stop_running(sfn: Any) -> None:
    try:
        for machine in sfn.list_state_machines().get("stateMachines", []):
            running = sfn.list_executions(stateMachineArn=machine["stateMachineArn"], statusFilter="RUNNING")
            for execution in running.get("executions", []):
                try:
                    sfn.stop_execution(executionArn=execution["executionArn"])
                except Exception:  # noqa: S112 - it may have finished meanwhile
                    continue
    except Exception as exc:
        warnings.warn(f"OfflineStack: could not stop running executions: {exc}", stacklevel=4)
