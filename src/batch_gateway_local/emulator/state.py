"""The emulator's in-memory state, shared by every request thread under one lock.

:class:`Limits` and :class:`Config` are the knobs (provider caps and batch-queue quotas, polls to
complete a batch, download chunk size); :class:`Store` holds the files and the batches of each
provider, the per-scenario memory, the counters tests read (``batches_created``, ``files_uploaded``,
the quotas' high-water marks as :class:`QuotaHighWater`) and the clock. Each batch
has its own lock for its state machine; the store's lock guards the mappings.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from .answers import AnswerMemory
from .scenario_base import Scenario, ScenarioMemory
from .scenarios import make_scenario

MB = 1024 * 1024


@dataclass(frozen=True)
class Limits:
    """Provider limits the emulator enforces (defaults are the providers' documented ones)."""

    openai_max_requests: int = 50_000
    openai_max_file_bytes: int = 200 * MB
    openai_max_upload_bytes: int = 512 * MB
    openai_enqueued_tokens: int | None = None
    """OpenAI and Azure: prompt tokens enqueued per model over active batches; None = unlimited.
    Over it a batch is created, then fails ``token_limit_exceeded`` (each provider's own message)."""
    anthropic_max_requests: int = 100_000
    anthropic_max_body_bytes: int = 256 * MB
    anthropic_max_processing_requests: int | None = None
    """Anthropic: requests in batches not yet ended; over it a create is a 429; None = unlimited."""
    bedrock_max_concurrent_jobs: int | None = None
    """Bedrock: submitted + in-progress jobs per model; over it CreateModelInvocationJob is a
    ``ServiceQuotaExceededException``; None = unlimited (the real default is 20)."""


QUOTA_FIELDS: dict[str, str] = {
    "openai": "openai_enqueued_tokens",
    "azure-openai": "openai_enqueued_tokens",
    "anthropic": "anthropic_max_processing_requests",
    "bedrock": "bedrock_max_concurrent_jobs",
}
"""The `Limits` field holding each provider's batch-queue quota."""


@dataclass(frozen=True)
class QuotaHighWater:
    """The most each provider's quota ever held at once (recorded at every accepted create).

    Keys are models (Azure: deployments); OpenAI and Azure count prompt tokens, Anthropic requests
    (over all its models), Bedrock jobs.
    """

    max_enqueued_tokens: dict[str, dict[str, int]]
    """``{"openai": {model: tokens}, "azure-openai": {deployment: tokens}}``."""
    max_processing_requests: int
    max_concurrent_jobs: dict[str, int]

    def peak(self, provider: str) -> int:
        """The most held by one model's quota of this provider (Anthropic: the organisation's)."""
        if provider == "anthropic":
            return self.max_processing_requests
        marks = (
            self.max_concurrent_jobs if provider == "bedrock" else self.max_enqueued_tokens.get(provider, {})
        )
        return max(marks.values(), default=0)


@dataclass
class Config:
    polls_to_complete: int = 2
    limits: Limits = field(default_factory=Limits)
    scenario: str = "default"
    non_2xx_file: Literal["output", "error"] = "error"
    """Where OpenAI per-request 4xx/5xx response lines go (OpenAI: the error file)."""
    clock: Callable[[], float] = time.time
    chunk_size: int = 64 * 1024


@dataclass
class StoredFile:
    id: str
    filename: str
    purpose: str
    created_at: int
    data: bytes
    expires_at: int | None = None
    lines: list[Any] | None = None
    """Parsed JSONL lines of an uploaded batch input file (parsed once, at upload)."""
    invalid_lines: list[int] = field(default_factory=list)
    """Line numbers of a batch input file that are not JSON (the batch fails on them, not the upload)."""
    scenario: Scenario | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "object": "file",
            "bytes": len(self.data),
            "created_at": self.created_at,
            "expires_at": self.expires_at,
            "filename": self.filename,
            "purpose": self.purpose,
            "status": "processed",
            "status_details": None,
        }


