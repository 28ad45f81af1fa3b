"""The built-in failure scenarios of the emulator, and the registry of scenario names.

``ok`` (alias ``default``: everything succeeds), ``item-errors``, ``expire``, ``fail``, ``fail-once``,
``throttle``, ``flaky-download`` and ``slow``; each class below says exactly what its scenario does,
the same for every provider unless noted. They are written so that the gateway's own remedies work:
resubmitting what failed once succeeds, and SDK retries absorb throttling. How a scenario is chosen
(per server, per batch) and the hooks a new one overrides: ``scenario_base``;
:func:`register_scenario` makes a new one selectable by name.
"""

from __future__ import annotations

import hashlib
import re
import threading
from collections.abc import Callable, Iterator

from .protocol import Provider, Reply, Request, anthropic_error, error_reply, openai_error
from .scenario_base import (
    BatchRequest,
    CreateContext,
    ItemFault,
    PollAction,
    PollContext,
    Scenario,
    ScenarioMemory,
    ValidationIssue,
)

ENQUEUED_LIMIT_MESSAGE = (
    "Enqueued token limit reached for {model} in organization org-emulator. "
    "Limit: 90,000 enqueued tokens. Please try again once some in_progress batches have been completed."
)
"""The `fail` / `fail-once` error message (OpenAI's real wording); `{model}` is the batch's model."""

THROTTLED_CALLS = 3
"""`throttle`: calls of each kind (per provider) answered with 429 after the scenario is selected."""

STALLED_POLLS = 6
"""`slow`: retrieves a batch stays in progress before advancing normally."""

_OPENAI_CALLS = (  # OpenAI's routes (/v1/...) and Azure OpenAI's (/openai/...)
    ("POST", re.compile(r"/(?:v1|openai)/files"), "upload"),
    ("POST", re.compile(r"/(?:v1|openai)/batches"), "create"),
    ("GET", re.compile(r"/(?:v1|openai)/batches/[^/]+"), "retrieve"),
    ("GET", re.compile(r"/(?:v1|openai)/files/[^/]+/content"), "download"),
)
_ANTHROPIC_CALLS = (
    ("POST", re.compile(r"/v1/messages/batches"), "create"),
    ("GET", re.compile(r"/v1/messages/batches/[^/]+"), "retrieve"),
    ("GET", re.compile(r"/v1/messages/batches/[^/]+/results"), "download"),
)

# Bedrock's downloads are S3 reads (not served here): only creates and retrieves are throttled.
_BEDROCK_CALLS = (
    ("POST", re.compile(r"/model-invocation-job"), "create"),
    ("GET", re.compile(r"/model-invocation-job/[^/]+"), "retrieve"),
)


def call_kind(request: Request) -> str | None:
    """The kind of call `throttle` counts: upload, create, retrieve, download; None for others."""
    calls = {"anthropic": _ANTHROPIC_CALLS, "bedrock": _BEDROCK_CALLS}.get(request.provider, _OPENAI_CALLS)
    for method, pattern, kind in calls:
        if request.method == method and pattern.fullmatch(request.path):
            return kind
    return None


def rate_limit_reply(provider: Provider) -> Reply:
    """The provider's 429 answer, asking SDKs to retry after 10 ms."""
    headers = {"retry-after-ms": "10", "retry-after": "0"}
    if provider == "bedrock":
        return error_reply(provider, 429, "Too many requests, please wait before trying again (emulated).")
    if provider == "anthropic":
        return anthropic_error(
            429,
            "Number of requests has exceeded your per-minute rate limit (emulated). "
            "Please reduce the rate of requests or try again later.",
            type_="rate_limit_error",
            headers=headers,
        )
    return openai_error(
        429,
        "Rate limit reached for requests in organization org-emulator on requests per min (RPM): "
        "Limit 60, Used 60, Requested 1. Please try again in 10ms. "
        "Visit https://platform.openai.com/account/rate-limits to learn more.",
        type_="requests",
        code="rate_limit_exceeded",
        headers=headers,
    )


class ItemErrors(Scenario):
    """`item-errors`: position 3 (mod 10) fails for good, position 7 (mod 10) fails once.

    The first time the server sees a request (key: hash of custom_id + body/params), its position i
    in that batch (0-based, input order) decides its fate for good: i % 10 == 3 fails permanently
    (OpenAI: status_code 400 `invalid_request_error`; Anthropic: errored `invalid_request_error`)
    every time it is sent; i % 10 == 7 fails once with a retryable error (OpenAI: status_code 500
    `server_error`; Anthropic: errored `api_error` when i % 20 == 7, `overloaded_error` when
    i % 20 == 17) and succeeds whenever it is sent again; all others succeed. So resubmitting the
    retryable items succeeds and never introduces new failures.
    """

    name = "item-errors"

    def item_fault(self, context: CreateContext, request: BatchRequest) -> ItemFault | None:
        position = request.index % 10
        fate = "permanent" if position == 3 else "retryable" if position == 7 else "ok"
        fate, first = self.memory.remember_first("request:" + request.key, fate)
        if fate == "permanent":
            return ItemFault(
                400,
                "invalid_request_error",
                "Invalid request (emulated by the item-errors scenario; this request always fails).",
            )
        if fate != "retryable" or not first:
            return None
        if context.provider == "openai":
            return ItemFault(
                500,
                "server_error",
                "The server had an error while processing your request. Sorry about that! (emulated)",
            )
        if request.index % 20 == 17:
            return ItemFault(529, "overloaded_error", "Overloaded (emulated)")
        return ItemFault(500, "api_error", "Internal server error (emulated)")


