"""``GatewayBatchProcessor``: the reference library's batch processors, served by the gateway.

Code written against ``ractogateway.batch`` (``OpenAIBatchProcessor`` / ``AnthropicBatchProcessor``)
changes its import and constructor only: the eight methods keep their names, parameters and return
types (``submit_batch``/``poll_status`` -> ``BatchJobInfo``, ``get_results``/``submit_and_wait`` ->
``list[BatchResult]``, and the ``a``-prefixed async twins). Items may be the reference library's
``BatchItem``, ours, or plain dicts; ``prompt=`` a ``RactoPrompt`` (its compiled text becomes the
system prompt) or a string. What comes back are our models, which validate as the reference's.
Beyond them: ``estimate`` (what the items would make and cost, no job made), ``iter_results``
(streamed, flat memory), ``cancel``, ``response_schema`` (structured answers: a JSON Schema or a
pydantic model, each answer in ``response.parsed``), a readable ``name`` for the job id and an
``idempotency_key`` (derived from the items unless given). ``completion_window`` is accepted
for compatibility and ignored: the gateway picks each provider's window.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from typing import Any

from pydantic import BaseModel

from batch_gateway.models import BatchResult, BatchStatus, Estimate, JobSummary
from batch_gateway_client.client import AsyncGatewayClient, GatewayClient
from batch_gateway_client.core import GatewayConfig

_UNSUCCESSFUL = (BatchStatus.FAILED, BatchStatus.CANCELLED, BatchStatus.EXPIRED)


def _item(item: Any) -> Any:
    """A BatchItem (the reference library's or ours) or a dict, as the JSON the API takes."""
    dump = getattr(item, "model_dump", None)
    return dump(mode="json") if callable(dump) else item


def _prompt_text(prompt: Any) -> str | None:
    """A RactoPrompt (anything with ``compile()``) or a string, as system-prompt text."""
    if prompt is None or isinstance(prompt, str):
        return prompt
    compile_ = getattr(prompt, "compile", None)
    if not callable(compile_):
        raise TypeError(f"prompt must be a string or a RactoPrompt, not {type(prompt).__name__}")
    return str(compile_())


def _schema(response_schema: Any) -> dict[str, Any] | None:
    """A JSON Schema dict, or a pydantic model class as its JSON Schema (``model_json_schema()``)."""
    if response_schema is None:
        return None
    if isinstance(response_schema, type) and issubclass(response_schema, BaseModel):
        return response_schema.model_json_schema()
    if isinstance(response_schema, Mapping):
        return dict(response_schema)
    raise TypeError(
        "response_schema must be a JSON Schema dict or a pydantic model class, "
        f"not {type(response_schema).__name__}"
    )


def _info(job: dict[str, Any]) -> JobSummary:
    """The API's job as a BatchJobInfo (a JobSummary: BatchJobInfo plus counts, usage, cost...)."""
    return JobSummary.model_validate({**job, "raw": job})


def _check_finished(job: dict[str, Any]) -> str:
    status = BatchStatus(job["status"])
    if status in _UNSUCCESSFUL:
        reason = f": {job['reason']}" if job.get("reason") else ""
        raise RuntimeError(f"Batch {job['job_id']!r} ended with status {status.value!r}{reason}.")
    return str(job["job_id"])


class GatewayBatchProcessor:
    """A drop-in for ``ractogateway.batch``'s processors that runs the batch through Batch Gateway."""

    def __init__(
        self,
        provider: str = "openai",
        model: str = "gpt-4o-mini",
        *,
        endpoint: str | None = None,
        stack: str | None = None,
        system_prompt: str | None = None,
        default_prompt: Any = None,
        response_schema: Mapping[str, Any] | type[BaseModel] | None = None,
        api_key: str | None = None,
        region: str | None = None,
        on_invalid: str = "reject",
        name: str | None = None,
        timeout: float = 60.0,
        retries: int = 5,
    ) -> None:
        if (endpoint is None) == (stack is None):
            raise ValueError("give endpoint='https://…/v1' or stack='<stack name>' (one of them)")
        config = (
            GatewayConfig.from_stack(stack, region) if stack else GatewayConfig(str(endpoint), region=region)
        )
        if api_key:
            config.auth, config.api_key = "API_KEY", api_key
        self.provider, self.model, self.name = provider, model, name
        self._system_prompt = system_prompt if system_prompt is not None else _prompt_text(default_prompt)
        self._on_invalid = on_invalid
        self.response_schema = _schema(response_schema)
        self._config, self._timeout, self._retries = config, timeout, retries

    def _client(self) -> GatewayClient:
        return GatewayClient(self._config, retries=self._retries, timeout=self._timeout)

    def _aclient(self) -> AsyncGatewayClient:
        return AsyncGatewayClient(self._config, retries=self._retries, timeout=self._timeout)

    def _spec(self, prompt: Any) -> dict[str, Any]:
        text = _prompt_text(prompt) if prompt is not None else self._system_prompt
        return {
            "provider": self.provider,
            "model": self.model,
            "system_prompt": text,
            "on_invalid": self._on_invalid,
            "response_schema": self.response_schema,
        }

    def _submit_args(
        self, items: Sequence[Any], prompt: Any, name: str | None, idempotency_key: str | None
    ) -> dict[str, Any]:
        return {
            "spec": self._spec(prompt),
            "items": [_item(item) for item in items],
            "name": name or self.name,
            "idempotency_key": idempotency_key,
        }

    # ------------------------------------------------------------------ the reference's methods
    def submit_batch(
        self,
        items: Sequence[Any],
        *,
        prompt: Any = None,
        completion_window: str = "24h",
        name: str | None = None,
        idempotency_key: str | None = None,
    ) -> JobSummary:
        """Submit the items as one job; returns at once (status ``pending``)."""
        with self._client() as client:
            return _info(client.submit(**self._submit_args(items, prompt, name, idempotency_key)))

    def poll_status(self, job_id: str) -> JobSummary:
        with self._client() as client:
            return _info(client.job(job_id))

    def get_results(self, job_id: str) -> list[BatchResult]:
        """Every result, in input order (for large jobs prefer :meth:`iter_results`)."""
        return list(self.iter_results(job_id))

    def submit_and_wait(
        self,
        items: Sequence[Any],
        *,
        prompt: Any = None,
        completion_window: str = "24h",
        poll_interval_s: float = 60.0,
        max_wait_s: float = 86_400.0,
        name: str | None = None,
        idempotency_key: str | None = None,
    ) -> list[BatchResult]:
        """Submit, poll until the job ends, return its results; TimeoutError / RuntimeError as the reference."""
        with self._client() as client:
            job = client.submit(**self._submit_args(items, prompt, name, idempotency_key))
            job = client.wait(job["job_id"], poll_interval_s=poll_interval_s, max_wait_s=max_wait_s)
            return list(client.iter_results(_check_finished(job)))

    async def asubmit_batch(
        self,
        items: Sequence[Any],
        *,
        prompt: Any = None,
        completion_window: str = "24h",
        name: str | None = None,
        idempotency_key: str | None = None,
    ) -> JobSummary:
        async with self._aclient() as client:
            return _info(await client.submit(**self._submit_args(items, prompt, name, idempotency_key)))

    async def apoll_status(self, job_id: str) -> JobSummary:
        async with self._aclient() as client:
            return _info(await client.job(job_id))

    async def aget_results(self, job_id: str) -> list[BatchResult]:
        return [result async for result in self.aiter_results(job_id)]

    async def asubmit_and_wait(
        self,
        items: Sequence[Any],
        *,
        prompt: Any = None,
        completion_window: str = "24h",
        poll_interval_s: float = 60.0,
        max_wait_s: float = 86_400.0,
        name: str | None = None,
        idempotency_key: str | None = None,
    ) -> list[BatchResult]:
        async with self._aclient() as client:
            job = await client.submit(**self._submit_args(items, prompt, name, idempotency_key))
            job = await client.wait(job["job_id"], poll_interval_s=poll_interval_s, max_wait_s=max_wait_s)
            return [result async for result in client.iter_results(_check_finished(job))]

    # ------------------------------------------------------------------ beyond them
    def estimate(self, items: Sequence[Any], *, prompt: Any = None) -> Estimate:
        """What submitting the items would make and cost (requests, invalid lines, provider batches,
        tokens, cost range), checked and chunked as intake would; no job is made."""
        with self._client() as client:
            return client.estimate(self._spec(prompt), items=[_item(item) for item in items])

    async def aestimate(self, items: Sequence[Any], *, prompt: Any = None) -> Estimate:
        async with self._aclient() as client:
            return await client.estimate(self._spec(prompt), items=[_item(item) for item in items])

    def iter_results(self, job_id: str) -> Iterator[BatchResult]:
        """The results one at a time as results.jsonl downloads: flat memory for any job size."""
        with self._client() as client:
            yield from client.iter_results(job_id)

    async def aiter_results(self, job_id: str) -> AsyncIterator[BatchResult]:
        async with self._aclient() as client:
            async for result in client.iter_results(job_id):
                yield result

    def cancel(self, job_id: str) -> JobSummary:
        """Ask the gateway to cancel the job (its provider batches too); a finished job stays as it is."""
        with self._client() as client:
            return _info(client.cancel(job_id))

    async def acancel(self, job_id: str) -> JobSummary:
        async with self._aclient() as client:
            return _info(await client.cancel(job_id))


__all__ = ["GatewayBatchProcessor"]
