"""Offline emulator of OpenAI's Files + Batches API and Anthropic's Message Batches API.

Start an `EmulatorServer` and point the real SDK clients at it::

    with EmulatorServer(polls_to_complete=2) as emu:
        openai.OpenAI(api_key="x", base_url=emu.openai_base_url)
        anthropic.Anthropic(api_key="x", base_url=emu.anthropic_base_url)
"""

from .answers import MARKER_ERROR_400, MARKER_ERROR_500, MARKER_TOOL, emulated_answer, estimate_tokens
from .protocol import Reply, Request, error_reply
from .scenarios import PollAction, PollContext, Scenario, ValidationIssue, register_scenario, scenario_names
from .server import EmulatorServer
from .state import Limits

__all__ = [
    "MARKER_ERROR_400",
    "MARKER_ERROR_500",
    "MARKER_TOOL",
    "EmulatorServer",
    "Limits",
    "PollAction",
    "PollContext",
    "Reply",
    "Request",
    "Scenario",
    "ValidationIssue",
    "emulated_answer",
    "error_reply",
    "estimate_tokens",
    "register_scenario",
    "scenario_names",
]
