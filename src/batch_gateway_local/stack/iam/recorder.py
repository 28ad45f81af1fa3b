"""Record every AWS call a handler makes and evaluate it against the handler's own role.

:class:`IamCheck` patches ``botocore.client.BaseClient._make_api_call`` (every client's calls go
through it, also clients made before the stack started or cached by a handler - a handler registered
on ``botocore.handlers.BUILTIN_HANDLERS`` would miss those) and ``botocore.session.Session.
create_client`` (a client remembers the function it was made for, so the worker threads of
``upload_file``/``download_file`` count for that function; so do the pool threads a handler starts).
The in-process runtime says which function runs in the current thread (:func:`acting_as`); the
emulator's Bedrock says which role it acts for (:func:`acting_for`, its ``act_as`` hook from
``LocalGateway``: the emulator never imports the stack), and the clients moto's Step
Functions interpreter makes are the state machine's (:func:`tag_client`). A call the policy does
not allow is recorded and, when enforcing, answered as AWS would: ``AccessDenied`` naming the
action, the resource and the principal, before it reaches moto. :func:`calling_principal` tells
the signer (``credentials``) whose credentials sign the request being sent.
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
_PRINCIPAL_TAG = "_offline_iam_principal"


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


@contextmanager
def acting_for(principal: str) -> Iterator[None]:
    """Calls made in this thread are ``principal``'s (a role ARN), not a handler's (fault hooks skip them)."""
    stack: list[str] = _acting.__dict__.setdefault("principals", [])
    stack.append(principal)
    try:
        yield
    finally:
        stack.pop()


def tag_client(client: Any, principal: str) -> Any:
    """Every call of ``client`` is ``principal``'s, whichever thread makes it (moto's interpreter)."""
    setattr(client, _PRINCIPAL_TAG, principal)
    return client


def principal_of(client: Any) -> str | None:
    """Who makes a call with ``client`` in this thread: a tagged client's principal, the function
    running here, the role acted for, or the function the client was made for."""
    tagged: str | None = getattr(client, _PRINCIPAL_TAG, None)
    if tagged is not None:
        return tagged
    principals: list[str] = _acting.__dict__.get("principals", [])
    return (
        current_function() or (principals[-1] if principals else None) or getattr(client, _CLIENT_TAG, None)
    )


def calling_principal() -> str | None:
    """The principal of the API call being made in this thread (None: the stack's own, or the test's)."""
    calls: list[str | None] = _acting.__dict__.get("calls", [])
    if calls:
        return calls[-1]
    principals: list[str] = _acting.__dict__.get("principals", [])
    return current_function() or (principals[-1] if principals else None)


@contextmanager
def _calling(principal: str | None) -> Iterator[None]:
    calls: list[str | None] = _acting.__dict__.setdefault("calls", [])
    calls.append(principal)
    try:
        yield
    finally:
        calls.pop()


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
    moto_denied: list[CheckedRequest] = field(default_factory=list)
    """Requests moto's own enforcement refused (our evaluation allowed them, or they were not ours)."""
    moto_checked: dict[str, int] = field(default_factory=dict)
    """Requests moto evaluated, per logical id of the signing role's owner ("admin": the rest)."""
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _patchers: list[Any] = field(default_factory=list)

    @property
    def denied(self) -> list[CheckedRequest]:
        """Every refusal: this check's, then moto's."""
        with self._lock:
            return [c for c in self.checked if not c.decision.allowed] + list(self.moto_denied)

    def record_moto_decision(self, principal_arn: str, action: str, resource: str, allowed: bool) -> None:
        """moto evaluated ``action``: counted (and a refusal kept) under the role whose session signed it."""
        role = (
            principal_arn.split(":assumed-role/", 1)[1].split("/", 1)[0]
            if ":assumed-role/" in principal_arn
            else ""
        )
        owner = next((p.logical_id for p in self.policies.values() if role and p.role_name == role), "admin")
        with self._lock:
            self.moto_checked[owner] = self.moto_checked.get(owner, 0) + 1
            if not allowed:
                request = Request(action, resource)
                self.moto_denied.append(
                    CheckedRequest(owner, "moto", request, Decision(False, denied_by="moto"))
                )

    def install(self) -> None:
        check = self
        original_call = botocore.client.BaseClient._make_api_call  # type: ignore[attr-defined]
        original_create = botocore.session.Session.create_client

        def _make_api_call(client: Any, operation_name: str, api_params: Mapping[str, Any]) -> Any:
            principal = principal_of(client)
            check.authorize(client, principal, operation_name, api_params)
            with _calling(principal):
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

    def authorize(
        self, client: Any, principal: str | None, operation: str, params: Mapping[str, Any]
    ) -> None:
        """Record the call's requests; raise AccessDenied (when enforcing) if one is not allowed."""
        policy = self.policies.get(principal) if principal else None
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
    return {
        "Error": {"Code": code, "Message": message},
        "ResponseMetadata": {"HTTPStatusCode": 403, "RequestId": "offline-iam-check"},
    }
