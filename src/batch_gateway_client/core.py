"""The request logic, once, for the sync and the async client: operations as generators of steps.

Every operation (submit, estimate, get a job, list, cancel, wait, the results link) is a generator that
yields :class:`Request` (signed, with its timeout) or :class:`Sleep` steps and is sent back a
:class:`Reply`; the retry loop (429/5xx/connection errors, ``Retry-After`` honoured, exponential
backoff), error mapping (:class:`GatewayError`) and polling live here. ``client.GatewayClient`` and
``client.AsyncGatewayClient`` only carry the steps out (httpx ``Client`` / ``AsyncClient``,
``time.sleep`` / ``asyncio.sleep``), so the two cannot drift apart. This is the "sans-I/O" pattern
(as h11 does it); no library offers it for a REST client, and it is a few dozen lines.
SigV4 is botocore's signer with the default credential chain; API keys go in ``x-api-key``.
"""

from __future__ import annotations

import hashlib
import json
import re
import time
import uuid
from collections.abc import Callable, Generator, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar
from urllib.parse import quote, urlencode, urlsplit

from batch_gateway.models import BatchResult, Estimate
from batch_gateway_client.errors import GatewayError

RETRYABLE_STATUS = frozenset({429, 500, 502, 503, 504})
MAX_BACKOFF_S = 30.0
_EXECUTE_API_HOST = re.compile(r"\.execute-api\.([a-z0-9-]+)\.amazonaws\.com$")
_LOOPBACK = frozenset({"127.0.0.1", "localhost", "::1"})
_NAME_CHARS = re.compile(r"[^A-Za-z0-9_-]+")

T = TypeVar("T")


@dataclass(frozen=True)
class Request:
    method: str
    url: str
    headers: dict[str, str]
    body: bytes | None
    timeout: float


@dataclass(frozen=True)
class Reply:
    """An answer (status, headers, body), or ``error`` when the connection failed or timed out."""

    status: int = 0
    headers: Mapping[str, str] = field(default_factory=dict)
    body: bytes = b""
    error: str | None = None


@dataclass(frozen=True)
class Sleep:
    seconds: float


Step = Request | Sleep
Operation = Generator[Step, Reply | None, T]


@dataclass
class GatewayConfig:
    """Where the API is and how to authenticate: SigV4 (``IAM``, the default) or an API key."""

    endpoint: str  # base URL incl. stage, e.g. http://127.0.0.1:8000/v1
    auth: str = "IAM"  # or API_KEY
    api_key: str | None = None
    region: str | None = None

    @classmethod
    def locate(
        cls,
        endpoint: str | None = None,
        stack: str | None = None,
        api_key: str | None = None,
        region: str | None = None,
    ) -> GatewayConfig:
        """The API given as a deployed stack's name or an endpoint URL, with an API key or SigV4."""
        if stack:
            config = cls.from_stack(stack, region)
        elif endpoint:
            config = cls(endpoint, region=region)
        else:
            raise GatewayError(
                0, "no_endpoint", "give --endpoint URL (or BATCH_GATEWAY_ENDPOINT) or --stack NAME"
            )
        if api_key:
            config.auth, config.api_key = "API_KEY", api_key
        return config

    @classmethod
    def from_stack(cls, stack: str, region: str | None = None) -> GatewayConfig:
        """Endpoint and auth of a deployed stack, from its CloudFormation outputs (and its API key)."""
        import botocore.session
        from botocore.exceptions import BotoCoreError, ClientError

        session = botocore.session.get_session()
        if region:
            session.set_config_variable("region", region)
        try:
            return cls._read_stack(session, stack)
        except (BotoCoreError, ClientError) as exc:
            raise GatewayError(0, "stack_unreadable", f"cannot read stack {stack}'s outputs: {exc}") from None

    @classmethod
    def _read_stack(cls, session: Any, stack: str) -> GatewayConfig:
        stacks = session.create_client("cloudformation").describe_stacks(StackName=stack)["Stacks"]
        outputs = {o["OutputKey"]: o["OutputValue"] for o in stacks[0].get("Outputs", [])}
        if "ApiUrl" not in outputs:
            raise GatewayError(
                0, "no_api", f"stack {stack} has no ApiUrl output: is it a Batch Gateway stack?"
            )
        region = session.get_config_variable("region")
        config = cls(outputs["ApiUrl"], outputs.get("ApiAuthMode", "IAM"), region=region)
        if config.auth == "API_KEY" and outputs.get("ApiKeyId"):
            key = session.create_client("apigateway").get_api_key(
                apiKey=outputs["ApiKeyId"], includeValue=True
            )
            config.api_key = key.get("value")
        return config


