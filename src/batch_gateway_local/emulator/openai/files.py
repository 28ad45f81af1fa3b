"""The emulated OpenAI Files API: upload (multipart), retrieve, list, delete, download content.

A ``purpose=batch`` upload is parsed as JSONL at once; as on OpenAI a line that is not JSON does not
fail the upload (the batch made from it fails, naming the line), a file that is not UTF-8 does. Downloads of a batch's output and error files go through the batch's scenario, which may cut
the stream short on purpose (``flaky-download``): the reason this emulator serves HTTP itself.
"""

from __future__ import annotations

import re
from typing import Any

from batch_gateway_local.emulator.common import paginate, parse_limit
from batch_gateway_local.emulator.multipart import boundary_of, parse_multipart
from batch_gateway_local.emulator.openai.replies import DAY, FILE_PURPOSES, bad, list_body, not_found
from batch_gateway_local.emulator.openai.validation import parse_jsonl
from batch_gateway_local.emulator.protocol import ApiError, Reply, Request, json_reply
from batch_gateway_local.emulator.scenario_base import Scenario
from batch_gateway_local.emulator.state import Store, StoredFile


class OpenAIFiles:
    """The Files endpoints over the emulator's store."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def upload_file(self, request: Request, _: re.Match[str]) -> Reply:
        boundary = boundary_of(request.header("content-type") or "")
        if boundary is None:
            raise ApiError(bad("Expected a multipart/form-data request body."))
        try:
            parts = parse_multipart(request.body, boundary)
        except ValueError as exc:
            raise ApiError(bad(f"Malformed multipart body: {exc}.")) from None
        purpose_part, file_part = parts.get("purpose"), parts.get("file")
        if purpose_part is None:
            raise ApiError(bad("Missing required parameter: 'purpose'.", param="purpose"))
        if file_part is None:
            raise ApiError(bad("Missing required parameter: 'file'.", param="file"))
        purpose = purpose_part.text()
        if purpose not in FILE_PURPOSES:
            raise ApiError(
                bad(f"Invalid value for 'purpose': {purpose!r}.", param="purpose", code="invalid_value")
            )
        data = file_part.data
        if len(data) > self.store.config.limits.openai_max_upload_bytes:
            raise ApiError(bad("File is too large.", param="file"))
        filename = file_part.filename or "upload"
        lines: list[tuple[int, Any]] | None = None
        invalid: list[int] = []
        if purpose == "batch":
            if not filename.endswith(".jsonl"):
                raise ApiError(bad("Invalid file format for Batch API. Must be .jsonl", param="file"))
            try:
                lines, invalid = parse_jsonl(data)
            except ValueError as exc:
                raise ApiError(bad(f"Invalid file format for Batch API. {exc}", param="file")) from None
        now = int(self.store.now())
        stored = StoredFile(
            id=self.store.new_id("file-"),
            filename=filename,
            purpose=purpose,
            created_at=now,
            data=data,
            expires_at=now + 30 * DAY if purpose == "batch" else None,
            lines=lines,
            invalid_lines=invalid,
        )
        with self.store.lock:
            self.store.files[stored.id] = stored
            self.store.files_uploaded += 1
        return json_reply(stored.to_json())

    def _file(self, file_id: str) -> StoredFile:
        with self.store.lock:
            stored = self.store.files.get(file_id)
        if stored is None:
            raise ApiError(not_found("File", file_id))
        return stored

    def file_scenario(self, file_id: str) -> Scenario | None:
        """The scenario of the batch that produced this file (None for uploads / unknown ids)."""
        with self.store.lock:
            stored = self.store.files.get(file_id)
        return stored.scenario if stored is not None else None

    def get_file(self, _: Request, match: re.Match[str]) -> Reply:
        return json_reply(self._file(match["file_id"]).to_json())

    def list_files(self, request: Request, _: re.Match[str]) -> Reply:
        limit = parse_limit(request, 10_000, 10_000, bad)
        purpose = request.query.get("purpose")
        with self.store.lock:
            files = [f for f in self.store.files.values() if purpose is None or f.purpose == purpose]
        order = request.query.get("order", "desc")
        if order not in ("asc", "desc"):
            raise ApiError(
                bad(f"Invalid value for 'order': {order!r}. Expected 'asc' or 'desc'.", param="order")
            )
        if order == "desc":
            files.reverse()
        page, has_more = paginate(
            files, lambda f: f.id, after=request.query.get("after"), before=None, limit=limit
        )
        return json_reply(list_body([f.to_json() for f in page], has_more))

    def delete_file(self, _: Request, match: re.Match[str]) -> Reply:
        file_id = match["file_id"]
        with self.store.lock:
            if self.store.files.pop(file_id, None) is None:
                raise ApiError(not_found("File", file_id))
        return json_reply({"id": file_id, "object": "file", "deleted": True})

    def file_content(self, _: Request, match: re.Match[str]) -> Reply:
        stored = self._file(match["file_id"])
        view = memoryview(stored.data)
        scenario = stored.scenario
        chunks = (
            scenario.download_chunks(view, self.store.config.chunk_size)
            if scenario is not None
            else (
                view[i : i + self.store.config.chunk_size]
                for i in range(0, len(view), self.store.config.chunk_size)
            )
        )
        return Reply(status=200, body=view, content_type="application/octet-stream", chunks=chunks)
