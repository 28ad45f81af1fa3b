"""Which provider a name means, and that provider configured for this stack.

:func:`get_provider` makes a provider from its name (one of :data:`PROVIDER_NAMES`, as a job's
``provider`` field names it) and its settings. :func:`provider_for` is what the functions call: it
reads the provider's API key from the stack's Secrets Manager secret (through Powertools Parameters,
cached for five minutes), never from an environment variable, and fails at once, saying which key
of which secret to set, when there is none. Bedrock reads no secret: the function's role signs its
calls.

Importing this module imports no provider SDK (``openai``, ``anthropic``): each provider imports
its SDK when it first talks to the provider.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from aws_lambda_powertools.utilities import parameters

from batch_gateway.providers.anthropic.batch import AnthropicBatchProvider
from batch_gateway.providers.base import BatchProvider
from batch_gateway.providers.bedrock.batch import BedrockBatchProvider
from batch_gateway.providers.errors import ProviderError
from batch_gateway.providers.openai.azure import AzureOpenAIBatchProvider, require_endpoint
from batch_gateway.providers.openai.batch import OpenAIBatchProvider
from batch_gateway.settings import Settings

PROVIDER_NAMES: tuple[str, ...] = ("openai", "anthropic", "azure-openai", "bedrock")
SECRET_CACHE_SECONDS = 300

# Typed as factories of BatchProvider, so mypy checks that every provider class implements it.
_PROVIDERS: dict[str, Callable[..., BatchProvider]] = {
    "openai": OpenAIBatchProvider,
    "anthropic": AnthropicBatchProvider,
    "azure-openai": AzureOpenAIBatchProvider,
    "bedrock": BedrockBatchProvider,
}


def get_provider(
    name: str, api_key: str, base_url: str | None = None, max_retries: int = 5, **options: Any
) -> BatchProvider:
    """The provider called ``name`` (one of PROVIDER_NAMES); ValueError for any other name.

    ``options`` are provider-specific settings (``api_version`` for azure-openai; ``bucket``,
    ``role_arn`` and ``min_records`` for bedrock, which takes no API key: it signs with IAM).
    """
    factory = _PROVIDERS.get(name)
    if factory is None:
        raise ValueError(f"unknown provider {name!r}; expected one of: {', '.join(PROVIDER_NAMES)}")
    return factory(api_key=api_key, base_url=base_url, max_retries=max_retries, **options)


def api_key_field(provider: str) -> str:
    """The key inside the provider secret's JSON that holds this provider's API key."""
    return f"{provider.replace('-', '_')}_api_key"  # azure-openai -> azure_openai_api_key


def provider_for(name: str, settings: Settings) -> BatchProvider:
    """The provider ``name`` configured from ``settings`` and its API key from the provider secret."""
    if name == "bedrock":  # IAM only: the function's role signs the calls, the secret is never read
        return get_provider(
            name,
            api_key="",
            base_url=settings.bedrock_endpoint_url or None,
            bucket=settings.data_bucket,
            role_arn=settings.bedrock_role_arn,
            min_records=settings.bedrock_min_records,
        )
    secret: Any = parameters.get_secret(
        settings.provider_secret_arn, transform="json", max_age=SECRET_CACHE_SECONDS
    )
    api_key = secret.get(api_key_field(name)) if isinstance(secret, dict) else None
    if not api_key:
        raise ProviderError(
            f"no API key for {name}: store it as '{api_key_field(name)}' "
            f"in the secret {settings.provider_secret_arn}"
        )
    if name == "azure-openai":
        # Checked here, not at first use: without it the job cannot run, so it fails at once, saying so.
        return get_provider(
            name,
            api_key=str(api_key),
            base_url=require_endpoint(settings.azure_openai_endpoint),
            api_version=settings.azure_openai_api_version,
        )
    base_url = settings.openai_base_url if name == "openai" else settings.anthropic_base_url
    return get_provider(name, api_key=str(api_key), base_url=base_url or None)
