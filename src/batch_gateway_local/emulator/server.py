"""The emulator's server: its life cycle, its settings at runtime, and routing to each provider's API.

:class:`EmulatorServer` serves on 127.0.0.1 (the socket side is :mod:`.http_transport`'s). A
request is first answered by the provider's front door (its auth header; Azure's api-version;
Anthropic's ``anthropic-version``), then routed by path to the OpenAI, Azure OpenAI, Anthropic or
Bedrock emulation, after the scenario's ``before_request`` hook (batch-scoped routes consult the
batch's own scenario). A route's :class:`~.protocol.ApiError` becomes its reply; any other failure
is a 500 in the provider's error shape, logged. The scenario, limits and quotas can change at
runtime; each change is seen by later calls.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from types import TracebackType
from typing import Any, Literal

from .anthropic_api import AnthropicApi
from .azure_api import AzureOpenAIApi, azure_authorized, azure_unauthorized, check_api_version, is_azure_path
from .bedrock_api import BedrockApi
from .bedrock_jobs import ActAs, act_as_nobody
from .http_transport import EmulatorHTTPServer, RequestHandler
from .openai.api import OpenAIApi
from .protocol import (
    ApiError,
    Provider,
    Reply,
    Request,
    anthropic_error,
    bedrock_error,
    openai_error,
)
from .scenario_base import Scenario
from .scenarios import check_scenario_name
from .state import QUOTA_FIELDS, Config, Limits, QuotaHighWater, Store

log = logging.getLogger(__name__)


def _authorized(provider: Provider, headers: dict[str, str]) -> bool:
    bearer = headers.get("authorization", "")
    has_bearer = bearer.lower().startswith("bearer ") and bool(bearer[7:].strip())
    if provider == "bedrock":  # IAM: a SigV4-signed request (the signature itself is not checked)
        return bearer.startswith("AWS4-HMAC-SHA256 ")
    if provider == "anthropic":
        return bool(headers.get("x-api-key", "").strip()) or has_bearer
    return has_bearer


def _unauthorized(provider: Provider) -> Reply:
    if provider == "bedrock":
        return bedrock_error(403, "AccessDeniedException", "Missing Authentication Token")
    if provider == "anthropic":
        return anthropic_error(401, "x-api-key header is required", type_="authentication_error")
    return openai_error(
        401,
        "You didn't provide an API key. You need to provide your API key in an Authorization header "
        "using Bearer auth (i.e. Authorization: Bearer YOUR_KEY).",
    )


class EmulatorServer:
    """Local OpenAI Files/Batches + Anthropic Message Batches API on 127.0.0.1.

    Batches advance one step per retrieve (never by wall time) and complete after
    `polls_to_complete` retrieves. `act_as(role_arn)` wraps Bedrock's S3 reads and writes for a job
    (the offline stack passes its IAM check's `acting_for`, so they are the job's role's; default:
    nothing).
    """

    def __init__(
        self,
        polls_to_complete: int = 2,
        *,
        port: int = 0,
        scenario: str = "default",
        limits: Limits | None = None,
        non_2xx_file: Literal["output", "error"] = "error",
        clock: Callable[[], float] = time.time,
        bedrock_min_records: int = 1,
        act_as: ActAs = act_as_nobody,
    ) -> None:
        if polls_to_complete < 1:
            raise ValueError("polls_to_complete must be >= 1")
        check_scenario_name(scenario)  # fail fast on unknown names
        self.config = Config(
            polls_to_complete=polls_to_complete,
            limits=limits or Limits(),
            scenario=scenario,
            non_2xx_file=non_2xx_file,
            clock=clock,
        )
        self.store = Store(self.config)
        self._scenario: Scenario = self.store.new_scenario(scenario)
        self._openai = OpenAIApi(self.store)
        self._anthropic = AnthropicApi(self.store)
        self._bedrock = BedrockApi(self.store, min_records=bedrock_min_records, act_as=act_as)
        self._azure = AzureOpenAIApi(self.store)
        self._requested_port = port
        self._httpd: EmulatorHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------ life cycle

    def start(self) -> None:
        if self._httpd is not None:
            return
        httpd = EmulatorHTTPServer(("127.0.0.1", self._requested_port), RequestHandler)
        httpd.emulator = self
        self._httpd = httpd
        self.store.base_url = self.base_url
        self._thread = threading.Thread(
            target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, name="batch-emulator", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        httpd, self._httpd = self._httpd, None
        if httpd is None:
            return
        httpd.shutdown()
        httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def serve_forever(self) -> None:
        """Start and block until KeyboardInterrupt."""
        self.start()
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            pass
        finally:
            self.stop()

    def __enter__(self) -> EmulatorServer:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    # ------------------------------------------------------------ properties

    @property
    def port(self) -> int:
        if self._httpd is None:
            raise RuntimeError("EmulatorServer is not started")
        return int(self._httpd.server_address[1])

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def openai_base_url(self) -> str:
        """Pass to `openai.OpenAI(base_url=...)`."""
        return self.base_url + "/v1"

    @property
    def azure_openai_endpoint(self) -> str:
        """Pass to `openai.AzureOpenAI(azure_endpoint=...)` (the client adds /openai)."""
        return self.base_url

    @property
    def bedrock_endpoint_url(self) -> str:
        """Pass to `boto3.client("bedrock", endpoint_url=...)`."""
        return self.base_url

    @property
    def anthropic_base_url(self) -> str:
        """Pass to `anthropic.Anthropic(base_url=...)`."""
        return self.base_url

    @property
    def scenario(self) -> str:
        """The server's scenario: used for uploads and creates, and by batches created without a
        per-batch choice. Settable at runtime (thread-safe); setting it, even to the current name,
        starts that scenario afresh (its memory of seen requests and its counters are cleared).
        Batches already created keep their scenario."""
        with self.store.lock:
            return self.config.scenario

    @scenario.setter
    def scenario(self, name: str) -> None:
        check_scenario_name(name)
        with self.store.lock:
            self.store.reset_scenario_memory(name)
            self.config.scenario = name
            self._scenario = self.store.new_scenario(name)

    @property
    def limits(self) -> Limits:
        """The limits and quotas enforced; settable at runtime (later creates see the new ones)."""
        with self.store.lock:
            return self.config.limits

    @limits.setter
    def limits(self, limits: Limits) -> None:
        with self.store.lock:
            self.config.limits = limits

    def set_quota(self, provider: str, quota: int | None) -> None:
        """Set one provider's batch-queue quota (OpenAI/Azure: enqueued tokens per model; Anthropic:
        requests being processed; Bedrock: concurrent jobs per model); None lifts it."""
        if provider not in QUOTA_FIELDS:
            raise ValueError(f"no quota for provider {provider!r}; known: {', '.join(QUOTA_FIELDS)}")
        changes: dict[str, Any] = {QUOTA_FIELDS[provider]: quota}
        with self.store.lock:
            self.config.limits = replace(self.config.limits, **changes)

    @property
    def quota_high_water(self) -> QuotaHighWater:
        """The most each quota held at once so far (recorded with or without a quota set)."""
        return self.store.quota_high_water()

    @property
    def batches_created(self) -> dict[str, int]:
        """Successful batch creations per provider ("openai", "anthropic", "azure-openai")."""
        with self.store.lock:
            return dict(self.store.batches_created)

    @property
    def files_uploaded(self) -> int:
        with self.store.lock:
            return self.store.files_uploaded

    # ------------------------------------------------------------ dispatch

    def dispatch(self, request: Request) -> Reply:
        """Answer one request (used by the HTTP handler; callable directly in tests)."""
        provider = request.provider
        refusal = self._refusal(request)
        if refusal is not None:
            return refusal
        if provider == "bedrock":
            return self._bedrock.dispatch(request, self._scenario)
        routes = self._api_for(request).routes
        allowed: list[str] = []
        for method, pattern, handler in routes:
            match = pattern.fullmatch(request.path)
            if match is None:
                continue
            if method != request.method:
                allowed.append(method)
                continue
            try:
                groups = match.groupdict()
                if "batch_id" not in groups:  # batch-scoped routes consult the batch's own scenario
                    file_scenario = (
                        self._openai.file_scenario(groups["file_id"]) if "file_id" in groups else None
                    )
                    reply = (file_scenario or self._scenario).before_request(request, None)
                    if reply is not None:
                        return reply
                return handler(request, match)
            except ApiError as exc:
                return exc.reply
            except Exception:
                log.exception("emulator handler failed for %s %s", request.method, request.path)
                message = "The emulator failed while handling the request."
                if provider == "anthropic":
                    return anthropic_error(500, message, type_="api_error")
                return openai_error(500, message, type_="server_error")
        if allowed:
            message = f"Method {request.method} not allowed for {request.path}."
            if provider == "anthropic":
                return anthropic_error(405, message)
            return openai_error(405, message)
        if provider == "anthropic":
            return anthropic_error(
                404, f"Not found: {request.method} {request.path}", type_="not_found_error"
            )
        return openai_error(404, f"Invalid URL ({request.method} {request.path})")

    def _api_for(self, request: Request) -> OpenAIApi | AnthropicApi:
        if request.provider == "anthropic":
            return self._anthropic
        return self._azure if is_azure_path(request.path) else self._openai

    @staticmethod
    def _refusal(request: Request) -> Reply | None:
        """What the provider's front door answers before routing: no key, (Azure) no usable api-version,
        (Anthropic) no ``anthropic-version`` header."""
        headers = dict(request.headers)
        if is_azure_path(request.path):
            return check_api_version(request) if azure_authorized(headers) else azure_unauthorized()
        if not _authorized(request.provider, headers):
            return _unauthorized(request.provider)
        if request.provider == "anthropic" and not headers.get("anthropic-version", "").strip():
            return anthropic_error(400, "anthropic-version: header is required")
        return None
