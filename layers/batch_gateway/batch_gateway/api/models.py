"""Request and response models of the HTTP API, and its limits.

The routes (``batches``, ``results``, ``cancel``) declare these as their bodies and answers, so
Powertools validates requests against them and the OpenAPI document (``openapi.json``) is
generated from them: their field descriptions and docstrings are the API's reference.

``SubmitBatch`` is the request of ``POST /batches``; ``JobView``/``JobDetail``/``JobList`` the job
answers (the job summary plus links, chunks and provider batches), ``ResultRow``/``ResultPage``/
``ResultsLink`` the results, ``ErrorBody`` every error. The limits (inline items, body and source
sizes, system prompt bytes, page sizes) are here so the schema and the checks share one number.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, WithJsonSchema, model_validator
from pydantic.json_schema import SkipJsonSchema

from batch_gateway.models import (
    BatchItem,
    Endpoint,
    InputFormat,
    InvalidLinePolicy,
    JobSummary,
    Provider,
    ResultCounts,
)

# Inline items: API Gateway takes at most 10 MB and Lambda 6 MB per request; larger files go through
# `source` (an S3 object) or a direct upload to inbox/.
MAX_INLINE_ITEMS = 5_000
MAX_BODY_BYTES = 5 * 1024 * 1024
# Sources are copied server-side into the inbox within one API call (API Gateway allows 29 s).
MAX_SOURCE_BYTES = 5 * 1024**3
# The spec travels as S3 object metadata (2 KB in all): the system prompt's share, in UTF-8 bytes.
MAX_SYSTEM_PROMPT_BYTES = 1_200
MAX_MODEL_LENGTH = 200
MAX_PAGE_SIZE = 1_000
DEFAULT_PAGE_SIZE = 100
IDEMPOTENCY_KEY_PATTERN = r"^[\x21-\x7e]{1,255}$"
NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_-]{0,39}$"
SOURCE_PATTERN = r"^s3://[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]/.+$"

_ITEM_SCHEMA = {key: value for key, value in BatchItem.model_json_schema().items() if key != "title"}


class ErrorBody(BaseModel):
    """Every error: a stable machine-readable code, a sentence for people, and details when useful."""

    error: str = Field(description="Machine-readable code, e.g. `not_found`, `invalid_items`, `conflict`.")
    message: str = Field(description="What went wrong and what to do about it.")
    details: Any = Field(
        default=None,
        description="For invalid items: the line errors ({line, field, reason, custom_id}); for invalid "
        "requests: the failing fields ({loc, type, msg}).",
    )


class SubmitBatch(BaseModel):
    """A job: the spec at top level, plus either inline ``items`` or an S3 ``source``."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"oneOf": [{"required": ["items"]}, {"required": ["source"]}]},
    )

    provider: Provider
    model: str = Field(
        min_length=1,
        max_length=MAX_MODEL_LENGTH,
        pattern=r"^[\x21-\x7e]+$",
        description="Model name, e.g. gpt-4o-mini or claude-3-5-haiku-latest (printable ASCII).",
    )
    # Constraints sit on the str/list branch: on the field they would also apply to None.
    system_prompt: Annotated[str, Field(max_length=MAX_SYSTEM_PROMPT_BYTES)] | SkipJsonSchema[None] = Field(
        default=None,
        description=f"Optional system prompt, at most {MAX_SYSTEM_PROMPT_BYTES} bytes of UTF-8.",
    )
    name: Annotated[str, Field(pattern=NAME_PATTERN)] | SkipJsonSchema[None] = Field(
        default=None,
        description="The readable part of the job id, `<name>-<16 hex>` (default `batch`): letters, "
        "digits, `-` and `_`, at most 40. The CLI and the Python client send the file's stem.",
    )
    on_invalid: InvalidLinePolicy = Field(
        default="reject",
        description="`reject`: any invalid item rejects the request (422). `skip`: valid items run and "
        "each invalid one gets an error result.",
    )
    endpoint: Endpoint = Field(
        default="chat",
        description="What the provider runs: `chat` (chat completions, the default) or `embeddings` "
        "(OpenAI and Azure only: each item's `user_message` is the input; the answer is "
        "`response.embedding`).",
    )
    format: InputFormat | SkipJsonSchema[None] = Field(
        default=None,
        description="How the items (or the source's lines) are written: `items` (BatchItems), `openai`, "
        "`anthropic`, `bedrock` (the providers' own batch lines, run on any provider) or `csv` (a "
        "`source` table with a header row, each row filling `template`). Default: detected from the "
        "first line.",
    )
    template: Annotated[str, Field(min_length=1)] | SkipJsonSchema[None] = Field(
        default=None,
        description="csv: each row's prompt, naming columns in braces, e.g. `Classify this ticket: {text}`. "
        f"With system_prompt, at most {MAX_SYSTEM_PROMPT_BYTES} bytes of UTF-8 together.",
    )
    id_column: Annotated[str, Field(min_length=1, max_length=100)] | SkipJsonSchema[None] = Field(
        default=None, description="csv: the column holding each row's custom_id (default: `row-<n>`)."
    )
    # Items are validated line by line by batch_gateway.intake.checks (the intake's own rules and
    # messages), not by the body model: the schema documents BatchItem, the handler explains errors.
    items: (
        Annotated[
            list[Any],
            Field(max_length=MAX_INLINE_ITEMS),
            WithJsonSchema(
                {"type": "array", "items": _ITEM_SCHEMA, "minItems": 1, "maxItems": MAX_INLINE_ITEMS}
            ),
        ]
        | SkipJsonSchema[None]
    ) = Field(
        default=None,
        description=f"Inline BatchItems, at most {MAX_INLINE_ITEMS} and a {MAX_BODY_BYTES // 2**20} MB body.",
    )
    source: Annotated[str, Field(pattern=SOURCE_PATTERN, max_length=1100)] | SkipJsonSchema[None] = Field(
        default=None,
        description="s3:// URI of a JSONL file of BatchItems: under uploads/ in the stack's data bucket, "
        "or in a bucket listed in the stack parameter ApiSourceBuckets.",
    )
    response_schema: dict[str, Any] | SkipJsonSchema[None] = Field(
        default=None,
        description="A JSON Schema (an object at its root) every answer must match: each provider is asked "
        "for JSON of it, the answer is in `response.parsed`, and one that does not match is an error "
        "line retried in a follow-up round. OpenAI and Azure need every property in `required`.",
    )

    @model_validator(mode="after")
    def _items_or_source(self) -> SubmitBatch:
        if (self.items is None) == (self.source is None):
            raise ValueError("give either 'items' (inline BatchItems) or 'source' (an s3:// URI), not both")
        return self


