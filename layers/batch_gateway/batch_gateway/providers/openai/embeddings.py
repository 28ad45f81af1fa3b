"""OpenAI (and Azure OpenAI) embeddings batches: request lines and answers (pure: no SDK, no I/O).

An OpenAI batch runs on ``/v1/embeddings`` as well as on chat completions (Azure: ``/embeddings``).
:func:`build_embeddings_request` writes one such line from a ``BatchItem``: its ``user_message`` is
the ``input``, its ``extra`` passes through (``dimensions``, ``encoding_format``, ``user``); the chat
parameters (temperature, max tokens, system prompt) do not apply to an embedding and are left out.
:func:`parse_embeddings_body` reads the answer (an ``embedding`` ``list``) into an ``LLMResponse``
whose ``embedding`` is the vector and whose ``usage`` has the prompt tokens.

Wiring (the request builder choosing this for a job spec's ``endpoint: embeddings``) lives above.
"""

from __future__ import annotations

from typing import Any, Final

from batch_gateway.models import BatchItem, LLMResponse
from batch_gateway.providers.parsing import as_dict, as_int, as_list

OPENAI_EMBEDDINGS_ENDPOINT: Final = "/v1/embeddings"
AZURE_EMBEDDINGS_ENDPOINT: Final = "/embeddings"


def build_embeddings_request(
    provider_custom_id: str, item: BatchItem, model: str, url: str = OPENAI_EMBEDDINGS_ENDPOINT
) -> dict[str, Any]:
    """One embeddings line of a batch input file (``model`` as ``request_model`` chose it)."""
    body: dict[str, Any] = {"model": model, "input": item.user_message}
    for key in sorted(item.extra):
        if key == "model":
            continue
        value = item.extra[key]
        if value is None:
            body.pop(key, None)
        else:
            body[key] = value
    return {"custom_id": provider_custom_id, "method": "POST", "url": url, "body": body}


def is_embeddings_body(body: Any) -> bool:
    """True for an embeddings answer (``{"object": "list", "data": [{"object": "embedding"...}]}``)."""
    data = as_list(as_dict(body).get("data"))
    return (
        as_dict(body).get("object") == "list" and bool(data) and as_dict(data[0]).get("object") == "embedding"
    )


def parse_embeddings_body(body: Any) -> LLMResponse:
    """LLMResponse from an embeddings answer: the first input's vector, and the usage."""
    first = as_dict(as_list(as_dict(body).get("data"))[0])
    vector = [float(value) for value in as_list(first.get("embedding"))]
    usage = as_dict(as_dict(body).get("usage"))
    prompt = as_int(usage.get("prompt_tokens")) or 0
    total = as_int(usage.get("total_tokens"))
    return LLMResponse(
        embedding=vector,
        usage={
            "prompt_tokens": prompt,
            "completion_tokens": 0,
            "total_tokens": prompt if total is None else total,
        },
    )
