"""Provider errors, at the bottom of the providers' import graph (no SDK, no other provider module).

Every provider turns its SDK's exceptions into one of two errors, so the workflow needs no SDK to
tell them apart: :class:`ProviderError` (the request is wrong, or the provider refused it for good:
the message says why, in the provider's own words) and :class:`ProviderUnavailableError` (rate
limited, a server error or unreachable: the state machine retries the task with a longer backoff
than the SDK's own retries). A third, :class:`ProviderQuotaError`, is a refusal for the account's
batch quota (Anthropic's 429 on create, Bedrock's ServiceQuotaExceededException): the chunk waits
for capacity in the quota ledger and is submitted again, never failed for it.

:func:`readable_sdk_errors` does that translation for the SDKs built on the same generated client
(``openai`` and ``anthropic``: status errors with a JSON body, connection errors, a base error); the
SDK's exception classes are passed in, so this module imports no SDK.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any


class ProviderError(Exception):
    """A provider call failed in a way the user must hear about; ``str()`` is readable."""


class ProviderUnavailableError(ProviderError):
    """Rate limited (429), a server error (5xx) or unreachable, after the SDK's own retries.

    The state machine retries a task that raises this, with a longer backoff than the SDK's.
    """


class ProviderQuotaError(ProviderError):
    """The provider refused a new batch because the account's batch quota is full (requests or jobs
    already queued): not the request's fault; the chunk waits for capacity and goes out again."""


# OpenAI / Azure fail a created batch with this error code when the enqueued-token limit is reached.
OPENAI_QUOTA_ERROR_CODE = "token_limit_exceeded"
# Bedrock's CreateModelInvocationJob error when the per-model job quota (submitted + in progress) is full.
BEDROCK_QUOTA_ERROR_CODE = "ServiceQuotaExceededException"


def is_transient_status(status_code: int) -> bool:
    """True for an HTTP status worth retrying later: 429 (rate limited) and every 5xx."""
    return status_code == 429 or status_code >= 500


def api_error_message(body: Any, fallback: str) -> str:
    """The provider's own message from an error body (``{error: {message}}`` or ``{message}``)."""
    outer = body if isinstance(body, dict) else {}
    inner = outer.get("error") if isinstance(outer.get("error"), dict) else None
    message = (inner or outer).get("message")
    if isinstance(message, str) and message:
        return message
    if isinstance(body, str) and body.strip():
        return body.strip()
    return fallback


@contextmanager
def readable_sdk_errors(
    provider: str,
    subject: str,
    status_error: type[Exception],
    connection_error: type[Exception],
    base_error: type[Exception],
    quota_on_429: bool = False,
) -> Iterator[None]:
    """Turn an SDK exception into a ProviderError whose message a user can act on (never a repr).

    ``quota_on_429``: a 429 is the account's batch quota (Anthropic's create), a ProviderQuotaError."""
    try:
        yield
    except status_error as exc:
        status_code = int(getattr(exc, "status_code", 0))
        error_class: type[ProviderError] = (
            ProviderUnavailableError if is_transient_status(status_code) else ProviderError
        )
        if quota_on_429 and status_code == 429:
            error_class = ProviderQuotaError
        message = api_error_message(getattr(exc, "body", None), "no error message given")
        raise error_class(f"{provider} rejected {subject}: {message} (HTTP {status_code})") from exc
    except connection_error as exc:
        cause = f" ({exc.__cause__})" if exc.__cause__ is not None and str(exc.__cause__) else ""
        detail = getattr(exc, "message", str(exc))
        raise ProviderUnavailableError(f"Could not reach {provider} for {subject}: {detail}{cause}") from exc
    except base_error as exc:
        # For example "No `results_url` for the given batch; Has it finished processing? in_progress"
        raise ProviderError(f"{provider} client error for {subject}: {exc}") from exc
