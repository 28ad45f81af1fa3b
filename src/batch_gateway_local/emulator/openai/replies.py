"""What the OpenAI emulation shares: the API's constants and the shapes of its error and list answers.

The Files and Batches modules (``files``, ``batches``), the per-line emulation (``completions``) and
the input-file checks (``validation``) all answer in these shapes, as api.openai.com does.
"""

from __future__ import annotations

from typing import Any

from batch_gateway_local.emulator.protocol import Reply, openai_error

DAY = 24 * 3600
CHAT_ENDPOINT = "/v1/chat/completions"
FILE_PURPOSES = ("assistants", "batch", "fine-tune", "vision", "user_data", "evals")
ACTIVE = ("validating", "in_progress", "finalizing", "cancelling")
TERMINAL = ("failed", "completed", "expired", "cancelled")
ROLES = ("system", "developer", "user", "assistant", "tool", "function")
MAX_REPORTED_ISSUES = 1000
SCENARIO_METADATA_KEY = "emulator_scenario"
SCENARIO_HEADER = "x-emulator-scenario"

UNFINISHED_MESSAGES = {
    "batch_cancelled": "This request could not be executed before the batch was cancelled.",
    "batch_expired": "This request could not be executed before the completion window expired.",
}


def bad(message: str, *, param: str | None = None, code: str | None = None) -> Reply:
    return openai_error(400, message, param=param, code=code)


def not_found(kind: str, ident: str) -> Reply:
    return openai_error(404, f"No such {kind} object: {ident}", code=None)


def list_body(data: list[dict[str, Any]], has_more: bool) -> dict[str, Any]:
    return {
        "object": "list",
        "data": data,
        "first_id": data[0]["id"] if data else None,
        "last_id": data[-1]["id"] if data else None,
        "has_more": has_more,
    }
