"""Offline emulator of OpenAI's Files + Batches API and Anthropic's Message Batches API.

Start an `EmulatorServer` and point the real SDK clients at it::

    with EmulatorServer(polls_to_complete=2) as emu:
        openai.OpenAI(api_key="x", base_url=emu.openai_base_url)
        anthropic.Anthropic(api_key="x", base_url=emu.anthropic_base_url)

Failure scenarios (`ok`, `item-errors`, `expire`, `fail`, `fail-once`, `throttle`, `flaky-download`,
`slow`) are described in `scenarios`; choose one with `EmulatorServer(scenario=...)`, at runtime with
`emu.scenario = "expire"`, or per batch (metadata `emulator_scenario` / header `x-emulator-scenario`).
Each provider's batch-queue quota is a `Limits` field, set with `EmulatorServer(limits=...)` or at
runtime (`emu.set_quota("openai", 2_000_000)`); `emu.quota_high_water` says the most each one held.
"""

from .answers import MARKER_ERROR_400, MARKER_ERROR_500, MARKER_TOOL, emulated_answer, estimate_tokens
from .protocol import Reply, Request, error_reply
from .scenario_base import (
    BatchRequest,
    CreateContext,
    ItemFault,
    PollAction,
    PollContext,
    Scenario,
    ScenarioMemory,
    ValidationIssue,
    request_key,
)
from .scenarios import (
    BUILTIN_SCENARIOS,
    ENQUEUED_LIMIT_MESSAGE,
    STALLED_POLLS,
    THROTTLED_CALLS,
    register_scenario,
    scenario_names,
)
from .server import EmulatorServer
from .state import Limits, QuotaHighWater
from .tokens import count_tokens

__all__ = [
    "BUILTIN_SCENARIOS",
    "ENQUEUED_LIMIT_MESSAGE",
    "MARKER_ERROR_400",
    "MARKER_ERROR_500",
    "MARKER_TOOL",
    "STALLED_POLLS",
    "THROTTLED_CALLS",
    "BatchRequest",
    "CreateContext",
    "EmulatorServer",
    "ItemFault",
    "Limits",
    "PollAction",
    "PollContext",
    "QuotaHighWater",
    "Reply",
    "Request",
    "Scenario",
    "ScenarioMemory",
    "ValidationIssue",
    "count_tokens",
    "emulated_answer",
    "error_reply",
    "estimate_tokens",
    "register_scenario",
    "request_key",
    "scenario_names",
]
