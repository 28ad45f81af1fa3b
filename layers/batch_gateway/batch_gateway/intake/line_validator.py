"""The line validator: each input line becomes a staged provider request, or an explained error.

:class:`LineValidator` runs once per input line, so valid lines take a fast path: ``checks``
validates them into a dict, ``providers.requests.LineEncoder`` writes the request line, and the
index line is formatted from already JSON-encoded ids. Any line that needs explaining goes through
``checks.parse_item``, so messages are the same either way.

Lines in a provider's own format (``intake.formats``) and CSV rows take their own checks,
:meth:`LineValidator.check_foreign` and :meth:`LineValidator.check_row`, chosen once per file by
:meth:`LineValidator.checker`; the BatchItem path is not touched by them.

It also remembers every custom_id (``seen_ids.SeenIds``, readable ids of invalid lines too) to
refuse duplicates, writes each ``LineError`` to errors.jsonl, spools each invalid line's error
result in line order (staged by ``split`` under on_invalid=skip), and keeps the first few errors
for the job's reason.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from json.encoder import encode_basestring
from typing import IO

from batch_gateway.intake.checks import LineError, describe, parse_fields
from batch_gateway.intake.chunk_writer import PROVIDER_BYTES_HEADROOM, TOKEN_QUOTA_PROVIDERS, StagedLine
from batch_gateway.intake.formats.common import UntranslatableError
from batch_gateway.intake.formats.csv_rows import CsvRows
from batch_gateway.intake.formats.detect import Records
from batch_gateway.intake.formats.translate import Translator
from batch_gateway.intake.seen_ids import SeenIds
from batch_gateway.intake.spec import META_ON_INVALID
from batch_gateway.models import JobSpec
from batch_gateway.providers.custom_ids import RESERVED_PREFIX, SAFE_ID_PATTERN
from batch_gateway.providers.line_encoder import LineEncoder
from batch_gateway.providers.requests import RequestBuilder, encode_request_line
from batch_gateway.storage.chunk_index import encode_index_line

MAX_REASON_ERRORS = 3
_SAFE_ID = SAFE_ID_PATTERN.fullmatch
Check = Callable[[int, bytes], StagedLine | None]


class LineValidator:
    """Validates lines one by one, remembering custom_ids (readable ones of invalid lines too) to
    refuse duplicates, and spooling every invalid line's error result in line order."""

    _table: CsvRows  # set by checker() for a CSV file
    _translator: Translator  # set by checker() for a provider-format file

    def __init__(
        self,
        builder: RequestBuilder,
        spec: JobSpec,
        errors_file: IO[bytes],
        invalid_file: IO[bytes],
        seen: SeenIds,
        max_line_bytes: int,
    ) -> None:
        self._builder, self._spec = builder, spec
        self._max_line_bytes = max_line_bytes
        # OpenAI and Azure chunks are sized by estimated tokens: counted as each line is written.
        self._encoder = LineEncoder(builder, spec, count_tokens=builder.name in TOKEN_QUOTA_PROVIDERS)
        self._keeps_safe_ids = builder.keeps_safe_ids
        self._limit = int(builder.limits.max_bytes * PROVIDER_BYTES_HEADROOM)
        self._errors, self._invalid = errors_file, invalid_file
        self._skip = spec.on_invalid == "skip"
        self.seen = seen
        self.error_count = 0  # LineErrors (a line may have several)
        self.invalid_lines = 0
        self.duplicate_count = 0
        self.first_duplicates: list[LineError] = []  # the first few, for the job's reason
        self.first_errors: list[LineError] = []

    @property
    def rejects_file(self) -> bool:
        """The whole file is rejected: a duplicate custom_id, or an invalid line under on_invalid=reject."""
        return bool(self.duplicate_count or (self.invalid_lines and not self._skip))

    def check(self, line: int, raw: bytes) -> StagedLine | None:
        """The line, ready to stage; or None when it is invalid (its errors are written)."""
        if len(raw) > self._max_line_bytes:  # cut short by the reader: its JSON cannot be read
            self._fail([LineError(line=line, reason=_too_long(self._max_line_bytes))])
            return None
        fields = parse_fields(line, raw)
        if isinstance(fields, list):
            self._fail(fields + self._duplicate(fields[0].custom_id, line))
            return None
        custom_id: str = fields["custom_id"]
        # custom_ids.is_safe_custom_id, inlined: a safe id is sent unchanged, and JSON-encoded as is.
        if (
            self._keeps_safe_ids
            and _SAFE_ID(custom_id) is not None
            and not custom_id.startswith(RESERVED_PREFIX)
        ):
            provider_id = custom_id
            encoded_id = encoded_provider_id = f'"{custom_id}"'
        else:
            provider_id = self._builder.provider_custom_id(custom_id, line)
            encoded_id, encoded_provider_id = encode_basestring(custom_id), encode_basestring(provider_id)
        if self.seen.add(custom_id, line, encoded_id) != line:  # a duplicate: _duplicate explains it
            self._fail(self._duplicate(custom_id, line))
            return None
        try:
            request_line, tokens = self._encoder.encode_counted(provider_id, fields, raw, encoded_provider_id)
        except ValueError as exc:
            self._fail([LineError(line=line, field="extra", reason=str(exc), custom_id=custom_id)])
            return None
        if len(request_line) > self._limit:
            self._fail([self._too_large(line, custom_id, len(request_line))])
            return None
        index_line = encode_index_line(line, encoded_id, encoded_provider_id)
        model = self._encoder.model(fields) if "extra" in fields else self._spec.model
        return StagedLine(model, request_line, index_line, tokens)

    def checker(self, records: Records) -> Check:
        """The check for every record of this file: chosen once, from its format."""
        if records.table is not None:
            self._table = records.table
            return self.check_row
        if records.format == "items":
            return self.check
        self._translator = Translator(records.format, self._spec)
        return self.check_foreign

    def check_row(self, line: int, record: bytes) -> StagedLine | None:
        """A CSV row (its cells as a JSON array), staged as the BatchItem its template makes."""
        fields = self._table.item(line, record)
        if isinstance(fields, list):
            self._fail(fields + self._duplicate(fields[0].custom_id, line))
            return None
        ids = self._ids(fields["custom_id"], line)
        if ids is None:
            return None
        try:
            request_line = self._encoder.encode(ids[0], fields, None, ids[2])
        except ValueError as exc:  # e.g. a job model the provider's builder refuses
            self._fail([LineError(line=line, field="model", reason=str(exc), custom_id=fields["custom_id"])])
            return None
        return self._staged(line, fields["custom_id"], ids, request_line, self._spec.model)

    def check_foreign(self, line: int, raw: bytes) -> StagedLine | None:
        """A line in a provider's own format, rendered for the job's provider."""
        if len(raw) > self._max_line_bytes:
            self._fail([LineError(line=line, reason=_too_long(self._max_line_bytes))])
            return None
        read = self._translator.read(line, raw)
        if isinstance(read, list):
            self._fail(read + self._duplicate(read[0].custom_id, line))
            return None
        ids = self._ids(read.custom_id, line)
        if ids is None:
            return None
        try:
            model, request = self._translator.render(read, ids[0])
        except UntranslatableError as exc:
            self._fail([LineError(line=line, field=exc.field, reason=str(exc), custom_id=read.custom_id)])
            return None
        return self._staged(line, read.custom_id, ids, encode_request_line(request), model)

    def _ids(self, custom_id: str, line: int) -> tuple[str, str, str] | None:
        """(provider id, id as JSON, provider id as JSON); None for a duplicate (its error written)."""
        provider_id = self._builder.provider_custom_id(custom_id, line)
        encoded_id = encode_basestring(custom_id)
        if self.seen.add(custom_id, line, encoded_id) != line:
            self._fail(self._duplicate(custom_id, line))
            return None
        return provider_id, encoded_id, encode_basestring(provider_id)

    def _staged(
        self, line: int, custom_id: str, ids: tuple[str, str, str], request_line: bytes, model: str
    ) -> StagedLine | None:
        if len(request_line) > self._limit:
            self._fail([self._too_large(line, custom_id, len(request_line))])
            return None
        return StagedLine(model, request_line, encode_index_line(line, ids[1], ids[2]))

    def rejection_reason(self, errors_uri: str) -> str:
        """Why the file is rejected (see :attr:`rejects_file`), naming the first few errors."""
        if self._skip:
            count = self.duplicate_count
            return (
                f"rejected: {count} duplicate custom_id(s) — {_listed(self.first_duplicates, count)}. "
                f"Duplicate ids reject the whole file even with {META_ON_INVALID}=skip. See {errors_uri}"
            )
        listed = _listed(self.first_errors, self.error_count)
        return f"rejected: {self.invalid_lines} invalid line(s) — {listed}. See {errors_uri}"

    def _fail(self, errors: list[LineError]) -> None:
        for error in errors:
            self._errors.write(error.model_dump_json(exclude_none=True).encode() + b"\n")
            self.error_count += 1
            if len(self.first_errors) < MAX_REASON_ERRORS:
                self.first_errors.append(error)
        self.invalid_lines += 1
        record = {"line": errors[0].line, "custom_id": errors[0].custom_id, "error": describe(errors)}
        self._invalid.write(json.dumps(record, ensure_ascii=False).encode() + b"\n")

    def _duplicate(self, custom_id: str | None, line: int) -> list[LineError]:
        if not custom_id:
            return []
        first_line = self.seen.add(custom_id, line)
        if first_line == line:
            return []
        error = LineError(
            line=line,
            field="custom_id",
            custom_id=custom_id,
            reason=f"duplicate custom_id '{custom_id}' (first used on line {first_line}): "
            "every custom_id must be unique in a file; give each item its own id",
        )
        self.duplicate_count += 1
        if len(self.first_duplicates) < MAX_REASON_ERRORS:
            self.first_duplicates.append(error)
        return [error]

    def _too_large(self, line: int, custom_id: str, size: int) -> LineError:
        return LineError(
            line=line,
            field="user_message",
            reason=f"the request is {size} bytes, more than {self._builder.name} "
            f"accepts in one batch ({self._limit} bytes): shorten user_message or extra",
            custom_id=custom_id,
        )


def _too_long(max_line_bytes: int) -> str:
    return (
        f"the line is longer than {max_line_bytes:,} bytes (the stack's MaxLineBytes): "
        "shorten user_message or extra, or raise MaxLineBytes"
    )


def _listed(errors: list[LineError], total: int) -> str:
    shown = "; ".join(f"line {e.line}: {e.reason}" for e in errors[:MAX_REASON_ERRORS])
    more = total - min(len(errors), MAX_REASON_ERRORS)
    return shown + (f" (and {more} more)" if more > 0 else "")
