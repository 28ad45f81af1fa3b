"""Azure OpenAI global batch: the OpenAI Batch API on an Azure OpenAI resource.

Everything but the client and the route is the OpenAI provider's: the same files and batches calls,
states, output and error files, so this is a subclass, not a copy. What differs:

* the SDK's ``AzureOpenAI`` client talks to ``<endpoint>/openai/files`` and ``/openai/batches`` with
  an ``api-version`` query parameter and the ``api-key`` header;
* request lines and ``batches.create`` use the route ``/chat/completions`` (no ``/v1``);
* the job's ``model`` is the user's *deployment name* (a global-batch deployment), sent as the body's
  ``model``;
* Azure aims at 24 hours but does not expire a batch that takes longer. Nothing in the gateway
  assumes a 24-hour end: the workflow polls until the provider reports a final state.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Final

from batch_gateway.providers.errors import ProviderError
from batch_gateway.providers.openai.batch import OpenAIBatchProvider
from batch_gateway.providers.openai.embeddings import AZURE_EMBEDDINGS_ENDPOINT
from batch_gateway.providers.requests import AZURE_OPENAI_ENDPOINT

if TYPE_CHECKING:
    from openai import AzureOpenAI

# The newest GA data-plane version with the Batch API (files + batches); override it with the
# AzureOpenAIApiVersion stack parameter.
DEFAULT_API_VERSION: Final = "2024-10-21"


def require_endpoint(endpoint: str | None) -> str:
    """The configured resource endpoint; a ProviderError that says which parameter to set if none."""
    if not endpoint:
        raise ProviderError(
            "no Azure OpenAI endpoint configured: set the stack parameter AzureOpenAIEndpoint "
            "to your resource's endpoint, e.g. https://my-resource.openai.azure.com"
        )
    return endpoint


class AzureOpenAIBatchProvider(OpenAIBatchProvider):
    """``base_url`` is the resource endpoint, e.g. ``https://my-resource.openai.azure.com``."""

    name = "azure-openai"
    label = "Azure OpenAI"
    endpoint = AZURE_OPENAI_ENDPOINT
    embeddings_endpoint = AZURE_EMBEDDINGS_ENDPOINT

    def __init__(
        self,
        api_key: str,
        base_url: str | None = None,
        max_retries: int = 5,
        *,
        api_version: str = DEFAULT_API_VERSION,
        client: AzureOpenAI | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        super().__init__(api_key, base_url, max_retries, client=client, sleep=sleep)
        self.api_version = api_version or DEFAULT_API_VERSION

    def _new_client(self) -> AzureOpenAI:
        endpoint = require_endpoint(self._base_url)
        import openai

        # Same retry policy as OpenAI; the client adds /openai, ?api-version= and the api-key header.
        return openai.AzureOpenAI(
            azure_endpoint=endpoint,
            api_version=self.api_version,
            api_key=self._api_key,
            max_retries=self._max_retries,
        )