class Expire(Scenario):
    """`expire`: a batch of unseen requests expires on its 2nd retrieve, half done.

    The first half of its requests (n // 2, input order) are finished. OpenAI: status `expired`,
    those in the output file, the rest in the error file with code `batch_expired`; Anthropic:
    `ended`, the rest `{"type": "expired"}` with matching `request_counts`. A batch with any request
    seen before (a resubmission of the expired items) runs normally.
    """

    name = "expire"

    def __init__(self) -> None:
        self.expires = False

    def on_create(self, context: CreateContext) -> Reply | None:
        self.expires = self.memory.first_sight("request:" + r.key for r in context.requests)
        return None

    def polls_to_complete(self, default: int) -> int:
        return 2 if self.expires else default

    def on_poll(self, context: PollContext) -> PollAction:
        return PollAction.EXPIRE if self.expires and context.poll >= 2 else PollAction.ADVANCE


class Fail(Scenario):
    """`fail`: every batch hits the enqueued-token limit (Anthropic: the create call is rejected).

    OpenAI: created as `validating`, `failed` on the first retrieve with `errors.data` = [{code
    `token_limit_exceeded`, message `ENQUEUED_LIMIT_MESSAGE`}]. Anthropic has no failed state, so
    the create call answers HTTP 400 `invalid_request_error` with the same message and no batch is
    created.
    """

    name = "fail"

    def __init__(self) -> None:
        self.fails = False
        self.model = "the model"

    def fails_now(self, context: CreateContext) -> bool:
        return True

    def on_create(self, context: CreateContext) -> Reply | None:
        self.model = context.model or self.model
        self.fails = self.fails_now(context)
        if self.fails and context.provider == "anthropic":
            return anthropic_error(400, ENQUEUED_LIMIT_MESSAGE.format(model=self.model))
        return None

    def on_poll(self, context: PollContext) -> PollAction:
        if self.fails and context.status == "validating":
            return PollAction.FAIL
        return PollAction.ADVANCE

    def validation_errors(self) -> list[ValidationIssue]:
        return [
            ValidationIssue(
                code="token_limit_exceeded", message=ENQUEUED_LIMIT_MESSAGE.format(model=self.model)
            )
        ]


class FailOnce(Fail):
    """`fail-once`: like `fail` for a batch of unseen requests; resubmissions run normally."""

    name = "fail-once"

    def fails_now(self, context: CreateContext) -> bool:
        return self.memory.first_sight("request:" + r.key for r in context.requests)


class Throttle(Scenario):
    """`throttle`: the first 3 uploads, creates, retrieves and downloads per provider get 429.

    The provider's rate-limit error with headers `retry-after-ms: 10`, `retry-after: 0`; later calls
    succeed. An SDK with max_retries >= 3 (the gateway uses 5) retries transparently, so whole jobs
    still succeed.
    """

    name = "throttle"

    def before_request(self, request: Request, batch_id: str | None) -> Reply | None:
        kind = call_kind(request)
        if kind is not None and self.memory.count(f"{request.provider}:{kind}") <= THROTTLED_CALLS:
            return rate_limit_reply(request.provider)
        return None


class FlakyDownload(Scenario):
    """`flaky-download`: the first download of each content breaks after half its bytes.

    The first download of each output/error file or results stream sends the full Content-Length but
    closes the connection after len // 2 bytes (usually mid-line); the next download of the same
    content is complete.
    """

    name = "flaky-download"

    def download_chunks(self, data: memoryview, chunk_size: int) -> Iterator[memoryview]:
        if self.memory.first_sight(["download:" + hashlib.sha256(data).hexdigest()]):
            data = data[: len(data) // 2]
        yield from super().download_chunks(data, chunk_size)


class Slow(Scenario):
    """`slow`: in progress for 6 retrieves, then normal.

    OpenAI: the first retrieve moves the batch from `validating` to `in_progress` with nothing
    finished.
    """

    name = "slow"

    def __init__(self) -> None:
        self.stalled = 0

    def on_poll(self, context: PollContext) -> PollAction:
        if self.stalled < STALLED_POLLS:
            self.stalled += 1
            return PollAction.STALL
        return PollAction.ADVANCE


# ---------------------------------------------------------------- registry

ScenarioFactory = Callable[[], Scenario]

_registry: dict[str, ScenarioFactory] = {
    "default": Scenario,
    "ok": Scenario,
    ItemErrors.name: ItemErrors,
    Expire.name: Expire,
    Fail.name: Fail,
    FailOnce.name: FailOnce,
    Throttle.name: Throttle,
    FlakyDownload.name: FlakyDownload,
    Slow.name: Slow,
}
_registry_lock = threading.Lock()

BUILTIN_SCENARIOS = ("ok", "item-errors", "expire", "fail", "fail-once", "throttle", "flaky-download", "slow")


def register_scenario(name: str, factory: ScenarioFactory) -> None:
    """Make `factory` selectable under `name`."""
    with _registry_lock:
        _registry[name] = factory


def scenario_names() -> list[str]:
    with _registry_lock:
        return sorted(_registry)


def check_scenario_name(name: str) -> None:
    """ValueError naming the registered scenarios when `name` is not one of them."""
    with _registry_lock:
        known = name in _registry
    if not known:
        raise ValueError(f"Unknown emulator scenario {name!r}; registered: {', '.join(scenario_names())}.")


def make_scenario(name: str, memory: ScenarioMemory | None = None) -> Scenario:
    """A fresh instance of the named scenario (bound to `memory` when given); KeyError when unknown."""
    with _registry_lock:
        factory = _registry[name]
    scenario = factory()
    if memory is not None:
        scenario.bind(memory)
    return scenario
