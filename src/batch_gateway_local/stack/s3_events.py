"""S3 event notifications on moto as S3 sends them: complete records, sent once the object is stored.

moto invokes a bucket's notification target from inside PutObject, before it stores the object's
metadata, and leaves fields out of the record that Powertools' S3 model requires (and the version id
that makes an upload unique). :func:`patch_s3_events` holds each event until the request is done and
completes the record (:func:`complete_s3_event`), for as long as the returned ExitStack is open.
Delivery is synchronous: ``put_object`` returns after the triggered handler has finished, with
Lambda's retries of a failed asynchronous event (``async_invocations``); under fault injection an
event may also arrive twice or late (``faults.hooks.deliver``).
"""

from __future__ import annotations

import inspect
import itertools
import threading
import time
import uuid
from contextlib import ExitStack
from functools import partial
from typing import Any
from unittest import mock
from urllib.parse import quote_plus, unquote_plus

from batch_gateway_local.stack.async_invocations import invoke_async
from batch_gateway_local.stack.faults.hooks import deliver


def check_s3_event_hooks() -> list[str]:
    """Problems with the private moto S3 pieces patched here (empty when they are as expected)."""
    from moto.s3 import notifications

    s3_event = getattr(notifications, "_get_s3_event", None)
    if s3_event is None or tuple(inspect.signature(s3_event).parameters) != (
        "event_name",
        "bucket",
        "key",
        "notification_id",
    ):
        return ["moto.s3.notifications._get_s3_event moved or changed its signature"]
    invoke = getattr(notifications, "_invoke_awslambda", None)
    if invoke is None or tuple(inspect.signature(invoke).parameters) != (
        "account_id",
        "event_body",
        "fn_arn",
        "region_name",
    ):
        return ["moto.s3.notifications._invoke_awslambda moved or changed its signature"]
    return []


def _invoke_awslambda(account_id: str, event_body: Any, fn_arn: str, region_name: str) -> None:
    """S3's asynchronous invocation of a notified function, with Lambda's retries of a failure."""
    from moto.awslambda.utils import get_backend

    function = get_backend(account_id, region_name).get_function(fn_arn)
    invoke_async(function, event_body, "an S3 notification")


_SEQUENCER = itertools.count(int(time.time() * 1000) << 16)


def complete_s3_event(event: dict[str, Any], key: Any) -> dict[str, Any]:
    """Add the fields of a real S3 event record that moto's notification leaves out.

    moto 5.2.5 omits ``userIdentity``, ``requestParameters``, ``responseElements``,
    ``s3.bucket.ownerIdentity``, ``s3.object.versionId`` (versioned buckets) and
    ``s3.object.sequencer``; Powertools' S3 parser model requires some of them, and the version id
    is what makes an upload unique. moto also form-encodes the whole key (``inbox%2Fa.jsonl``)
    where S3 leaves the slashes alone (``inbox/a.jsonl``; a space still becomes ``+``, other
    special characters ``%XX``, so handlers must still ``unquote_plus`` the key): the key is
    re-encoded the S3 way.
    """
    version_id = getattr(key, "version_id", None)
    for record in event.get("Records", []):
        record.setdefault("userIdentity", {"principalId": "AWS:OFFLINESTACK"})
        record.setdefault("requestParameters", {"sourceIPAddress": "127.0.0.1"})
        record.setdefault(
            "responseElements",
            {"x-amz-request-id": uuid.uuid4().hex[:16].upper(), "x-amz-id-2": uuid.uuid4().hex},
        )
        s3 = record.get("s3", {})
        s3.get("bucket", {}).setdefault("ownerIdentity", {"principalId": "OFFLINESTACK"})
        obj = s3.get("object", {})
        if isinstance(obj.get("key"), str):
            obj["key"] = quote_plus(unquote_plus(obj["key"]), safe="/")
        if version_id and version_id != "null":
            obj.setdefault("versionId", str(version_id))
        obj.setdefault("sequencer", f"{next(_SEQUENCER):016X}")
    return event


def patch_s3_events() -> ExitStack:
    from moto.s3 import notifications
    from moto.s3.responses import S3Response

    original_event = notifications._get_s3_event
    original_send = notifications.send_event
    original_key_response = S3Response.key_response
    deferred = threading.local()

    def _get_s3_event(event_name: Any, bucket: Any, key: Any, notification_id: str) -> dict[str, Any]:
        return complete_s3_event(original_event(event_name, bucket, key, notification_id), key)

    def send_event(*args: Any, **kwargs: Any) -> None:
        queue = getattr(deferred, "events", None)
        if queue is None:
            original_send(*args, **kwargs)
        else:
            queue.append((args, kwargs))

    def key_response(self: Any, *args: Any, **kwargs: Any) -> Any:
        # moto sends the ObjectCreated event from inside PutObject, before it stores the object's
        # metadata; S3 notifies only once the object is complete. Hold events until the request is done.
        if getattr(deferred, "events", None) is not None:
            return original_key_response(self, *args, **kwargs)
        deferred.events = []
        try:
            return original_key_response(self, *args, **kwargs)
        finally:
            events, deferred.events = deferred.events, None
            for event_args, event_kwargs in events:
                deliver("s3-notification", partial(original_send, *event_args, **event_kwargs))

    stack = ExitStack()
    stack.enter_context(mock.patch.object(notifications, "_get_s3_event", _get_s3_event))
    stack.enter_context(mock.patch.object(notifications, "send_event", send_event))
    stack.enter_context(mock.patch.object(S3Response, "key_response", key_response))
    stack.enter_context(mock.patch.object(notifications, "_invoke_awslambda", _invoke_awslambda))
    return stack
