"""The console's downloads and the raw line of one answer, streamed from the API's answers.

``results.jsonl`` is the file the API presigns (``format=url``), passed through block by block, so
the browser gets it from the console (same origin, a file name) and never sees the URL. The API
has no URL for failed items alone: ``errors.jsonl`` is the API's ``only=errors`` rows, page by
page, one JSON object a line. :func:`raw_record` finds one custom_id's BatchResult (with the
provider's raw line) in results.jsonl, reading at most ``RAW_SCAN_BYTES``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from starlette.responses import StreamingResponse

from batch_gateway_local.console.api import ConsoleApi

RAW_SCAN_BYTES = 64 * 1024 * 1024


def _attachment(body: Iterator[bytes], name: str) -> StreamingResponse:
    return StreamingResponse(
        body,
        media_type="application/x-ndjson",
        headers={"Content-Disposition": f'attachment; filename="{name}"', "Cache-Control": "no-store"},
    )


def results_download(api: ConsoleApi, job_id: str) -> StreamingResponse:
    url = api.results_url(job_id)  # before the response starts: a 409 becomes an error page
    return _attachment(api.stream(url), "results.jsonl")


def errors_download(api: ConsoleApi, job_id: str) -> StreamingResponse:
    first = api.results_page(job_id, 500, None, True)  # the first page, so a 404 is an error page

    def rows() -> Iterator[bytes]:
        page = first
        while True:
            for row in page.get("results", []):
                yield json.dumps(row, ensure_ascii=False).encode() + b"\n"
            token = page.get("next_token")
            if not token:
                return
            page = api.results_page(job_id, 500, token, True)

    return _attachment(rows(), "errors.jsonl")


def _lines(blocks: Iterator[bytes]) -> Iterator[bytes]:
    pending = b""
    read = 0
    for block in blocks:
        read += len(block)
        pending += block
        *complete, pending = pending.split(b"\n")
        yield from complete
        if read > RAW_SCAN_BYTES:
            return
    if pending:
        yield pending


def raw_record(api: ConsoleApi, job: dict[str, Any], custom_id: str) -> dict[str, Any] | None:
    """The custom_id's BatchResult in results.jsonl (a dict); None if not within the scan limit."""
    needle = json.dumps(custom_id, ensure_ascii=False).encode()
    blocks = api.stream(api.results_url(str(job["job_id"])))
    try:
        for line in _lines(blocks):
            if custom_id.isascii() and needle not in line:  # cheap skip; non-ASCII may be escaped
                continue
            try:
                record = json.loads(line)
            except ValueError:
                continue
            if isinstance(record, dict) and record.get("custom_id") == custom_id:
                return record
    finally:
        close = getattr(blocks, "close", None)
        if close is not None:
            close()
    return None
