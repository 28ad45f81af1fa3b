"""HTTP client of the Batch Gateway API (stdlib urllib + botocore's SigV4 signer, nothing else).

Works against ``batch-gateway local up`` and a deployed stack alike: ``--endpoint URL``, or
``--stack NAME`` (the ApiUrl / ApiAuthMode / ApiKeyId outputs of the CloudFormation stack).
IAM auth signs every request with SigV4 (service ``execute-api``) using the default AWS credential
chain; against a loopback endpoint without credentials it signs with placeholder credentials (the
local front accepts any signature). API-key auth sends ``x-api-key``.

Requests that fail with 429, 502, 503, 504 or a connection error are retried with backoff; a submit
carries an ``Idempotency-Key`` (generated unless given), so a retried submit never makes a second job.
"""

from __future__ import annotations

import json
import re
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlencode, urlsplit

RETRYABLE_STATUS = frozenset({429, 502, 503, 504})
_EXECUTE_API_HOST = re.compile(r"\.execute-api\.([a-z0-9-]+)\.amazonaws\.com$")


class ApiError(Exception):
    """An error answer of the API: status, code, message (and details)."""

    def __init__(self, status: int, code: str, message: str, details: Any = None) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status, self.code, self.message, self.details = status, code, message, details


@dataclass
class ApiConfig:
    endpoint: str  # base URL incl. stage, e.g. http://127.0.0.1:8000/v1
    auth: str = "IAM"  # or API_KEY
    api_key: str | None = None
    region: str | None = None


def config_from_stack(stack: str, region: str | None = None) -> ApiConfig:
    """Endpoint and auth of a deployed stack, from its CloudFormation outputs (and its API key)."""
    import boto3  # a deployed stack only: boto3 is a dependency anyway

    session = boto3.session.Session(region_name=region)
    stacks = session.client("cloudformation").describe_stacks(StackName=stack)["Stacks"]
    outputs = {o["OutputKey"]: o["OutputValue"] for o in stacks[0].get("Outputs", [])}
    if "ApiUrl" not in outputs:
        raise ApiError(0, "no_api", f"stack {stack} has no ApiUrl output: is it a Batch Gateway stack?")
    config = ApiConfig(outputs["ApiUrl"], outputs.get("ApiAuthMode", "IAM"), region=session.region_name)
    if config.auth == "API_KEY" and outputs.get("ApiKeyId"):
        key = session.client("apigateway").get_api_key(apiKey=outputs["ApiKeyId"], includeValue=True)
        config.api_key = key.get("value")
    return config


