"""Provider clients configured from Secrets Manager (cached), never from environment variables."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities import parameters

from batch_gateway.providers import get_provider
from batch_gateway.providers.base import BatchProvider, ProviderError
from batch_gateway.settings import Settings

SECRET_CACHE_SECONDS = 300


def api_key_field(provider: str) -> str:
    """The key inside the provider secret's JSON that holds this provider's API key."""
    return f"{provider.replace('-', '_')}_api_key"  # azure-openai -> azure_openai_api_key


def provider_for(name: str, settings: Settings) -> BatchProvider:
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
        from batch_gateway.providers.azure_openai_batch import require_endpoint

        # Checked here, not at first use: without it the job cannot run, so it fails at once, saying so.
        return get_provider(
            name,
            api_key=str(api_key),
            base_url=require_endpoint(settings.azure_openai_endpoint),
            api_version=settings.azure_openai_api_version,
        )
    base_url = settings.openai_base_url if name == "openai" else settings.anthropic_base_url
    return get_provider(name, api_key=str(api_key), base_url=base_url or None)
