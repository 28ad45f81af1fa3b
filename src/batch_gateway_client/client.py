"""The HTTP clients: ``GatewayClient`` (sync) and ``AsyncGatewayClient``, over httpx.

Both carry out :mod:`batch_gateway_client.core`'s operations: each step a generator yields is a
signed request (sent with its timeout) or a sleep; connection errors and timeouts come back as a
``Reply`` with ``error`` set, so the retry decision stays in the core. The only I/O that lives here
is streaming ``results.jsonl`` from its presigned URL line by line (``iter_results``): the download
is opened with the same retries, then read as it arrives, so memory stays flat however large the job.
httpx is the pydantic-maintained fork ``httpx2`` (the same API; the provider SDKs here use it too).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any, TypeVar

import httpx2 as httpx

from batch_gateway.models import BatchResult, Estimate
from batch_gateway_client.core import (
    RETRYABLE_STATUS,
    GatewayConfig,
    GatewayCore,
    Operation,
    Reply,
    Request,
    Sleep,
    backoff,
    download_error,
    parse_result_line,
)
from batch_gateway_client.errors import GatewayError

T = TypeVar("T")
_NETWORK_ERRORS = (httpx.TransportError,)


class GatewayClient:
    """The Batch Gateway API, synchronously (one connection pool; use it as a context manager)."""

    def __init__(
        self,
        config: GatewayConfig,
        *,
        retries: int = 5,
        timeout: float = 60.0,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.core = GatewayCore(config, retries=retries, timeout=timeout)
        self._http = httpx.Client(timeout=timeout, transport=transport)
        self._sleep = sleep

    def __enter__(self) -> GatewayClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def run(self, operation: Operation[T]) -> T:
        """Carry out one core operation: send its requests, sleep its sleeps, return its value."""
        try:
            step = next(operation)
            while True:
                if isinstance(step, Sleep):
                    self._sleep(step.seconds)
                    step = operation.send(None)
                else:
                    step = operation.send(self._send(step))
        except StopIteration as stop:
            return stop.value  # type: ignore[no-any-return]

    def _send(self, request: Request) -> Reply:
        try:
            answer = self._http.request(
                request.method,
                request.url,
                headers=request.headers,
                content=request.body,
                timeout=request.timeout,
            )
        except _NETWORK_ERRORS as exc:
            return Reply(error=f"{type(exc).__name__}: {exc}")
        return Reply(answer.status_code, answer.headers, answer.content)

    # ------------------------------------------------------------------ operations
    def submit(self, spec: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        return self.run(self.core.submit(spec, **kwargs))

    def estimate(
        self, spec: dict[str, Any], *, items: list[Any] | None = None, source: str | None = None
    ) -> Estimate:
        """What ``submit(spec, items=…)`` (or ``source=``) would make and cost; no job is made."""
        return self.run(self.core.estimate(spec, items=items, source=source))

    def job(self, job_id: str) -> dict[str, Any]:
        return self.run(self.core.job(job_id))

    def jobs(self, status: str | None = None, limit: int = 100) -> Iterator[dict[str, Any]]:
        return self._paged(lambda token: self.core.jobs_page(status, limit, token), "jobs")

    def result_rows(
        self, job_id: str, errors_only: bool = False, limit: int = 500
    ) -> Iterator[dict[str, Any]]:
        """Rows of the results table (custom_id order), page by page."""
        return self._paged(lambda token: self.core.rows_page(job_id, errors_only, limit, token), "results")

    def _paged(
        self, page: Callable[[str | None], Operation[dict[str, Any]]], key: str
    ) -> Iterator[dict[str, Any]]:
        """The ``key`` entries of every page, fetched as they are read, following ``next_token``."""
        token: str | None = None
        while True:
            answer = self.run(page(token))
            yield from answer[key]
            if not (token := answer.get("next_token")):
                return

    def results_url(self, job_id: str) -> str:
        return self.run(self.core.results_url(job_id))

    def cancel(self, job_id: str) -> dict[str, Any]:
        return self.run(self.core.cancel(job_id))

    def wait(
        self, job_id: str, *, poll_interval_s: float = 5.0, max_wait_s: float = 86_400.0, **kw: Any
    ) -> dict[str, Any]:
        return self.run(self.core.wait(job_id, poll_interval_s=poll_interval_s, max_wait_s=max_wait_s, **kw))

    def iter_lines(self, job_id: str) -> Iterator[bytes]:
        """results.jsonl as it downloads, one line at a time (input order)."""
        request = self.core.download_request(self.results_url(job_id))
        started = False
        for attempt in range(self.core.retries + 1):
            try:
                with self._http.stream("GET", request.url, timeout=request.timeout) as answer:
                    if answer.status_code in RETRYABLE_STATUS and attempt < self.core.retries:
                        self._sleep(backoff(attempt, answer.headers.get("retry-after")))
                        continue
                    if answer.status_code >= 400:
                        raise download_error(answer.status_code, answer.read())
                    for line in answer.iter_lines():
                        if line.strip():
                            started = True
                            yield line.encode()
                    return
            except _NETWORK_ERRORS as exc:
                if started or attempt >= self.core.retries:  # a half-read stream is not replayed
                    raise GatewayError(0, "unreachable", f"results download broke off: {exc}") from None
                self._sleep(backoff(attempt))

    def iter_results(self, job_id: str) -> Iterator[BatchResult]:
        for line in self.iter_lines(job_id):
            yield parse_result_line(line)


class AsyncGatewayClient:
    """The Batch Gateway API with asyncio: the same operations as :class:`GatewayClient`."""

    def __init__(
        self,
        config: GatewayConfig,
        *,
        retries: int = 5,
        timeout: float = 60.0,
        transport: httpx.AsyncBaseTransport | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.core = GatewayCore(config, retries=retries, timeout=timeout)
        self._http = httpx.AsyncClient(timeout=timeout, transport=transport)
        self._sleep = sleep

    async def __aenter__(self) -> AsyncGatewayClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    async def run(self, operation: Operation[T]) -> T:
        try:
            step = next(operation)
            while True:
                if isinstance(step, Sleep):
                    await self._sleep(step.seconds)
                    step = operation.send(None)
                else:
                    step = operation.send(await self._send(step))
        except StopIteration as stop:
            return stop.value  # type: ignore[no-any-return]

    async def _send(self, request: Request) -> Reply:
        try:
            answer = await self._http.request(
                request.method,
                request.url,
                headers=request.headers,
                content=request.body,
                timeout=request.timeout,
            )
        except _NETWORK_ERRORS as exc:
            return Reply(error=f"{type(exc).__name__}: {exc}")
        return Reply(answer.status_code, answer.headers, answer.content)

    async def submit(self, spec: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        return await self.run(self.core.submit(spec, **kwargs))

    async def estimate(
        self, spec: dict[str, Any], *, items: list[Any] | None = None, source: str | None = None
    ) -> Estimate:
        return await self.run(self.core.estimate(spec, items=items, source=source))

    async def job(self, job_id: str) -> dict[str, Any]:
        return await self.run(self.core.job(job_id))

    async def cancel(self, job_id: str) -> dict[str, Any]:
        return await self.run(self.core.cancel(job_id))

    async def results_url(self, job_id: str) -> str:
        return await self.run(self.core.results_url(job_id))

    async def wait(
        self, job_id: str, *, poll_interval_s: float = 5.0, max_wait_s: float = 86_400.0, **kw: Any
    ) -> dict[str, Any]:
        return await self.run(
            self.core.wait(job_id, poll_interval_s=poll_interval_s, max_wait_s=max_wait_s, **kw)
        )

    async def iter_results(self, job_id: str) -> AsyncIterator[BatchResult]:
        request = self.core.download_request(await self.results_url(job_id))
        started = False
        for attempt in range(self.core.retries + 1):
            try:
                async with self._http.stream("GET", request.url, timeout=request.timeout) as answer:
                    if answer.status_code in RETRYABLE_STATUS and attempt < self.core.retries:
                        await self._sleep(backoff(attempt, answer.headers.get("retry-after")))
                        continue
                    if answer.status_code >= 400:
                        raise download_error(answer.status_code, await answer.aread())
                    async for line in answer.aiter_lines():
                        if line.strip():
                            started = True
                            yield parse_result_line(line)
                    return
            except _NETWORK_ERRORS as exc:
                if started or attempt >= self.core.retries:  # a half-read stream is not replayed
                    raise GatewayError(0, "unreachable", f"results download broke off: {exc}") from None
                await self._sleep(backoff(attempt))


__all__ = ["AsyncGatewayClient", "GatewayClient"]
