"""One ``/v1/embeddings`` request line of a batch, emulated: is the body valid, and what is the vector.

OpenAI batches also run on the embeddings endpoint. :func:`check_embedding_request` gives the status
OpenAI would answer the body with (400 for a missing or empty ``input`` or a bad ``dimensions``) and
the error body; :func:`embedding_response` gives the ``list`` of ``embedding`` objects, one per input,
each a deterministic unit vector derived from the model and the input text (the same input always
gives the same vector, different inputs different ones), with ``usage.prompt_tokens`` counted the
emulator's way (``tokens``). The vector length is ``dimensions`` or the model's native size.
"""

from __future__ import annotations

import hashlib
import math
from typing import Any

from batch_gateway_local.emulator.tokens import count_tokens

EMBEDDINGS_ENDPOINT = "/v1/embeddings"
NATIVE_DIMENSIONS = {"text-embedding-3-large": 3072}
DEFAULT_DIMENSIONS = 1536
"""text-embedding-3-small and text-embedding-ada-002 (and any other model name)."""

Failure = tuple[int, dict[str, Any]]


def _err(message: str, param: str, code: str | None = "invalid_value") -> Failure:
    return 400, {"error": {"message": message, "type": "invalid_request_error", "param": param, "code": code}}


def _inputs(body: dict[str, Any]) -> list[str] | None:
    """The texts to embed (a string or a list of strings; token arrays are read as their numbers)."""
    value = body.get("input")
    if isinstance(value, str):
        return [value]
    if isinstance(value, list) and value:
        if all(isinstance(item, str) for item in value):
            return list(value)
        if all(isinstance(item, int) for item in value):
            return [" ".join(map(str, value))]
        if all(isinstance(item, list) for item in value):
            return [" ".join(map(str, item)) for item in value]
    return None


def check_embedding_request(body: dict[str, Any]) -> tuple[int, dict[str, Any] | None]:
    """The emulated HTTP status of an embeddings body, and the error body when not 200."""
    if "input" not in body:
        return _err("Missing required parameter: 'input'.", "input", "missing_required_parameter")
    inputs = _inputs(body)
    if inputs is None or any(text == "" for text in inputs):
        return _err("'input' must be a non-empty string or a non-empty array of non-empty strings.", "input")
    dimensions = body.get("dimensions")
    if dimensions is not None and (
        not isinstance(dimensions, int) or isinstance(dimensions, bool) or dimensions < 1
    ):
        return _err(
            f"Invalid value for 'dimensions': {dimensions!r}. Expected an integer >= 1.", "dimensions"
        )
    return 200, None


def embedding_prompt_tokens(body: dict[str, Any]) -> int:
    """Input tokens of an embeddings body (no chat overhead: the texts alone; a token array is as
    many tokens as it holds ids, as the provider counts it)."""
    value = body.get("input")
    if isinstance(value, list) and value and all(isinstance(item, int) for item in value):
        return len(value)
    if isinstance(value, list) and value and all(isinstance(item, list) for item in value):
        return sum(len(item) for item in value)
    return sum(count_tokens(text) for text in _inputs(body) or [])


def _vector(model: str, text: str, size: int) -> list[float]:
    raw = hashlib.shake_256(f"{model}\x00{text}".encode()).digest(2 * size)
    values = [int.from_bytes(raw[i : i + 2], "big") / 32767.5 - 1.0 for i in range(0, 2 * size, 2)]
    norm = math.sqrt(sum(v * v for v in values)) or 1.0
    return [round(v / norm, 6) for v in values]


def embedding_response(body: dict[str, Any]) -> dict[str, Any]:
    """The embeddings ``list`` answering `body` (which must pass `check_embedding_request`)."""
    model = str(body.get("model"))
    dimensions = body.get("dimensions")
    size = dimensions if isinstance(dimensions, int) else NATIVE_DIMENSIONS.get(model, DEFAULT_DIMENSIONS)
    texts = _inputs(body) or []
    tokens = embedding_prompt_tokens(body)
    return {
        "object": "list",
        "data": [
            {"object": "embedding", "index": index, "embedding": _vector(model, text, size)}
            for index, text in enumerate(texts)
        ],
        "model": model,
        "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
    }