class ApiClient:
    def __init__(self, config: ApiConfig, retries: int = 5, timeout: float = 60) -> None:
        self.config = config
        self.base = config.endpoint.rstrip("/")
        if urlsplit(self.base).scheme not in ("http", "https"):
            raise ApiError(0, "bad_endpoint", f"{config.endpoint} is not an http(s) URL")
        self.retries, self.timeout = retries, timeout
        self._credentials: Any = None

    # ---------------------------------------------------------------- transport
    def _signed_headers(
        self, method: str, url: str, body: bytes | None, headers: dict[str, str]
    ) -> dict[str, str]:
        if self.config.auth == "API_KEY":
            if not self.config.api_key:
                raise ApiError(0, "no_api_key", "this API takes API keys: pass --api-key")
            return {**headers, "x-api-key": self.config.api_key}
        from botocore.auth import SigV4Auth
        from botocore.awsrequest import AWSRequest

        request = AWSRequest(method=method, url=url, data=body or b"", headers=headers)
        SigV4Auth(self._aws_credentials(), "execute-api", self._region()).add_auth(request)
        return {name: str(value) for name, value in request.headers.items()}

    def _region(self) -> str:
        if self.config.region:
            return self.config.region
        found = _EXECUTE_API_HOST.search(urlsplit(self.base).hostname or "")
        return found.group(1) if found else "us-east-1"

    def _aws_credentials(self) -> Any:
        if self._credentials is None:
            import botocore.session
            from botocore.credentials import Credentials

            found = botocore.session.get_session().get_credentials()
            host = urlsplit(self.base).hostname or ""
            if found is None and host in ("127.0.0.1", "localhost", "::1"):
                found = Credentials("local", "local")  # the local front accepts any signature
            if found is None:
                raise ApiError(0, "no_credentials", "no AWS credentials to sign with (IAM auth)")
            self._credentials = found
        return self._credentials

    def request(
        self,
        method: str,
        path: str,
        query: Mapping[str, Any] | None = None,
        body: Any = None,
        headers: Mapping[str, str] | None = None,
    ) -> tuple[int, Any, dict[str, str]]:
        """Send one request (retrying transient failures); (status, decoded JSON, headers) or ApiError."""
        params = {k: str(v) for k, v in (query or {}).items() if v is not None}
        url = self.base + path + (f"?{urlencode(params)}" if params else "")
        data = None if body is None else json.dumps(body, ensure_ascii=False).encode()
        base_headers = {"Accept": "application/json", **(headers or {})}
        if data is not None:
            base_headers["Content-Type"] = "application/json"
        for attempt in range(self.retries + 1):
            signed = self._signed_headers(method, url, data, base_headers)
            http_request = urllib.request.Request(url, data=data, method=method, headers=signed)  # noqa: S310 - http(s), checked
            try:
                with urllib.request.urlopen(http_request, timeout=self.timeout) as response:  # noqa: S310
                    return response.status, _decode(response.read()), dict(response.headers.items())
            except urllib.error.HTTPError as exc:
                payload = _decode(exc.read())
                if exc.code in RETRYABLE_STATUS and attempt < self.retries:
                    time.sleep(_retry_after(exc.headers.get("Retry-After"), attempt))
                    continue
                document = payload if isinstance(payload, dict) else {}
                raise ApiError(
                    exc.code,
                    str(document.get("error") or "http_error"),
                    str(document.get("message") or exc.reason),
                    document.get("details"),
                ) from None
            except (urllib.error.URLError, ConnectionError, TimeoutError) as exc:
                if attempt >= self.retries:
                    raise ApiError(0, "unreachable", f"{url}: {getattr(exc, 'reason', exc)}") from None
                time.sleep(_retry_after(None, attempt))
        raise AssertionError("unreachable")

    def download(self, url: str, target: Any) -> int:
        """Stream a (presigned) URL into a binary file object; returns the bytes written."""
        if urlsplit(url).scheme not in ("http", "https"):
            raise ApiError(0, "bad_url", f"not an http(s) URL: {url[:80]}")
        with urllib.request.urlopen(url, timeout=self.timeout) as response:  # noqa: S310 - checked above
            written = 0
            while block := response.read(1 << 20):
                target.write(block)
                written += len(block)
            return written

    # ---------------------------------------------------------------- operations
    def submit(
        self,
        spec: Mapping[str, Any],
        items: list[Any] | None = None,
        source: str | None = None,
        idempotency_key: str | None = None,
    ) -> dict[str, Any]:
        import uuid

        body = {k: v for k, v in spec.items() if v is not None}
        if items is not None:
            body["items"] = items
        if source is not None:
            body["source"] = source
        key = idempotency_key or f"cli-{uuid.uuid4()}"
        _, job, _ = self.request("POST", "/batches", body=body, headers={"Idempotency-Key": key})
        return dict(job)

    def job(self, job_id: str) -> dict[str, Any]:
        return dict(self.request("GET", f"/batches/{quote(job_id, safe='')}")[1])

    def jobs(self, status: str | None = None, limit: int = 100) -> Iterator[dict[str, Any]]:
        token: str | None = None
        while True:
            query = {"status": status, "limit": limit, "next_token": token}
            page = self.request("GET", "/batches", query=query)[1]
            yield from page["jobs"]
            token = page.get("next_token")
            if not token:
                return

    def results(self, job_id: str, errors_only: bool = False, limit: int = 500) -> Iterator[dict[str, Any]]:
        token: str | None = None
        while True:
            query = {"limit": limit, "next_token": token, "only": "errors" if errors_only else None}
            page = self.request("GET", f"/batches/{quote(job_id, safe='')}/results", query=query)[1]
            yield from page["results"]
            token = page.get("next_token")
            if not token:
                return

    def results_url(self, job_id: str) -> str:
        page = self.request("GET", f"/batches/{quote(job_id, safe='')}/results", query={"format": "url"})[1]
        return str(page["url"])

    def result(self, job_id: str, custom_id: str) -> dict[str, Any]:
        path = f"/batches/{quote(job_id, safe='')}/results/{quote(custom_id, safe='')}"
        return dict(self.request("GET", path)[1])

    def cancel(self, job_id: str) -> dict[str, Any]:
        return dict(self.request("POST", f"/batches/{quote(job_id, safe='')}/cancel")[1])


def _decode(raw: bytes) -> Any:
    try:
        return json.loads(raw) if raw else None
    except ValueError:
        return {"message": raw.decode("utf-8", "replace")[:500]}


def _retry_after(header: str | None, attempt: int) -> float:
    try:
        return min(30.0, float(header)) if header else min(30.0, 0.5 * 2.0**attempt)
    except ValueError:
        return min(30.0, 0.5 * 2.0**attempt)


__all__ = ["ApiClient", "ApiConfig", "ApiError", "config_from_stack"]
