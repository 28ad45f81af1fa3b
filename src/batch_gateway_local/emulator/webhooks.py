"""OpenAI-style webhooks from the emulator: Standard Webhooks signatures, sent to a local URL.

OpenAI signs a delivery with the endpoint's ``whsec_<base64 key>`` secret: ``webhook-signature`` is
``v1,<base64 HMAC-SHA256 of "<webhook-id>.<webhook-timestamp>.<body>">``. The gateway verifies it
with the official SDK (``client.webhooks.verify_signature``), so these deliveries exercise the same
check a real one does.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any

# The OpenAI batch states that end a batch, and the webhook event each one sends.
BATCH_EVENT_TYPES = {
    "completed": "batch.completed",
    "failed": "batch.failed",
    "expired": "batch.expired",
    "cancelled": "batch.cancelled",
}


def new_secret() -> str:
    """A secret in the format the OpenAI dashboard shows (``whsec_`` + base64 of 32 random bytes)."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


def signature(secret: str, webhook_id: str, timestamp: int, body: str) -> str:
    key = base64.b64decode(secret.removeprefix("whsec_")) if secret.startswith("whsec_") else secret.encode()
    digest = hmac.new(key, f"{webhook_id}.{timestamp}.{body}".encode(), hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


@dataclass(frozen=True)
class SignedDelivery:
    """One webhook request: its headers and the exact body bytes they sign."""

    headers: dict[str, str]
    body: str


def batch_event_body(event_type: str, batch_id: str, created_at: int | None = None) -> str:
    event = {
        "id": f"evt_{secrets.token_hex(12)}",
        "object": "event",
        "created_at": created_at or int(time.time()),
        "type": event_type,
        "data": {"id": batch_id},
    }
    return json.dumps(event)


def sign_delivery(
    secret: str, body: str, *, webhook_id: str | None = None, timestamp: int | None = None
) -> SignedDelivery:
    webhook_id = webhook_id or f"wh_{secrets.token_hex(12)}"
    timestamp = int(time.time()) if timestamp is None else timestamp
    return SignedDelivery(
        headers={
            "Content-Type": "application/json",
            "webhook-id": webhook_id,
            "webhook-timestamp": str(timestamp),
            "webhook-signature": signature(secret, webhook_id, timestamp, body),
        },
        body=body,
    )


@dataclass(frozen=True)
class WebhookSender:
    """Posts signed ``batch.*`` events to ``url`` (e.g. ``local up``'s ``/v1/webhooks/openai``)."""

    url: str
    secret: str
    timeout_s: float = 10.0

    def batch_ended(self, batch_id: str, status: str) -> int | None:
        """Send the event for a batch that reached ``status``; the HTTP status (None: not sent)."""
        event_type = BATCH_EVENT_TYPES.get(status)
        if event_type is None:
            return None
        delivery = sign_delivery(self.secret, batch_event_body(event_type, batch_id))
        if not self.url.startswith(("http://127.0.0.1", "http://localhost")):
            raise ValueError(f"the emulator only sends webhooks to this machine, not to {self.url}")
        request = urllib.request.Request(  # noqa: S310 - checked above: a loopback http URL
            self.url, data=delivery.body.encode(), headers=delivery.headers, method="POST"
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout_s) as response:  # noqa: S310 - local URL
                return int(response.status)
        except urllib.error.HTTPError as exc:
            return int(exc.code)
        except OSError:
            return None  # the receiver is down: OpenAI would retry; the poll loop covers it


class ProviderClock:
    """The emulated OpenAI finishing batches on its own and notifying ``sender`` when each one ends.

    The emulator advances a batch one step per retrieve (never by wall time); with webhooks on, this
    thread is the provider's own clock: every ``interval_s`` it retrieves each unfinished batch, and
    sends one signed ``batch.*`` webhook per batch once it has ended - whether this clock or the
    gateway's poll ended it. Sending happens here, never inside an emulator request, so a webhook
    never waits on a Lambda that waits on the emulator.
    """

    def __init__(self, openai_base_url: str, sender: WebhookSender, interval_s: float = 1.0) -> None:
        self.openai_base_url, self.sender, self.interval_s = openai_base_url, sender, interval_s
        self.notified: dict[str, int | None] = {}  # batch id -> HTTP status of its webhook
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> ProviderClock:
        self._thread = threading.Thread(target=self._run, name="emulator-webhooks", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(self.sender.timeout_s + self.interval_s)

    def __enter__(self) -> ProviderClock:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _run(self) -> None:
        from openai import OpenAI, OpenAIError

        client = OpenAI(api_key="sk-emulator-local", base_url=self.openai_base_url, max_retries=0)
        while not self._stop.wait(self.interval_s):
            try:
                self.tick(client)
            except OpenAIError:
                continue  # the emulator is stopping or refused (a throttle scenario): next tick

    def tick(self, client: Any) -> None:
        for batch in client.batches.list(limit=100):
            if batch.id in self.notified:
                continue
            status = (
                batch.status
                if batch.status in BATCH_EVENT_TYPES
                else client.batches.retrieve(batch.id).status
            )
            if status in BATCH_EVENT_TYPES:
                self.notified[batch.id] = self.sender.batch_ended(batch.id, status)
