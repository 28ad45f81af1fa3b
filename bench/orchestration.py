"""Orchestration cost per chunk: Step Functions state transitions and Lambda invocations while a
provider batch runs, under the backoff the deployed state machine really uses.

Nothing is hard-coded: the wait schedule comes from template.yaml's parameter defaults
(PollInitialWaitSeconds, PollBackoffFactor, PollMaxWaitSeconds) substituted into
statemachine/batch_job.asl.json, and the chunk's path is walked state by state through the ASL
(Task, Wait with SecondsPath, Choice), counting every state entered (what Step Functions Standard
bills). The Task states are stood in for by the real schedule code (``batch_gateway.workflow.payloads.Backoff``,
as submit_chunk and poll_chunk use it); Lambda run time is not counted as waiting (tasks take ~0 s).
"""

from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
ASL = ROOT / "statemachine" / "batch_job.asl.json"
TEMPLATE = ROOT / "template.yaml"
DURATIONS = {"1m": 60, "1h": 3600, "24h": 86400}
TARGET_RATIO = 25


def template_defaults() -> dict[str, str]:
    from batch_gateway_local.stack.sam.template import load_template

    parameters = load_template(TEMPLATE)["Parameters"]
    return {name: str(spec["Default"]) for name, spec in parameters.items() if "Default" in spec}


def load_asl(substitutions: dict[str, str]) -> dict[str, Any]:
    text = ASL.read_text()
    text = re.sub(r"\$\{(\w+)\}", lambda m: substitutions.get(m.group(1), m.group(0)), text)
    definition: dict[str, Any] = json.loads(text)
    return definition


def _chunk_states(definition: dict[str, Any]) -> dict[str, Any]:
    for state in definition["States"].values():
        if state["Type"] == "Map":
            processor: dict[str, Any] = state.get("ItemProcessor") or state["Iterator"]
            return processor
    raise ValueError("the state machine has no Map state over chunks")


def _function_key(state: dict[str, Any]) -> str:
    name = str(state.get("Parameters", {}).get("FunctionName", state.get("Resource", "")))
    for key in ("Submit", "Poll", "Collect", "AwaitProvider"):
        if key in name:
            return key
    return name


def _path(data: dict[str, Any], path: str) -> Any:
    value: Any = data
    for part in path.removeprefix("$.").split("."):
        value = value[part]
    return value


def _matches(data: dict[str, Any], rule: dict[str, Any]) -> bool:
    """A Choice rule: BooleanEquals, StringEquals, NumericGreaterThan, and ``And``/``Or`` of those."""
    if "And" in rule:
        return all(_matches(data, part) for part in rule["And"])
    if "Or" in rule:
        return any(_matches(data, part) for part in rule["Or"])
    value = _path(data, rule["Variable"])
    return bool(
        ("BooleanEquals" in rule and value is rule["BooleanEquals"])
        or ("StringEquals" in rule and value == rule["StringEquals"])
        or ("NumericGreaterThan" in rule and value > rule["NumericGreaterThan"])
    )


def simulate_chunk(definition: dict[str, Any], provider_seconds: float, resubmits: int = 0) -> dict[str, Any]:
    """Walk one chunk through the Map iterator; each provider batch ends ``provider_seconds`` after its
    submit, and the first ``resubmits`` collects send the chunk round again (a failed batch resubmitted,
    or a follow-up round). ``path`` lists every state entered, in order."""
    from batch_gateway.workflow.payloads import Backoff

    processor = _chunk_states(definition)
    states, current = processor["States"], processor["StartAt"]
    clock, transitions, data = 0.0, 0, {}
    invocations: Counter[str] = Counter()
    polls: list[float] = []
    path: list[str] = []
    submitted_at, collects = 0.0, 0
    while True:
        state = states[current]
        path.append(current)
        transitions += 1
        kind = state["Type"]
        if kind == "Task":
            key = _function_key(state)
            invocations[key] += 1
            payload = state["Parameters"]["Payload"]
            # AwaitProvider (a callback task): with no webhook it waits until its timeout, then polls.
            if "TimeoutSecondsPath" in state:
                clock += float(_path(data, state["TimeoutSecondsPath"]))
                current = state["Next"]
                continue
            backoff = Backoff.model_validate(payload.get("backoff") or {})
            if key == "Submit":  # submit_chunk: first wait is the initial one
                submitted_at = clock
                # Capacity reserved at once (no quota binds): CapacityReserved? goes on to the wait.
                data = {
                    "provider": "openai",
                    "next_step": "poll",
                    "wait_seconds": backoff.initial_seconds,
                    "terminal": False,
                }
            elif key == "Poll":  # poll_chunk: ended yet? next wait from the backoff
                polls.append(clock)
                data = {
                    "provider": "openai",
                    "terminal": clock - submitted_at >= provider_seconds,
                    "wait_seconds": backoff.next_wait(data["wait_seconds"]),
                }
            elif collects < resubmits:  # collect_chunk: the batch failed, or items go to a follow-up round
                collects += 1
                data = {
                    "next_step": "submit",
                    "terminal": True,
                    "wait_seconds": backoff.wait_before_attempt(1),
                }
            else:  # collect_chunk: a completed batch, nothing to retry
                data = {"next_step": "done", "terminal": True, "wait_seconds": 0}
        elif kind == "Wait":
            clock += float(_path(data, state["SecondsPath"]) if "SecondsPath" in state else state["Seconds"])
        elif kind == "Choice":
            nxt = state.get("Default")
            for rule in state["Choices"]:
                if _matches(data, rule):
                    nxt = rule["Next"]
                    break
            current = nxt
            continue
        if kind in ("Succeed", "Fail") or state.get("End"):
            break
        current = state["Next"]
    detected = polls[-1]
    previous = polls[-2] if len(polls) > 1 else 0.0
    return {
        "transitions": transitions,
        "path": path,
        "lambda_invocations": sum(invocations.values()),
        "invocations": dict(invocations),
        "polls": len(polls),
        "detection_delay_s": detected - provider_seconds,
        # A batch that ends just after the previous poll waits for this whole gap.
        "max_detection_delay_s": detected - previous,
    }