def job_name(stem: str) -> str:
    """A file stem as the API's ``name`` (letters, digits, ``-``, ``_``; at most 40), or ``batch``."""
    return _NAME_CHARS.sub("-", stem).strip("-_")[:40].strip("-_") or "batch"


def batch_body(
    spec: Mapping[str, Any],
    *,
    items: list[Any] | None = None,
    source: str | None = None,
    name: str | None = None,
) -> dict[str, Any]:
    """The body of ``POST /batches`` and ``POST /batches/estimate``: the spec (its None values left
    out), the job's name, and the inline items or the S3 source."""
    body = {k: v for k, v in spec.items() if v is not None}
    if name is not None:
        body["name"] = job_name(name)
    if items is not None:
        body["items"] = items
    if source is not None:
        body["source"] = source
    return body


def idempotency_key_for(body: Mapping[str, Any]) -> str:
    """A key derived from the whole request (spec, name and items): resubmitting it finds the same job."""
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return "items-" + hashlib.sha256(canonical.encode("utf-8", "surrogatepass")).hexdigest()[:48]


def backoff(attempt: int, retry_after: str | None = None) -> float:
    """Seconds before retry ``attempt`` (0-based): ``Retry-After`` when given, else 0.5 s doubling."""
    try:
        if retry_after:
            return min(MAX_BACKOFF_S, max(0.0, float(retry_after)))
    except ValueError:
        pass
    return min(MAX_BACKOFF_S, 0.5 * 2.0**attempt)


def parse_result_line(raw: bytes | str) -> BatchResult:
    """One line of results.jsonl as a BatchResult (which validates as the reference library's)."""
    return BatchResult.model_validate_json(raw)


