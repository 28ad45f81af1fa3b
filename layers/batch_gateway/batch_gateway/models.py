"""Public data contracts of Batch Gateway.

Field names, types, defaults and meaning follow the reference library's ``ractogateway.batch`` models,
so a BatchItem file written for one reads in the other and every line of our results file validates
as its ``BatchResult``. Additions (``line``, ``JobSpec``, counts) are optional fields or new models.
"""

from __future__ import annotations

from enum import Enum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator


class BatchStatus(str, Enum):
    """Union of the OpenAI and Anthropic batch states."""

    PENDING = "pending"
    IN_PROGRESS = "in_progress"
    FINALIZING = "finalizing"
    COMPLETED = "completed"
    FAILED = "failed"
    EXPIRED = "expired"
    CANCELLING = "cancelling"
    CANCELLED = "cancelled"

    @property
    def is_terminal(self) -> bool:
        return self in TERMINAL_STATUSES


TERMINAL_STATUSES = frozenset(
    {BatchStatus.COMPLETED, BatchStatus.FAILED, BatchStatus.EXPIRED, BatchStatus.CANCELLED}
)


class FinishReason(str, Enum):
    STOP = "stop"
    TOOL_CALL = "tool_call"
    LENGTH = "length"
    CONTENT_FILTER = "content_filter"
    ERROR = "error"


class BatchItem(BaseModel):
    """One request line of an input file."""

    # Unknown fields are a user's typo far more often than an intent: reject them with the line number.
    model_config = ConfigDict(extra="forbid")

    custom_id: str = Field(min_length=1, description="Unique identifier of this request within a file.")
    user_message: str = Field(min_length=1, description="The end-user's query.")
    temperature: float = Field(default=0.0, ge=0.0, le=2.0)
    max_tokens: int = Field(default=4096, gt=0)
    extra: dict[str, Any] = Field(default_factory=dict, description="Provider pass-through parameters.")


class ToolCall(BaseModel):
    """A tool/function call the model asked for (``ToolCallResult`` in the reference library)."""

    id: str = ""
    name: str
    arguments: dict[str, Any] = Field(default_factory=dict)


class LLMResponse(BaseModel):
    """Provider-agnostic answer."""

    content: str | None = None
    thinking: str | None = None
    parsed: dict[str, Any] | list[Any] | None = None
    tool_calls: list[ToolCall] = Field(default_factory=list)
    finish_reason: FinishReason = FinishReason.STOP
    usage: dict[str, int] = Field(default_factory=dict)
    raw: Any = None
    embedding: list[float] | None = None
    """The vector of an embeddings request (OpenAI/Azure ``/v1/embeddings`` batches); None otherwise."""


class BatchResult(BaseModel):
    """The outcome of one input line: an answer, or an error that says why."""

    custom_id: str
    response: LLMResponse | None = None
    error: str | None = None
    raw: Any = None
    line: int | None = Field(default=None, description="1-based line number in the input file.")

    @property
    def ok(self) -> bool:
        return self.error is None and self.response is not None


class BatchJobInfo(BaseModel):
    """A job as the reference library describes it; ``job_id`` here is the gateway's job id."""

    job_id: str
    provider: str
    status: BatchStatus
    created_at: float
    request_count: int = Field(default=0, ge=0)
    raw: Any = None


Provider = Literal["openai", "anthropic", "azure-openai", "bedrock"]
InvalidLinePolicy = Literal["reject", "skip"]
# How an input file's lines are written (intake.formats): our BatchItems, a provider's own batch
# lines, or a CSV table with a prompt template. None: detected from the first line.
InputFormat = Literal["items", "openai", "anthropic", "bedrock", "csv"]
Endpoint = Literal["chat", "embeddings"]


class JobSpec(BaseModel):
    """What a job adds to its items: where and how to run them."""

    model_config = ConfigDict(extra="forbid")

    provider: Provider
    model: str = Field(min_length=1)
    system_prompt: str | None = None
    on_invalid: InvalidLinePolicy = "reject"
    tags: dict[str, str] = Field(default_factory=dict)
    # A JSON Schema every answer must match (structured answers: providers/structured.py), as the
    # provider gets it (providers.structured.prepare_schema); None: free-text answers.
    response_schema: dict[str, Any] | None = None
    # What the provider runs: chat completions, or embeddings (OpenAI and Azure /v1/embeddings batches:
    # each item's user_message is the input, the answer is response.embedding).
    endpoint: Endpoint = "chat"
    # The input file's format (see InputFormat) and, for CSV, the prompt template and id column.
    format: InputFormat | None = None
    template: str | None = Field(default=None, min_length=1)
    id_column: str | None = Field(default=None, min_length=1)

    @model_validator(mode="after")
    def _template_for_csv_only(self) -> JobSpec:
        if (self.format == "csv" or self.id_column) and not self.template:
            raise ValueError(
                "a CSV file needs a prompt template naming its columns, e.g. 'Classify this ticket: {text}'"
            )
        if self.format not in (None, "csv") and (self.template or self.id_column):
            raise ValueError(f"template and id-column apply to CSV files only, not to format {self.format!r}")
        if self.endpoint == "embeddings" and self.provider not in ("openai", "azure-openai"):
            raise ValueError(
                f"embeddings batches run on openai and azure-openai only, not on {self.provider}: "
                "choose one of them, or the chat endpoint"
            )
        if self.endpoint == "embeddings" and (self.response_schema is not None or self.system_prompt):
            raise ValueError("an embeddings job takes no response schema and no system prompt")
        return self


