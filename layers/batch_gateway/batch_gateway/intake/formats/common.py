"""What every format module shares: the untranslatable-field error and the provider families.

:class:`UntranslatableError` names the input line's field (``body.logprobs``, ``params.top_k``,
``modelInput.messages[2].content[0]``) and says why the target provider cannot take it; intake
turns it into a ``LineError`` with that field, under the job's on_invalid policy.

Two families share a request shape: OpenAI and Azure OpenAI (the chat completions body), and
Anthropic and Bedrock (the Claude Messages params). Within a family a line is sent as it is.
"""

from __future__ import annotations

import json
import re
from typing import Any, Final, NamedTuple, TypeVar

from pydantic import BaseModel, ValidationError

from batch_gateway.intake.checks import LineError

EnvelopeT = TypeVar("EnvelopeT", bound=BaseModel)

OPENAI_FAMILY: Final = frozenset({"openai", "azure-openai"})
ANTHROPIC_FAMILY: Final = frozenset({"anthropic", "bedrock"})
# What a translated line asks for when its own line does not say (BatchItem's default).
DEFAULT_MAX_TOKENS: Final = 4096


class UntranslatableError(ValueError):
    """A field of the line that the target provider cannot take; the message says what to do."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(reason)
        self.field = field


def no_equivalent(field: str, target: str, hint: str = "remove it") -> UntranslatableError:
    return UntranslatableError(field, f"'{field}' has no equivalent on {target}: {hint}")


def expect_dict(value: Any, field: str, target: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise UntranslatableError(field, f"'{field}' must be a JSON object to be translated for {target}")
    return value


def expect_list(value: Any, field: str, target: str) -> list[Any]:
    if not isinstance(value, list):
        raise UntranslatableError(field, f"'{field}' must be a JSON array to be translated for {target}")
    return value


def text_of(content: Any, field: str, target: str) -> str:
    """The text of a content that may only hold text: a string, or a list of text parts/blocks."""
    if isinstance(content, str):
        return content
    texts = []
    for index, part in enumerate(expect_list(content, field, target)):
        at = f"{field}[{index}]"
        part = expect_dict(part, at, target)
        if part.get("type") != "text" or not isinstance(part.get("text"), str):
            raise no_equivalent(f"{at}.type", target, "only text can go here; remove the other parts")
        texts.append(part["text"])
    return "\n\n".join(texts)


class ForeignLine(NamedTuple):
    """A provider-format line, read: its id and its request in its family's shape."""

    custom_id: str
    family: str  # "openai" (a chat completions body) or "anthropic" (Messages params)
    payload: dict[str, Any]
    model: str | None  # the line's own model, honoured only on the provider it was written for
    where: str  # the payload's field in the line, to name fields in errors: body, params, modelInput


_ENVELOPE_HINTS = {
    "json_invalid": "each line must be one complete JSON object",
    "missing": "add it",
    "extra_forbidden": "remove it",
}


def read_envelope(model: type[EnvelopeT], line: int, raw: bytes, example: str) -> EnvelopeT | list[LineError]:
    """The line's envelope (custom_id and request), or its errors in plain words."""
    try:
        return model.model_validate_json(raw)
    except ValidationError as exc:
        errors = exc.errors(include_url=False)
    custom_id = None
    try:
        obj = json.loads(raw)
        custom_id = obj.get("custom_id") or obj.get("recordId") if isinstance(obj, dict) else None
    except ValueError:
        pass
    found = []
    for error in errors:
        field = ".".join(str(part) for part in error["loc"]) or None
        if error["type"] == "json_invalid":
            detail = re.sub(r" at line 1 column ", " at column ", str(error["ctx"].get("error", "")))
            reason = f"not valid JSON ({detail}): each line must be one complete JSON object"
        elif error["type"] == "model_type":
            reason = f"each line must be a JSON object like {example}"
        else:
            hint = _ENVELOPE_HINTS.get(error["type"], f"each line must look like {example}")
            reason = f"'{field}': {error['msg']}: {hint}"
        found.append(
            LineError(
                line=line,
                field=field,
                reason=reason,
                custom_id=custom_id if isinstance(custom_id, str) and custom_id else None,
            )
        )
    return found
