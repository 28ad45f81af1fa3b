"""Where the faults of a :class:`~.plan.FaultPlan` happen: botocore, httpx and the event deliveries.

- Every botocore call a handler makes (``BaseClient._make_api_call``): the handler dies before it,
  or after it (the call took effect, the handler never learned). Bedrock calls count as provider
  calls; the rest are AWS calls.
- Every HTTP request a handler sends to a provider (``httpx.Client.send`` for the OpenAI and
  Anthropic SDKs, botocore's ``Endpoint._send`` for Bedrock): the handler dies before or after it,
  or the answer is lost after the provider did the work - a read timeout the SDK itself may retry.
- Every event delivery (S3 notifications, DynamoDB stream batches, EventBridge targets, webhooks)
  goes through :func:`deliver`: once, twice, or late.
Only calls made while a handler runs (the IAM recorder's ``current_function``) are faulted: the
stack's own set-up and a test's reads are not.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from typing import Any
from unittest import mock

import botocore.client
import botocore.endpoint
import httpx2 as httpx
from botocore.exceptions import ReadTimeoutError

from batch_gateway_local.stack.faults.plan import FaultKind, FaultPlan, HandlerCrash
from batch_gateway_local.stack.iam.recorder import current_function, in_handler_thread

_PROVIDER_SERVICES = frozenset({"bedrock", "bedrock-runtime"})
_active: list[FaultPlan] = []


def active_plan() -> FaultPlan | None:
    return _active[-1] if _active else None


def _maybe_crash(plan: FaultPlan, kind: FaultKind, where: str) -> None:
    # Only in the handler's own thread: a worker thread (boto3's transfers) that raised would not take
    # the handler down with it, as a Lambda timeout or out-of-memory takes down the whole process.
    function = current_function() if in_handler_thread() else None
    if function is not None and plan.decide(kind, where, function):
        raise HandlerCrash(kind, f"{function}: {where}")


def _botocore_calls(plan: FaultPlan, stack: ExitStack) -> None:
    original = botocore.client.BaseClient._make_api_call  # type: ignore[attr-defined]

    def make_api_call(client: Any, operation_name: str, api_params: Any) -> Any:
        service = client.meta.service_model.service_name
        kind = "provider" if service in _PROVIDER_SERVICES else "aws"
        where = f"{service}.{operation_name}"
        _maybe_crash(plan, f"crash-before-{kind}-call", where)  # type: ignore[arg-type]
        result = original(client, operation_name, api_params)
        _maybe_crash(plan, f"crash-after-{kind}-call", where)  # type: ignore[arg-type]
        return result

    stack.enter_context(mock.patch.object(botocore.client.BaseClient, "_make_api_call", make_api_call))


def _lost_answer(plan: FaultPlan, where: str) -> bool:
    function = current_function()
    return function is not None and plan.decide("lost-provider-answer", where, function)


def _provider_http(plan: FaultPlan, stack: ExitStack) -> None:
    original_send = httpx.Client.send

    def send(client: httpx.Client, request: httpx.Request, *args: Any, **kwargs: Any) -> httpx.Response:
        where = f"{request.method} {request.url.path}"
        _maybe_crash(plan, "crash-before-provider-call", where)
        response = original_send(client, request, *args, **kwargs)
        if _lost_answer(plan, where):
            response.close()
            raise httpx.ReadTimeout("offline fault injection: the answer was lost", request=request)
        _maybe_crash(plan, "crash-after-provider-call", where)
        return response

    original_endpoint_send = botocore.endpoint.Endpoint._send  # type: ignore[attr-defined]

    def endpoint_send(endpoint: Any, request: Any) -> Any:
        response = original_endpoint_send(endpoint, request)
        if _lost_answer(plan, f"{request.method} {request.url}"):
            raise ReadTimeoutError(endpoint_url=request.url)  # botocore's own retries see this
        return response

    stack.enter_context(mock.patch.object(httpx.Client, "send", send))
    stack.enter_context(mock.patch.object(botocore.endpoint.Endpoint, "_send", endpoint_send))


def deliver(what: str, send: Callable[[], object]) -> None:
    """Deliver an event: at once when no plan is active, else once, twice or late as the plan says."""
    plan = active_plan()
    if plan is None:
        send()
        return
    late = plan.decide("late-event", what)
    twice = plan.decide("duplicate-event", what)
    if late:
        timer = threading.Timer(plan.delay(), send)
        timer.daemon = True
        timer.start()
    else:
        send()
    if twice:
        again = threading.Timer(plan.delay(), send)
        again.daemon = True
        again.start()


def _webhooks(plan: FaultPlan, stack: ExitStack) -> None:
    """The emulated OpenAI's webhooks: sent twice or late (OpenAI retries a delivery for 72 hours)."""
    from batch_gateway_local.emulator.webhooks import WebhookSender

    original = WebhookSender.batch_ended

    def batch_ended(sender: WebhookSender, batch_id: str, status: str) -> int | None:
        answered: list[int | None] = []
        deliver("openai-webhook", lambda: answered.append(original(sender, batch_id, status)))
        return answered[0] if answered else None

    stack.enter_context(mock.patch.object(WebhookSender, "batch_ended", batch_ended))


@contextmanager
def installed(plan: FaultPlan) -> Iterator[FaultPlan]:
    """Faults on for the duration (install after the offline stack, so they wrap its patches)."""
    with ExitStack() as stack:
        _botocore_calls(plan, stack)
        _provider_http(plan, stack)
        _webhooks(plan, stack)
        _active.append(plan)
        stack.callback(_active.remove, plan)
        yield plan