@dataclass
class OpenAIItem:
    line: int
    custom_id: str
    body: dict[str, Any]
    status_code: int = 200
    """The emulated HTTP status of this request (decided at validation)."""
    error_body: dict[str, Any] | None = None
    """The response body of a non-200 request when a scenario injected the failure."""


@dataclass
class OpenAIBatch:
    id: str
    input_file_id: str
    endpoint: str
    completion_window: str
    metadata: dict[str, str] | None
    created_at: int
    expires_at: int | None
    scenario: Scenario
    polls_needed: int
    items: list[OpenAIItem] = field(default_factory=list)
    issues: list[dict[str, Any]] = field(default_factory=list)
    model: str | None = None
    prompt_tokens: int = 0
    status: str = "validating"
    polls: int = 0
    finished: int = 0
    in_progress_at: int | None = None
    finalizing_at: int | None = None
    completed_at: int | None = None
    failed_at: int | None = None
    expired_at: int | None = None
    cancelling_at: int | None = None
    cancelled_at: int | None = None
    output_file_id: str | None = None
    error_file_id: str | None = None
    usage: dict[str, Any] | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)


@dataclass
class AnthropicItem:
    custom_id: str
    params: dict[str, Any]
    error: dict[str, Any] | None = None
    """The `error` of an errored result when a scenario injected the failure."""


@dataclass
class AnthropicBatch:
    id: str
    created_at: float
    expires_at: float
    scenario: Scenario
    polls_needed: int
    items: list[AnthropicItem]
    processing_status: str = "in_progress"
    polls: int = 0
    finished: int = 0
    ended_at: float | None = None
    cancel_initiated_at: float | None = None
    archived_at: float | None = None
    counts: dict[str, int] = field(default_factory=dict)
    results: bytes | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)


class Store:
    """All emulator state behind one lock (batches also carry their own lock for state changes)."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.lock = threading.RLock()
        self._token = secrets.token_hex(4)
        self._counter = 0
        self.files: dict[str, StoredFile] = {}
        self.openai_batches: dict[str, OpenAIBatch] = {}
        self.azure_openai_batches: dict[str, OpenAIBatch] = {}
        self.anthropic_batches: dict[str, AnthropicBatch] = {}
        self.batches_created: dict[str, int] = {"openai": 0, "anthropic": 0, "azure-openai": 0}
        self.files_uploaded = 0
        self.base_url = ""
        self.scenario_memories: dict[str, ScenarioMemory] = {}
        self.answer_memory = AnswerMemory()  # the [[emulator:bad-json]] marker's (answers.py)
        self.high_water: dict[str, dict[str, int]] = {}
        """Quota high-water marks: ``{"openai"|"azure-openai"|"anthropic"|"bedrock": {key: most held}}``."""

    def note_held(self, provider: str, key: str, held: int) -> None:
        """Record what a quota holds after a create (caller holds the store lock)."""
        marks = self.high_water.setdefault(provider, {})
        marks[key] = max(marks.get(key, 0), held)

    def quota_high_water(self) -> QuotaHighWater:
        with self.lock:
            marks = {provider: dict(values) for provider, values in self.high_water.items()}
        return QuotaHighWater(
            max_enqueued_tokens={p: marks.get(p, {}) for p in ("openai", "azure-openai")},
            max_processing_requests=max(marks.get("anthropic", {}).values(), default=0),
            max_concurrent_jobs=marks.get("bedrock", {}),
        )

    def new_scenario(self, name: str) -> Scenario:
        """An instance of the named scenario bound to this server's memory for it; KeyError when unknown."""
        with self.lock:
            memory = self.scenario_memories.setdefault(name, ScenarioMemory())
        return make_scenario(name, memory)

    def reset_scenario_memory(self, name: str) -> None:
        """Forget what the named scenario remembered (batches already created keep the old memory)."""
        with self.lock:
            self.scenario_memories[name] = ScenarioMemory()

    def now(self) -> float:
        return self.config.clock()

    def new_id(self, prefix: str) -> str:
        with self.lock:
            self._counter += 1
            return f"{prefix}{self._token}{self._counter:016x}"
