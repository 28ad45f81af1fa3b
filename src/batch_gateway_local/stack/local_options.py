"""The knobs of the gateway on this machine (:class:`LocalOptions`) and what they set.

What ``local run``, ``local up``, the tests and the benchmarks choose (waits, chunk size, the
emulator's scenario, quotas, IAM...) becomes the template's parameters (:func:`template_parameters`),
the emulator's limits (:func:`emulator_limits`) and the deployed functions' quota settings
(:func:`quota_settings`). Apart from :mod:`.local_gateway`, which runs the gateway with them,
because this is the one place that maps an option onto each of the three.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

from batch_gateway_local.emulator import EmulatorServer, Limits


@dataclass(frozen=True)
class LocalOptions:
    """Knobs of the offline stack; the defaults keep a local job to seconds."""

    chunk_max_items: int = 10_000
    poll_initial_wait_seconds: int = 1
    poll_backoff_factor: str = "1"
    poll_max_wait_seconds: int = 1
    polls_to_complete: int = 2
    scenario: str = "ok"
    """The emulator's scenario (see batch_gateway_local.emulator.scenarios); change it between jobs
    with ``gateway.emulator.scenario = "expire"``."""
    failed_batch_retries: int = 2
    retry_rounds: int = 1
    stack_name: str = "batch-gateway-local"
    api_auth: str = "IAM"
    """The stack's ApiAuth parameter: IAM or API_KEY (what ``local up`` enforces at its HTTP front)."""
    # What the stack's provider secret holds; the emulator accepts any non-empty key.
    provider_api_keys: tuple[tuple[str, str], ...] = (
        ("openai_api_key", "sk-emulator-local"),
        ("anthropic_api_key", "sk-emulator-local"),
        ("azure_openai_api_key", "azure-emulator-local"),
    )
    azure_openai_endpoint: str | None = None
    """The stack's AzureOpenAIEndpoint: None = the emulator's, "" = not configured."""
    bedrock_min_records: int = 1
    """The stack's BedrockMinRecords and the emulated account's Bedrock quota. AWS's default is 100;
    local jobs (and their follow-up rounds) are a handful of lines, so offline it is 1."""
    iam: bool = True
    """Check every AWS call of a handler against its role (``--no-iam`` turns it off)."""
    template: Path | None = None
    """Another template than the project's (a test's copy with a permission removed)."""
    quota: int | None = None
    """``--quota N``: every provider's quota parameter of the stack (OpenAI/Azure enqueued tokens,
    Anthropic requests, Bedrock jobs, per model) and the emulator's enforced limit, both N."""
    max_chunks_in_flight: int = 0
    """The stack's MaxChunksInFlight. Offline 0: moto's interpreter starts one worker thread per
    MaxConcurrency (not per chunk), so 0 (one per chunk) is the cheapest that never caps a job."""
    parameter_overrides: tuple[tuple[str, str], ...] = ()
    """Any other template parameters, e.g. ``(("ResultsRetentionDays", "7"),)``; they win over the above."""


# The stack's quota parameters and the emulator's Limits fields that ``--quota N`` sets.
QUOTA_PARAMETERS = (
    "OpenAIEnqueuedTokenQuota",
    "AzureEnqueuedTokenQuota",
    "AnthropicBatchRequestQuota",
    "BedrockConcurrentJobQuota",
)
EMULATOR_QUOTA_FIELDS = (
    "openai_enqueued_tokens",
    "anthropic_max_processing_requests",
    "bedrock_max_concurrent_jobs",
)


def quota_parameters(quota: int | None) -> dict[str, str]:
    """Template parameters setting every provider's quota to ``quota`` (none when it is None)."""
    return {} if quota is None else dict.fromkeys(QUOTA_PARAMETERS, str(quota))


def emulator_limits(quota: int | None) -> Limits:
    """The emulator's limits with every provider's quota at ``quota`` (those this emulator enforces)."""
    if quota is None:
        return Limits()
    known = {f.name for f in dataclasses.fields(Limits)}
    return Limits(**{name: quota for name in EMULATOR_QUOTA_FIELDS if name in known})


QUOTA_SETTINGS = (
    "OPENAI_ENQUEUED_TOKENS_QUOTA",
    "AZURE_ENQUEUED_TOKENS_QUOTA",
    "ANTHROPIC_BATCH_REQUESTS_QUOTA",
    "BEDROCK_CONCURRENT_JOBS_QUOTA",
)
"""The functions' settings (environment variables) that ``--quota N`` sets, as the parameters do."""


def quota_settings(quota: int | None) -> dict[str, str]:
    """The functions' quota settings at ``quota`` (none when it is None)."""
    return {} if quota is None else dict.fromkeys(QUOTA_SETTINGS, str(quota))


def azure_openai_endpoint(options: LocalOptions, emulator: EmulatorServer) -> str:
    """The stack's AzureOpenAIEndpoint: the emulator's unless the options name one ("" = none)."""
    configured = options.azure_openai_endpoint
    return emulator.azure_openai_endpoint if configured is None else configured


def template_parameters(options: LocalOptions, emulator: EmulatorServer) -> dict[str, str]:
    """The template's parameters for these options, every provider at the (started) emulator."""
    o = options
    return {
        "OpenAIBaseUrl": emulator.openai_base_url,
        "AnthropicBaseUrl": emulator.anthropic_base_url,
        "AzureOpenAIEndpoint": azure_openai_endpoint(o, emulator),
        "BedrockEndpointUrl": emulator.bedrock_endpoint_url,
        "BedrockMinRecords": str(o.bedrock_min_records),
        "ChunkMaxItems": str(o.chunk_max_items),
        "PollInitialWaitSeconds": str(o.poll_initial_wait_seconds),
        "PollBackoffFactor": o.poll_backoff_factor,
        "PollMaxWaitSeconds": str(o.poll_max_wait_seconds),
        "FailedBatchRetries": str(o.failed_batch_retries),
        "RetryRounds": str(o.retry_rounds),
        "MaxChunksInFlight": str(o.max_chunks_in_flight),
        "ApiAuth": o.api_auth,
        **quota_parameters(o.quota),
        **dict(o.parameter_overrides),
    }