class GatewayCore:
    """Builds and signs requests and runs the retry loop; every API operation as a generator."""

    def __init__(self, config: GatewayConfig, *, retries: int = 5, timeout: float = 60.0) -> None:
        self.config = config
        self.base = config.endpoint.rstrip("/")
        if urlsplit(self.base).scheme not in ("http", "https"):
            raise GatewayError(0, "bad_endpoint", f"{config.endpoint} is not an http(s) URL")
        self.retries, self.timeout = retries, timeout
        self._credentials: Any = None

    # ------------------------------------------------------------------ requests
    def build(
        self,
        method: str,
        path: str,
        query: Mapping[str, Any] | None = None,
        body: Any = None,
        headers: Mapping[str, str] | None = None,
    ) -> Request:
        params = {k: str(v) for k, v in (query or {}).items() if v is not None}
        url = self.base + path + (f"?{urlencode(params)}" if params else "")
        data = None if body is None else json.dumps(body, ensure_ascii=False).encode("utf-8", "surrogatepass")
        all_headers = {"Accept": "application/json", **(headers or {})}
        if data is not None:
            all_headers["Content-Type"] = "application/json"
        return Request(method, url, self._authorize(method, url, data, all_headers), data, self.timeout)

    def _authorize(
        self, method: str, url: str, body: bytes | None, headers: dict[str, str]
    ) -> dict[str, str]:
        if self.config.auth == "API_KEY":
            if not self.config.api_key:
                raise GatewayError(0, "no_api_key", "this API takes API keys: pass api_key (--api-key)")
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
            if found is None and (urlsplit(self.base).hostname or "") in _LOOPBACK:
                found = Credentials("local", "local")  # the local front accepts any signature
            if found is None:
                raise GatewayError(0, "no_credentials", "no AWS credentials to sign with (IAM auth)")
            self._credentials = found
        return self._credentials

    def call(
        self,
        method: str,
        path: str,
        query: Mapping[str, Any] | None = None,
        body: Any = None,
        headers: Mapping[str, str] | None = None,
    ) -> Operation[Any]:
        """One API call, retried on 429/5xx/connection errors; its decoded JSON, or GatewayError."""
        for attempt in range(self.retries + 1):
            reply = yield self.build(method, path, query, body, headers)  # signed afresh each attempt
            assert reply is not None
            last = attempt >= self.retries
            if reply.error is not None:
                if last:
                    raise GatewayError(0, "unreachable", f"{method} {self.base}{path}: {reply.error}")
                yield Sleep(backoff(attempt))
                continue
            if reply.status in RETRYABLE_STATUS and not last:
                yield Sleep(backoff(attempt, _header(reply.headers, "retry-after")))
                continue
            document = _decode(reply.body)
            if reply.status >= 400:
                raise _error(reply.status, document)
            return document
        raise AssertionError("unreachable")

    # ------------------------------------------------------------------ operations
    def submit(
        self,
        spec: Mapping[str, Any],
        *,
        items: list[Any] | None = None,
        source: str | None = None,
        name: str | None = None,
        idempotency_key: str | None = None,
    ) -> Operation[dict[str, Any]]:
        """POST /batches: inline items or an S3 source; the key derives from the request unless given."""
        body = batch_body(spec, items=items, source=source, name=name)
        if idempotency_key is None:
            # Inline items are the request: the same items find the same job. An S3 object can change
            # under the same URI, so a source submit gets a fresh key (still safe across retries).
            idempotency_key = idempotency_key_for(body) if source is None else f"src-{uuid.uuid4().hex}"
        job = yield from self.call(
            "POST", "/batches", body=body, headers={"Idempotency-Key": idempotency_key}
        )
        return dict(job)

    def estimate(
        self, spec: Mapping[str, Any], *, items: list[Any] | None = None, source: str | None = None
    ) -> Operation[Estimate]:
        """POST /batches/estimate: what submit with the same spec and items (or source) would make and
        cost, checked and chunked as intake would; nothing is written and no job is made."""
        answer = yield from self.call(
            "POST", "/batches/estimate", body=batch_body(spec, items=items, source=source)
        )
        return Estimate.model_validate(answer)

    def job(self, job_id: str) -> Operation[dict[str, Any]]:
        return dict((yield from self.call("GET", f"/batches/{_seg(job_id)}")))

    def jobs_page(self, status: str | None, limit: int, token: str | None) -> Operation[dict[str, Any]]:
        query = {"status": status, "limit": limit, "next_token": token}
        return dict((yield from self.call("GET", "/batches", query=query)))

    def rows_page(
        self, job_id: str, errors_only: bool, limit: int, token: str | None
    ) -> Operation[dict[str, Any]]:
        query = {"limit": limit, "next_token": token, "only": "errors" if errors_only else None}
        return dict((yield from self.call("GET", f"/batches/{_seg(job_id)}/results", query=query)))

    def results_url(self, job_id: str) -> Operation[str]:
        """The presigned URL of results.jsonl (a 409 while the job has no results yet)."""
        page = yield from self.call("GET", f"/batches/{_seg(job_id)}/results", query={"format": "url"})
        return str(page["url"])

    def cancel(self, job_id: str) -> Operation[dict[str, Any]]:
        return dict((yield from self.call("POST", f"/batches/{_seg(job_id)}/cancel")))

    def wait(
        self,
        job_id: str,
        *,
        poll_interval_s: float,
        max_wait_s: float,
        on_poll: Callable[[dict[str, Any], float], None] | None = None,
    ) -> Operation[dict[str, Any]]:
        """Poll until the job has finished (``finished_at`` set); TimeoutError after ``max_wait_s``."""
        started = time.monotonic()
        while True:
            job = yield from self.job(job_id)
            elapsed = time.monotonic() - started
            if on_poll is not None:
                on_poll(job, elapsed)
            if job.get("finished_at"):
                return job
            if elapsed > max_wait_s:
                raise TimeoutError(f"job {job_id!r} is still {job.get('status')} after {max_wait_s:.0f} s")
            yield Sleep(poll_interval_s)

    def download_request(self, url: str) -> Request:
        """The GET of a presigned URL (no auth headers: the URL carries its signature)."""
        if urlsplit(url).scheme not in ("http", "https"):
            raise GatewayError(0, "bad_url", f"not an http(s) URL: {url[:80]}")
        return Request("GET", url, {}, None, self.timeout)


def _seg(value: str) -> str:
    return quote(value, safe="")


def _header(headers: Mapping[str, str], name: str) -> str | None:
    return next((v for k, v in headers.items() if k.lower() == name), None)


def _decode(raw: bytes) -> Any:
    try:
        return json.loads(raw) if raw else None
    except ValueError:
        return {"message": raw.decode("utf-8", "replace")[:500]}


def _error(status: int, document: Any) -> GatewayError:
    body = document if isinstance(document, dict) else {}
    code = str(body.get("error") or "http_error")
    message = str(body.get("message") or f"the API answered HTTP {status}")
    return GatewayError(status, code, message, body.get("details"))


def download_error(status: int, body: bytes) -> GatewayError:
    """A presigned download that was refused (S3 answers XML; its text is kept short)."""
    return GatewayError(
        status, "download_failed", f"results download failed: {body[:300].decode('utf-8', 'replace')}"
    )


__all__ = [
    "GatewayConfig",
    "GatewayCore",
    "Operation",
    "Reply",
    "Request",
    "Sleep",
    "backoff",
    "batch_body",
    "idempotency_key_for",
    "job_name",
    "parse_result_line",
]