class ResultCounts(BaseModel):
    succeeded: int = 0
    errored: int = 0
    expired: int = 0
    cancelled: int = 0
    # Lines skipped at intake (on_invalid=skip): never sent, each answered by an error result line.
    invalid: int = 0

    @property
    def total(self) -> int:
        return self.succeeded + self.errored + self.expired + self.cancelled + self.invalid

    def add(self, other: ResultCounts) -> ResultCounts:
        return ResultCounts(
            succeeded=self.succeeded + other.succeeded,
            errored=self.errored + other.errored,
            expired=self.expired + other.expired,
            cancelled=self.cancelled + other.cancelled,
            invalid=self.invalid + other.invalid,
        )


def add_usage(total: dict[str, int], usage: dict[str, int]) -> None:
    """Accumulate token counts in place (keys are summed, missing keys count as zero)."""
    for key, value in usage.items():
        total[key] = total.get(key, 0) + int(value)


class JobCost(BaseModel):
    """Cost of a job in USD at batch prices; ``usd`` is None (unknown) when a model has no price."""

    usd: float | None = None
    unpriced_models: list[str] = Field(default_factory=list)
    prices_as_of: str | None = None


class ProviderBatches(BaseModel):
    """The provider batches a job created, and how the provider's quota shaped them."""

    submitted: int = Field(default=0, description="Provider batches created.")
    failed: int = Field(
        default=0,
        description="Batches that failed as a whole for a reason other than quota (FailedBatchRetries counts these).",
    )
    requeued_for_quota: int = Field(
        default=0,
        description="Batches the provider refused or failed for its quota; each chunk went back to waiting.",
    )
    max_in_flight: int = Field(
        default=0,
        description="The most of this job's batches holding the provider's quota at once (the job's own concurrency).",
    )


class JobSummary(BatchJobInfo):
    """``summary.json`` and the jobs-table row: the final BatchJobInfo plus what the job did."""

    model: str
    source: str | None = None
    counts: ResultCounts = Field(default_factory=ResultCounts)
    usage: dict[str, int] = Field(default_factory=dict)
    cost: JobCost = Field(default_factory=JobCost)
    chunk_count: int = 0
    # Invalid lines skipped at intake (on_invalid=skip); request_count counts only the submitted ones.
    invalid_count: int = 0
    reason: str | None = None
    cancel_requested: bool = False
    retry_rounds: list[dict[str, int]] = Field(
        default_factory=list, description="Per follow-up round: how many items were retried and recovered."
    )
    provider_batches: ProviderBatches = Field(default_factory=ProviderBatches)
    # The input tokens estimated at intake (OpenAI and Azure chunks carry it for the quota), to read
    # beside usage.prompt_tokens; None for providers whose quota counts requests or jobs.
    estimated_input_tokens: int | None = None
    results_uri: str | None = None
    errors_uri: str | None = None
    updated_at: float | None = None
    finished_at: float | None = None


# ------------------------------------------------------------------ estimates
# An estimate of a batch before anything is sent (intake.estimate computes it; POST /batches/estimate and
# the Python client answer with it): here, beside the other contracts, so the client reads it without
# importing intake (which pulls boto3 and Powertools).
ESTIMATOR = (
    "providers.token_estimate: 1 token per 4 ASCII characters and 1 per non-ASCII character of every "
    "text the model reads (messages, system prompt, tool and schema JSON), plus 4 per message and 3 per "
    "request; conservative: it is meant to sit at or a little above the provider's own count"
)


class EstimatedLineError(BaseModel):
    line: int
    field: str | None = None
    reason: str


class EstimatedCost(BaseModel):
    """USD at batch prices; None where a model the file uses has no price (``unpriced_models``)."""

    input_usd: float | None
    expected_usd: float | None = Field(description="input plus the expected output")
    ceiling_usd: float | None = Field(description="input plus every request's max tokens of output")
    unpriced_models: list[str] = Field(default_factory=list)


class QuotaFit(BaseModel):
    unit: str
    per_model: int
    chunks_at_once: int = Field(description="how many of this file's chunks the quota lets run together")


class Estimate(BaseModel):
    provider: str
    model: str
    format: str | None = None
    accepted: bool
    reason: str | None = None
    lines: int = 0
    requests: int = 0
    invalid_lines: int = 0
    errors: list[EstimatedLineError] = Field(default_factory=list)
    provider_batches: int = 0
    estimated_input_tokens: int = 0
    estimator: str = ESTIMATOR
    output_tokens_ceiling: int = 0
    expected_output_tokens: int = 0
    cost: EstimatedCost | None = None
    quota: QuotaFit | None = None
