"""Demo jobs for ``local up --console --demo-jobs`` (``make console``): something to look at at once.

Three small jobs submitted through the API like any client's: support tickets on OpenAI that all
succeed, the same on Anthropic with a few lines carrying the emulator's error markers (so the job
page has errors to group by reason), and one with an invalid line skipped (``on_invalid=skip``).
Only for the offline stack: the markers mean nothing to a real provider.
"""

from __future__ import annotations

from typing import Any

from batch_gateway_local.console.api import ConsoleApi
from batch_gateway_local.emulator import MARKER_ERROR_400, MARKER_ERROR_500

TICKETS = (
    "I was charged twice for my order.",
    "My parcel is three days late.",
    "How do I change my delivery address?",
    "The app logs me out every few minutes.",
    "Can I get an invoice with my company's VAT number?",
    "The blue jacket arrived in the wrong size.",
    "My discount code is not accepted at checkout.",
    "Where can I download my receipts?",
)


def _items(prefix: str, markers: dict[int, str] | None = None) -> list[dict[str, Any]]:
    markers = markers or {}
    return [
        {
            "custom_id": f"{prefix}-{n:03d}",
            "user_message": f"Classify this support ticket: {text} {markers.get(n, '')}".strip(),
            "max_tokens": 32,
        }
        for n, text in enumerate(TICKETS * 2, start=1)
    ]


def submit_demo_jobs(api: ConsoleApi) -> list[str]:
    """The demo jobs' ids, submitted (idempotently: a restart of the same stack makes no new ones)."""
    system = "Answer with one word: billing, delivery, account or product."
    errors = {3: MARKER_ERROR_400, 9: MARKER_ERROR_400, 12: MARKER_ERROR_500}
    invalid = [*_items("skip")[:5], {"custom_id": "skip-bad", "user_message": ""}]
    jobs = [
        ({"provider": "openai", "model": "gpt-4o-mini", "system_prompt": system}, _items("ticket")),
        (
            {"provider": "anthropic", "model": "claude-3-5-haiku-latest", "system_prompt": system},
            _items("err", errors),
        ),
        ({"provider": "openai", "model": "gpt-4o-mini", "on_invalid": "skip"}, invalid),
    ]
    return [
        str(api.submit(spec, items, f"console-demo-{number}")["job_id"])
        for number, (spec, items) in enumerate(jobs, start=1)
    ]
