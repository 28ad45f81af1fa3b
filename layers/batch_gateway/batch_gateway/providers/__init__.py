"""Batch providers behind one protocol (see ``base.BatchProvider``).

Importing this package imports no provider SDK: :func:`get_provider` imports only the chosen
provider's module, and that module imports its SDK only when it first talks to the provider.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from batch_gateway.providers.base import (
    BatchProgress,
    BatchProvider,
    ProviderError,
    ProviderLimits,
    ProviderResult,
    SubmittedBatch,
)
from batch_gateway.providers.custom_ids import provider_custom_id

if TYPE_CHECKING:
    from collections.abc import Callable

PROVIDER_NAMES: tuple[str, ...] = ("openai", "anthropic", "azure-openai", "bedrock")

__all__ = [
    "PROVIDER_NAMES",
    "BatchProgress",
    "BatchProvider",
    "ProviderError",
    "ProviderLimits",
    "ProviderResult",
    "SubmittedBatch",
    "get_provider",
    "provider_custom_id",
]


def get_provider(
    name: str, api_key: str, base_url: str | None = None, max_retries: int = 5, **options: Any
) -> BatchProvider:
    """The provider called ``name`` (one of PROVIDER_NAMES); ValueError for any other name.

    ``options`` are provider-specific settings (``api_version`` for azure-openai; ``bucket``,
    ``role_arn`` and ``min_records`` for bedrock, which takes no API key: it signs with IAM).
    """
    factory: Callable[..., BatchProvider]
    if name == "openai":
        from batch_gateway.providers.openai_batch import OpenAIBatchProvider

        factory = OpenAIBatchProvider
    elif name == "anthropic":
        from batch_gateway.providers.anthropic_batch import AnthropicBatchProvider

        factory = AnthropicBatchProvider
    elif name == "azure-openai":
        from batch_gateway.providers.azure_openai_batch import AzureOpenAIBatchProvider

        factory = AzureOpenAIBatchProvider
    elif name == "bedrock":
        from batch_gateway.providers.bedrock_batch import BedrockBatchProvider

        factory = BedrockBatchProvider
    else:
        raise ValueError(f"unknown provider {name!r}; expected one of: {', '.join(PROVIDER_NAMES)}")
    return factory(api_key=api_key, base_url=base_url, max_retries=max_retries, **options)
