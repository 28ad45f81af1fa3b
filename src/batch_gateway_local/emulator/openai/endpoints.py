"""The request kinds an OpenAI batch runs, by endpoint: chat completions or embeddings.

A batch names one endpoint (OpenAI ``/v1/chat/completions`` or ``/v1/embeddings``; Azure the same
without ``/v1``) and every line's ``url`` must match it. These three functions route a line's body
to the right emulation: its status and error body (``check_body``), its answer (``answer_body``)
and its input tokens (``body_prompt_tokens``, what the enqueued-token quota counts and the usage
reports).
"""

from __future__ import annotations

from typing import Any

from batch_gateway_local.emulator.answers import AnswerMemory
from batch_gateway_local.emulator.openai.completions import chat_completion, check_request
from batch_gateway_local.emulator.openai.embeddings import (
    check_embedding_request,
    embedding_prompt_tokens,
    embedding_response,
)
from batch_gateway_local.emulator.tokens import chat_prompt_tokens


def is_embeddings(endpoint: str) -> bool:
    return endpoint.endswith("/embeddings")


def check_body(endpoint: str, body: dict[str, Any]) -> tuple[int, dict[str, Any] | None]:
    """The emulated HTTP status of a line's body, and the error body when not 200."""
    return check_embedding_request(body) if is_embeddings(endpoint) else check_request(body)


def answer_body(
    endpoint: str, body: dict[str, Any], *, seed: str, created: int, memory: AnswerMemory | None = None
) -> dict[str, Any]:
    """The 200 response body of a line (which must pass `check_body`); `memory`: the server's, for
    the `[[emulator:bad-json]]` marker."""
    if is_embeddings(endpoint):
        return embedding_response(body)
    return chat_completion(body, seed=seed, created=created, memory=memory)


def body_prompt_tokens(endpoint: str, body: dict[str, Any]) -> int:
    return embedding_prompt_tokens(body) if is_embeddings(endpoint) else chat_prompt_tokens(body)