def transitions_per_poll(definition: dict[str, Any]) -> int:
    """States entered per round of the wait loop, as the ASL makes it (Wait, Poll, Choice: 3 today)."""
    short, long = simulate_chunk(definition, 0), simulate_chunk(definition, 86400)
    per_poll = (long["transitions"] - short["transitions"]) / (long["polls"] - short["polls"])
    assert per_poll == int(per_poll), per_poll
    return int(per_poll)


def run() -> dict[str, Any]:
    defaults = template_defaults()
    ours = load_asl(defaults)
    fixed = load_asl(
        {**defaults, "PollInitialWaitSeconds": "60", "PollBackoffFactor": "1", "PollMaxWaitSeconds": "60"}
    )
    result: dict[str, Any] = {
        "parameters": {
            k: defaults[k] for k in ("PollInitialWaitSeconds", "PollBackoffFactor", "PollMaxWaitSeconds")
        },
        "transitions_per_poll": transitions_per_poll(ours),
        "transitions": {},
        "transitions_fixed_60s": {},
        "lambda_invocations": {},
        "lambda_invocations_fixed_60s": {},
        "polls": {},
        "max_detection_delay_s": {},
        "max_detection_delay_fixed_60s": {},
        "ratio": {},
    }
    for label, seconds in DURATIONS.items():
        mine, theirs = simulate_chunk(ours, seconds), simulate_chunk(fixed, seconds)
        result["transitions"][label] = mine["transitions"]
        result["transitions_fixed_60s"][label] = theirs["transitions"]
        result["lambda_invocations"][label] = mine["lambda_invocations"]
        result["lambda_invocations_fixed_60s"][label] = theirs["lambda_invocations"]
        result["polls"][label] = mine["polls"]
        result["max_detection_delay_s"][label] = mine["max_detection_delay_s"]
        result["max_detection_delay_fixed_60s"][label] = theirs["max_detection_delay_s"]
        result["ratio"][label] = round(theirs["transitions"] / mine["transitions"], 2)
    cap = int(defaults["PollMaxWaitSeconds"])
    result["cap_respected"] = all(v <= cap for v in result["max_detection_delay_s"].values())
    result["proposal"] = _proposal(defaults, result["transitions_fixed_60s"]["24h"])
    return result


def _proposal(defaults: dict[str, str], fixed_24h: int) -> dict[str, Any]:
    """The smallest cap (same initial wait and factor) that polls >= TARGET_RATIO times less at 24 h."""
    for cap in (600, 900, 1200, 1500, 1800, 2400, 3000, 3600):
        candidate = {**defaults, "PollMaxWaitSeconds": str(cap)}
        outcome = {label: simulate_chunk(load_asl(candidate), s) for label, s in DURATIONS.items()}
        ratio = fixed_24h / outcome["24h"]["transitions"]
        if ratio >= TARGET_RATIO:
            return {
                "PollInitialWaitSeconds": int(defaults["PollInitialWaitSeconds"]),
                "PollBackoffFactor": defaults["PollBackoffFactor"],
                "PollMaxWaitSeconds": cap,
                "transitions": {label: o["transitions"] for label, o in outcome.items()},
                "ratio_24h": round(ratio, 2),
                "max_detection_delay_s": {label: o["max_detection_delay_s"] for label, o in outcome.items()},
            }
    return {"note": f"no cap up to 3600 s reaches {TARGET_RATIO}x"}


def polls_for(definition: dict[str, Any], seconds: float) -> int:
    return int(simulate_chunk(definition, seconds)["polls"])


if __name__ == "__main__":
    print(json.dumps(run(), indent=2))
