"""The console's one door to the gateway: the HTTP API, through the Python client.

Every call the console makes goes through :class:`ConsoleApi` over
:class:`batch_gateway_client.GatewayClient` (the CLI's client too). The client signs requests
(SigV4 with the user's AWS credentials, or the API key) on the server side; the browser only ever
talks to the console. Downloads stream a presigned URL the API handed out, block by block.
"""

from __future__ import annotations

import urllib.request
from collections.abc import Iterator, Mapping
from typing import Any
from urllib.parse import quote, urlsplit

from batch_gateway.models import Estimate
from batch_gateway_client.client import GatewayClient
from batch_gateway_client.core import GatewayConfig
from batch_gateway_client.errors import GatewayError as ApiError

__all__ = ["ApiError", "ConsoleApi"]

_BLOCK = 1 << 16


class ConsoleApi:
    """The API operations the console uses, each one request (retries are the client's)."""

    def __init__(self, client: GatewayClient) -> None:
        self._client = client

    @classmethod
    def connect(
        cls,
        endpoint: str | None = None,
        stack: str | None = None,
        api_key: str | None = None,
        region: str | None = None,
    ) -> ConsoleApi:
        config = GatewayConfig.locate(endpoint, stack, api_key, region)
        # Short timeouts and few retries: a page waits on these calls.
        return cls(GatewayClient(config, retries=2, timeout=20))

    @property
    def endpoint(self) -> str:
        return self._client.core.base

    def jobs_page(self, status: str | None, limit: int, next_token: str | None) -> dict[str, Any]:
        return self._client.run(self._client.core.jobs_page(status, limit, next_token))

    def job(self, job_id: str) -> dict[str, Any]:
        return self._client.job(job_id)

    def results_page(
        self, job_id: str, limit: int, next_token: str | None = None, errors_only: bool = False
    ) -> dict[str, Any]:
        return self._client.run(self._client.core.rows_page(job_id, errors_only, limit, next_token))

    def result(self, job_id: str, custom_id: str) -> dict[str, Any]:
        path = f"/batches/{quote(job_id, safe='')}/results/{quote(custom_id, safe='')}"
        return dict(self._client.run(self._client.core.call("GET", path)))

    def results_url(self, job_id: str) -> str:
        return self._client.results_url(job_id)

    def cancel(self, job_id: str) -> dict[str, Any]:
        return self._client.cancel(job_id)

    def submit(
        self, spec: Mapping[str, Any], items: list[Any], idempotency_key: str, name: str | None = None
    ) -> dict[str, Any]:
        return self._client.submit(dict(spec), items=items, idempotency_key=idempotency_key, name=name)

    def estimate(self, spec: Mapping[str, Any], items: list[Any]) -> Estimate:
        """What submitting these items would make and cost; no job is made."""
        return self._client.estimate(dict(spec), items=items)

    def stream(self, url: str) -> Iterator[bytes]:
        """The bytes of a presigned URL of the API's, in blocks."""
        if urlsplit(url).scheme not in ("http", "https"):
            raise ApiError(0, "bad_url", "the API answered a URL that is not http(s)")
        with urllib.request.urlopen(url, timeout=60) as response:  # noqa: S310 - http(s), checked above
            while block := response.read(_BLOCK):
                yield block