class Links(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    self_: str = Field(alias="self", description="This job.")
    results: str = Field(description="Its results.")
    cancel: str = Field(description="POST here to cancel it.")


class JobView(JobSummary):
    """A job as the API shows it: the jobs-table row (BatchJobInfo + what the job did) and links."""

    raw: SkipJsonSchema[Any] = Field(default=None, exclude=True)
    links: Links


class ProviderBatch(BaseModel):
    round: int = Field(description="0 for the first submission, 1.. for follow-up rounds of retried items.")
    attempt: int = Field(description="0, or the resubmission number of a batch that failed as a whole.")
    id: str = Field(description="The provider's batch id.")


class ChunkView(BaseModel):
    """One provider batch's worth of items and where it stands."""

    chunk: int
    status: str | None = None
    final_status: str | None = None
    model: str | None = None
    item_count: int | None = None
    provider_batch_id: str | None = Field(default=None, description="The latest provider batch of the chunk.")
    provider_batches: list[ProviderBatch] = Field(default_factory=list)
    provider_status: str | None = None
    request_counts: dict[str, int] | None = None
    counts: ResultCounts | None = None
    rounds: int | None = None
    message: str | None = None
    submitted_at: float | None = None
    polled_at: float | None = None
    collected_at: float | None = None


class JobDetail(JobView):
    chunks: list[ChunkView] = Field(default_factory=list)


class JobList(BaseModel):
    jobs: list[JobView]
    next_token: str | None = Field(default=None, description="Pass as next_token for the next page.")


class ResultRow(BaseModel):
    """One input line's outcome, as the results table keeps it."""

    job_id: str
    custom_id: str
    line: int | None = None
    ok: bool
    error: str | None = None
    content: str | None = None
    finish_reason: str | None = None
    usage: dict[str, int] = Field(default_factory=dict)
    tool_calls: list[dict[str, Any]] | None = None
    parsed: dict[str, Any] | list[Any] | None = Field(
        default=None, description="The answer parsed as JSON, in a job with a response_schema."
    )
    result_uri: str | None = Field(
        default=None, description="For an answer too large for a row: where the whole BatchResult is."
    )
    result_url: str | None = Field(default=None, description="A presigned HTTPS URL of result_uri.")


class ResultPage(BaseModel):
    results: list[ResultRow] = Field(description="Rows in custom_id order (results.jsonl is in input order).")
    next_token: str | None = None


class ResultsLink(BaseModel):
    url: str = Field(
        description="Presigned HTTPS URL of results.jsonl (one BatchResult per line, input order)."
    )
    expires_in: int = Field(description="Seconds the URL stays valid.")
    results_uri: str


ResultFormat = Literal["json", "url"]
ResultFilter = Literal["errors"]
