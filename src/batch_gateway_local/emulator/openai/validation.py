"""An uploaded batch input file checked as OpenAI checks it before a batch starts.

:func:`parse_jsonl` reads the upload (UTF-8, one JSON value a line; a line that is not JSON is kept
by number: as on OpenAI the upload succeeds and the batch fails with ``invalid_json_line``);
:func:`validate_lines` checks the file (size, request count) and each line (JSON, an object with
``custom_id``, ``method``, ``url``, ``body``; unique ids; POST to the batch's endpoint; one model for
the whole file) and returns the accepted items, the issues (at most ``MAX_REPORTED_ISSUES``, shown as
the failed batch's ``errors``) and the model.
"""

from __future__ import annotations

import json
from typing import Any

from batch_gateway_local.emulator.openai.endpoints import check_body
from batch_gateway_local.emulator.openai.replies import MAX_REPORTED_ISSUES
from batch_gateway_local.emulator.state import OpenAIItem

Problem = tuple[str, str, str]  # code, message, param


def issue(code: str, message: str, line: int | None = None, param: str | None = None) -> dict[str, Any]:
    return {"code": code, "message": message, "param": param, "line": line}


class _Issues:
    def __init__(self) -> None:
        self.found: list[dict[str, Any]] = []

    def add(self, code: str, message: str, line: int | None = None, param: str | None = None) -> None:
        if len(self.found) < MAX_REPORTED_ISSUES:
            self.found.append(issue(code, message, line, param))


INVALID_JSON_MESSAGE = "This line is not parseable as valid JSON."


def validate_lines(
    lines: list[tuple[int, Any]],
    endpoint: str,
    size: int,
    max_requests: int,
    max_bytes: int,
    invalid_lines: list[int] | None = None,
) -> tuple[list[OpenAIItem], list[dict[str, Any]], str | None]:
    """Validate parsed input lines as OpenAI does before a batch starts: (items, issues, model)."""
    issues = _Issues()
    for lineno in invalid_lines or []:
        issues.add("invalid_json_line", INVALID_JSON_MESSAGE, lineno)
    if size > max_bytes:
        issues.add(
            "file_too_large",
            f"The input file is {size} bytes; a batch input file may be at most {max_bytes} bytes.",
        )
    if not lines and not invalid_lines:
        issues.add("empty_file", "The input file is empty.")
    if len(lines) > max_requests:
        issues.add(
            "too_many_requests",
            f"The input file has {len(lines)} requests; a batch may contain at most {max_requests}.",
            lines[max_requests][0],
        )
    checker = _LineChecker(endpoint, issues)
    items = [item for lineno, obj in lines if (item := checker.check(lineno, obj)) is not None]
    return items, issues.found, checker.model


class _LineChecker:
    """Checks lines in file order; remembers the custom ids seen and the file's model."""

    def __init__(self, endpoint: str, issues: _Issues) -> None:
        self.endpoint, self.issues = endpoint, issues
        self.seen: dict[str, int] = {}
        self.model: str | None = None
        self.model_line = 0

    def check(self, lineno: int, obj: Any) -> OpenAIItem | None:
        if not isinstance(obj, dict):
            self.issues.add("invalid_json_line", "This line is not a JSON object.", lineno)
            return None
        missing = [key for key in ("custom_id", "method", "url", "body") if key not in obj]
        for key in missing:
            self.issues.add(
                "missing_required_parameter", f"Missing required parameter: '{key}'.", lineno, key
            )
        if missing:
            return None
        problem = self._envelope_problem(lineno, obj) or self._model_problem(lineno, obj["body"])
        if problem is not None:
            code, message, param = problem
            self.issues.add(code, message, lineno, param)
            return None
        status, _ = check_body(self.endpoint, obj["body"])
        return OpenAIItem(line=lineno, custom_id=obj["custom_id"], body=obj["body"], status_code=status)

    def _envelope_problem(self, lineno: int, obj: dict[str, Any]) -> Problem | None:
        custom_id, method, url, body = obj["custom_id"], obj["method"], obj["url"], obj["body"]
        if not isinstance(custom_id, str):
            return "invalid_type", "Invalid type for 'custom_id': expected a string.", "custom_id"
        if custom_id in self.seen:
            return (
                "duplicate_custom_id",
                f"The custom_id {custom_id!r} is already used on line {self.seen[custom_id]}; "
                "custom_id values must be unique within a batch.",
                "custom_id",
            )
        self.seen[custom_id] = lineno
        if method != "POST":
            return "invalid_method", f"Invalid 'method': {method!r}. Only POST is supported.", "method"
        if url != self.endpoint:
            return (
                "mismatched_endpoint",
                f"The url {url!r} does not match the batch endpoint {self.endpoint!r}.",
                "url",
            )
        if not isinstance(body, dict):
            return "invalid_type", "Invalid type for 'body': expected an object.", "body"
        return None

    def _model_problem(self, lineno: int, body: dict[str, Any]) -> Problem | None:
        line_model = body.get("model")
        if not isinstance(line_model, str) or not line_model:
            return "missing_required_parameter", "Missing required parameter: 'body.model'.", "body.model"
        if self.model is None:
            self.model, self.model_line = line_model, lineno
            return None
        if line_model != self.model:
            return (
                "mismatched_model",
                f"The model {line_model!r} differs from the model {self.model!r} on line {self.model_line}; "
                "a batch input file may use only one model.",
                "body.model",
            )
        return None


def parse_jsonl(data: bytes) -> tuple[list[tuple[int, Any]], list[int]]:
    """(line number, parsed value) for each non-blank JSON line, and the numbers of the lines that are
    not JSON; ValueError when the file is not UTF-8."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ValueError(f"The file is not valid UTF-8 ({exc.reason} at byte {exc.start}).") from None
    parsed: list[tuple[int, Any]] = []
    invalid: list[int] = []
    for lineno, line in enumerate(text.split("\n"), 1):
        if not line.strip():
            continue
        try:
            parsed.append((lineno, json.loads(line)))
        except json.JSONDecodeError:
            invalid.append(lineno)
    return parsed, invalid
