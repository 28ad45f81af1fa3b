"""Azure OpenAI's shape of the Files + Batches API, on top of the OpenAI emulation.

Azure serves the same batch behaviour under ``<endpoint>/openai/files`` and ``/openai/batches``, and
differs only at the edges, which is what this module adds:

* every call carries ``?api-version=``; a missing one is answered 404 "Resource not found" and one
  without the Batch API 400 "API version not supported", as Azure does;
* the key comes in an ``api-key`` header (a Microsoft Entra bearer token also works);
* request lines and batches name the route ``/chat/completions`` or ``/embeddings`` (no ``/v1``), and
  ``model`` is a deployment name (any name: the emulator has every deployment);
* the enqueued-token quota (``Limits.openai_enqueued_tokens``) is per deployment, and a batch over it
  fails ``token_limit_exceeded`` with Azure's own message;
* a batch has no 24-hour ``expires_at``: Azure aims at 24 hours but does not expire a batch that
  takes longer (the ``expire`` scenario still makes one expire, to exercise that path).

Azure batches live apart from OpenAI's: an OpenAI client never lists an Azure batch.
"""

from __future__ import annotations

from typing import Final

from .openai.api import OpenAIApi
from .protocol import Reply, Request, json_reply
from .state import Store

AZURE_PREFIX: Final = "/openai"
AZURE_CHAT_ENDPOINT: Final = "/chat/completions"
AZURE_EMBEDDINGS_ENDPOINT: Final = "/embeddings"
# api-version values with the Batch API (files with purpose "batch", batches), GA and preview.
BATCH_API_VERSIONS: Final = frozenset(
    {
        "2024-07-01-preview",
        "2024-08-01-preview",
        "2024-09-01-preview",
        "2024-10-01-preview",
        "2024-10-21",
        "2024-12-01-preview",
        "2025-01-01-preview",
        "2025-02-01-preview",
        "2025-03-01-preview",
        "2025-04-01-preview",
    }
)


def is_azure_path(path: str) -> bool:
    return path == AZURE_PREFIX or path.startswith(AZURE_PREFIX + "/")


def azure_error(status: int, code: str, message: str) -> Reply:
    """Azure's own error body (``{"error": {"code", "message"}}``), for what the gateway in front answers."""
    return json_reply({"error": {"code": code, "message": message}}, status)


def azure_authorized(headers: dict[str, str]) -> bool:
    bearer = headers.get("authorization", "")
    has_bearer = bearer.lower().startswith("bearer ") and bool(bearer[7:].strip())
    return bool(headers.get("api-key", "").strip()) or has_bearer


def azure_unauthorized() -> Reply:
    return azure_error(
        401,
        "401",
        "Access denied due to invalid subscription key or wrong API endpoint. Make sure to provide a "
        "valid key for an active subscription and use a correct regional API endpoint for your resource.",
    )


def check_api_version(request: Request) -> Reply | None:
    """Azure's answer to a missing or batch-less ``api-version``; None when the version serves batches."""
    version = request.query.get("api-version")
    if not version:
        return azure_error(404, "404", "Resource not found")
    if version not in BATCH_API_VERSIONS:
        return azure_error(400, "BadRequest", "API version not supported")
    return None


class AzureOpenAIApi(OpenAIApi):
    """The OpenAI Files + Batches emulation under Azure's routes, with its own batches."""

    name = "azure-openai"
    prefix = AZURE_PREFIX
    chat_endpoint = AZURE_CHAT_ENDPOINT
    embeddings_endpoint = AZURE_EMBEDDINGS_ENDPOINT

    def __init__(self, store: Store) -> None:
        super().__init__(store)
        self.batches = store.azure_openai_batches

    def expires_at(self, created_at: int) -> int | None:
        return None  # Azure does not expire a batch that runs past its 24-hour target

    @staticmethod
    def token_limit_message(model: str, cap: int) -> str:
        """Azure's message for a batch over the deployment's enqueued-token limit (its own wording)."""
        limit = f"{cap // 1000}K" if cap >= 1000 and cap % 1000 == 0 else f"{cap:,}"
        return (
            f"The number of enqueued tokens has surpassed the configured limit of {limit} for the "
            f"deployment '{model}'. Please either increase the limit or try again once the current jobs "
            "have finished."
        )
