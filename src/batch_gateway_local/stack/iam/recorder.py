"""Record every AWS call a handler makes and evaluate it against the handler's own role.

:class:`IamCheck` patches ``botocore.client.BaseClient._make_api_call`` (every client's calls go
through it, also clients made before the stack started or cached by a handler - a handler registered
on ``botocore.handlers.BUILTIN_HANDLERS`` would miss those) and ``botocore.session.Session.
create_client`` (a client remembers the function it was made for, so the worker threads of
``upload_file``/``download_file`` count for that function; so do the pool threads a handler starts).
The in-process runtime says which function runs in the current thread (:func:`acting_as`). A call
the policy does not allow is recorded and, when enforcing, answered as AWS would: ``AccessDenied``
naming the action, the resource and the function, before it reaches moto.
"""

from __future__ import annotations

import concurrent.futures.thread
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any
from unittest import mock

import botocore.client
import botocore.session
from botocore.exceptions import ClientError

from batch_gateway_local.stack.iam.calls import Where, iam_prefix, requests_for
from batch_gateway_local.stack.iam.policy import Decision, Request, evaluate
from batch_gateway_local.stack.iam.roles import FunctionPolicy

_acting = threading.local()
_CLIENT_TAG = "_offline_iam_function"


@contextmanager
def acting_as(function_name: str) -> Iterator[None]:
    """Calls made in this thread (and by clients made here) are ``function_name``'s until the end."""
    stack: list[str] = _acting.__dict__.setdefault("stack", [])
    stack.append(function_name)
    try:
        yield
    finally:
        stack.pop()


def current_function() -> str | None:
    stack: list[str] = _acting.__dict__.get("stack", [])
    if stack:
        return stack[-1]
    inherited: str | None = getattr(threading.current_thread(), _CLIENT_TAG, None)
    return inherited


def in_handler_thread() -> bool:
    """True in the thread a handler runs in (not in the pool threads it started)."""
    return bool(_acting.__dict__.get("stack"))


def _pool_thread_start(original: Any) -> Any:
    """Thread.start for ThreadPoolExecutor workers a handler starts (boto3's transfers): they act for it.

    Only pool workers: moto's Step Functions interpreter starts plain threads from inside a handler's
    StartExecution, and those are not the handler's.
    """
    worker = concurrent.futures.thread._worker

    def start(thread: threading.Thread) -> None:
        function = current_function()
        if function is not None and getattr(thread, "_target", None) is worker:
            setattr(thread, _CLIENT_TAG, function)
        original(thread)

    return start


@dataclass(frozen=True)
class CheckedRequest:
    function: str
    """The function's logical id."""
    operation: str
    request: Request
    decision: Decision

    def describe(self) -> str:
        return f"{self.function} may not {self.request.action} on {self.request.resource} ({self.operation})"


@dataclass
class IamCheck:
    """The recorded-call evaluation of one offline stack (see the module docstring)."""

    policies: Mapping[str, FunctionPolicy]
    where: Where
    enforce: bool = True
    checked: list[CheckedRequest] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _patchers: list[Any] = field(default_factory=list)

    @property
    def denied(self) -> list[CheckedRequest]:
        with self._lock:
            return [c for c in self.checked if not c.decision.allowed]

    def install(self) -> None:
        check = self
        original_call = botocore.client.BaseClient._make_api_call  # type: ignore[attr-defined]
        original_create = botocore.session.Session.create_client

        def _make_api_call(client: Any, operation_name: str, api_params: Mapping[str, Any]) -> Any:
            check.authorize(client, operation_name, api_params)
            return original_call(client, operation_name, api_params)

        def create_client(session: Any, *args: Any, **kwargs: Any) -> Any:
            client = original_create(session, *args, **kwargs)
            function = current_function()
            if function is not None:
                setattr(client, _CLIENT_TAG, function)
            return client

        self._patchers = [
            mock.patch.object(botocore.client.BaseClient, "_make_api_call", _make_api_call),
            mock.patch.object(botocore.session.Session, "create_client", create_client),
            mock.patch.object(threading.Thread, "start", _pool_thread_start(threading.Thread.start)),
        ]
        for patcher in self._patchers:
            patcher.start()

    def uninstall(self) -> None:
        for patcher in reversed(self._patchers):
            patcher.stop()
        self._patchers = []

    def authorize(self, client: Any, operation: str, params: Mapping[str, Any]) -> None:
        """Record the call's requests; raise AccessDenied (when enforcing) if one is not allowed."""
        name = current_function() or getattr(client, _CLIENT_TAG, None)
        policy = self.policies.get(name) if name else None
        if policy is None or not policy.known:
            return
        model = client.meta.service_model
        prefix = iam_prefix(str(model.signing_name or model.endpoint_prefix))
        results = [
            CheckedRequest(policy.logical_id, operation, request, evaluate(policy.statements, request))
            for request in requests_for(prefix, operation, params, self.where)
        ]
        with self._lock:
            self.checked.extend(results)
        denied = next((r for r in results if not r.decision.allowed), None)
        if denied is not None and self.enforce:
            raise ClientError(_denial(policy, denied, self.where), operation)


def _denial(policy: FunctionPolicy, denied: CheckedRequest, where: Where) -> Any:
    request = denied.request
    why = (
        f"with an explicit deny in {denied.decision.denied_by}"
        if denied.decision.denied_by
        else f"because no identity-based policy allows the {request.action} action"
    )
    message = (
        f"User: arn:{where.partition}:sts::{where.account}:assumed-role/{policy.role_name}/"
        f"{policy.function_name} is not authorized to perform: {request.action} on resource: "
        f"{request.resource} {why} (offline IAM check of {policy.logical_id}'s role in the template)"
    )
    code = "AccessDenied" if request.action.startswith("s3:") else "AccessDeniedException"
    return {"Error": {"Code": code, "Message": message}, "ResponseMetadata": {"HTTPStatusCode": 403}}
