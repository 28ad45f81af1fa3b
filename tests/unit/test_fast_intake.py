"""Intake's fast path gives exactly what the plain path gives: duplicate detection in a compact table,
validation into a dict, request lines from templates."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import pytest

from batch_gateway.intake.checks import parse_fields, parse_item
from batch_gateway.intake.seen_ids import SeenIds
from batch_gateway.models import BatchItem, JobSpec
from batch_gateway.providers.line_encoder import LineEncoder, has_no_control_escapes, item_from_fields
from batch_gateway.providers.requests import encode_request_line, request_builder_for, request_model
from batch_gateway.providers.token_estimate import estimate_request_line


# ------------------------------------------------------------------ SeenIds
@pytest.mark.parametrize(
    "hash_function",
    [hash, lambda s: 0, lambda s: len(s) << 32, lambda s: hash(s) & 0xFFFF_FFFF],
    ids=["builtin", "all-collide", "by-length", "low-bits-only"],
)
def test_seen_ids_agrees_with_a_dict(tmp_path: Path, hash_function: Any) -> None:
    rng = random.Random(7)
    seen = SeenIds(tmp_path / "spill", hash_function=hash_function)
    reference: dict[str, int] = {}
    count = 3000 if hash_function is hash else 400  # colliding hashes make every probe a disk read
    line = 0
    for _ in range(count):
        line += rng.choice([1, 1, 1, 2, 70])  # gaps: blank or unreadable lines, across blocks
        custom_id = rng.choice(
            [f"id-{rng.randrange(count)}", f'é\n"{rng.randrange(50)}', "x" * rng.randrange(1, 90)]
        )
        assert seen.add(custom_id, line) == reference.setdefault(custom_id, line)
    assert len(seen) == len(reference)
    for custom_id in list(reference)[:200]:
        assert custom_id in seen
    assert "never-used" not in seen
    assert 42 not in seen
    seen.close()
    assert not (tmp_path / "spill").exists()


def test_seen_ids_takes_the_callers_json_and_refuses_lines_out_of_order(tmp_path: Path) -> None:
    seen = SeenIds(tmp_path / "spill")
    assert seen.add("a", 1, '"a"') == 1
    assert seen.add("ü", 2, json.dumps("ü", ensure_ascii=False)) == 2
    assert seen.add("ü", 500) == 2
    assert seen.add("b", 3) == 3
    with pytest.raises(ValueError, match="increasing order"):
        seen.add("c", 2)
    seen.close()


def test_seen_ids_stays_small(tmp_path: Path) -> None:
    seen = SeenIds(tmp_path / "spill")
    for line in range(1, 100_001):
        seen.add(f"ticket-{line:07d}", line)
    # 8-byte slots, at most half full after growing: well under a dict's ~100 bytes per id.
    assert seen.table_bytes <= 100_000 * 8 * 4
    seen.close()


# ------------------------------------------------------------------ validation into a dict
LINES = [
    b'{"custom_id": "a", "user_message": "x"}',
    b'{"custom_id": "a", "user_message": "x", "temperature": 1, "max_tokens": 5.0}',
    b'{"custom_id": "a", "user_message": "x", "temperature": "0.5", "max_tokens": "7"}',
    b'{"custom_id": "a", "user_message": "x", "temperature": 2.5}',
    b'{"custom_id": "a", "user_message": "x", "temperature": true}',
    b'{"custom_id": "a", "user_message": "x", "max_tokens": 0}',
    b'{"custom_id": "a", "user_message": "x", "max_tokens": 1.5}',
    b'{"custom_id": "a", "user_message": "x", "max_tokens": null}',
    b'{"custom_id": "a", "user_message": "x", "extra": {"top_p": 0.9, "n": [1, {"b": null}]}}',
    b'{"custom_id": "a", "user_message": "x", "extra": []}',
    b'{"custom_id": "a", "user_message": "x", "promt": "y"}',
    b'{"custom_id": "", "user_message": "x"}',
    b'{"custom_id": 5, "user_message": "x"}',
    b'{"user_message": "x"}',
    b'{"custom_id": "a", "user_message": ""}',
    b'{"custom_id": "a", "user_message": "x"',
    b"[1, 2]",
    b'"just a string"',
    b'{"custom_id": "caf\xe9", "user_message": "x"}',
    b'{"custom_id": "a", "user_message": "x\\ud800"}',
    b'{"custom_id": "a", "custom_id": "b", "user_message": "x"}',
    b'{"custom_id": "' + b"\xc3\xa9" * 600 + b'", "user_message": "x"}',
    b'{"custom_id": "' + b"e" * 1024 + b'", "user_message": "x"}',
    b'{"custom_id": "' + b"e" * 1025 + b'", "user_message": "x"}',
    b'{"custom_id": "a", "user_message": "x", "temperature": NaN}',
]


@pytest.mark.parametrize("raw", LINES)
def test_parse_fields_accepts_and_explains_exactly_like_parse_item(raw: bytes) -> None:
    fields = parse_fields(7, raw)
    item = parse_item(7, raw)
    if isinstance(item, BatchItem):
        assert isinstance(fields, dict)
        rebuilt = item_from_fields(fields)
        assert rebuilt.model_dump() == item.model_dump()
        assert rebuilt.model_fields_set == item.model_fields_set
    else:
        assert fields == item


# ------------------------------------------------------------------ request lines from templates
SPECS = [
    JobSpec(provider="openai", model="gpt-4o-mini", system_prompt='Be brief, 100% "honest".'),
    JobSpec(provider="openai", model="gpt-4o-mini"),
    JobSpec(provider="anthropic", model="claude-haiku-4-5", system_prompt="Réponds en français.\n"),
    JobSpec(provider="anthropic", model="claude-haiku-4-5"),
]
ITEMS: list[dict[str, Any]] = [
    {"user_message": "Capital of France?"},
    {"user_message": 'quote " backslash \\ newline \n tab \t unicode é ✓ 😀 %s %(x)s {0}'},
    {"user_message": "x", "temperature": 0.3, "max_tokens": 50},
    {"user_message": "x", "temperature": 1e-05},
    {"user_message": "x", "extra": {}},
    {"user_message": "x", "extra": {"top_p": 0.9, "stop": ["\n", "END"], "seed": 7, "logprobs": True}},
    {"user_message": "x", "extra": {"response_format": {"type": "json_object"}, "metadata": {"a": "ü"}}},
    {"user_message": "x", "extra": {"temperature": 0.1, "max_tokens": 9}},
    {"user_message": "x", "extra": {"max_completion_tokens": 9, "top_k": 3}},
    {"user_message": "x", "extra": {"reasoning_effort": "low"}},
    {"user_message": "x", "temperature": 0.5, "extra": {"reasoning_effort": "low"}},
    {"user_message": "x", "extra": {"thinking": {"type": "enabled", "budget_tokens": 1024}}},
    {"user_message": "x", "extra": {"thinking": {"type": "disabled"}}},
    {"user_message": "x", "extra": {"system": "other system", "model": "other-model"}},
    {"user_message": "x", "extra": {"temperature": None, "tools": [{"name": "f"}]}},
    {"user_message": "x", "extra": {"weird": float("inf"), "nan": float("nan")}},
]


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: f"{s.provider}-{bool(s.system_prompt)}")
def test_line_encoder_writes_what_the_builder_writes(spec: JobSpec) -> None:
    builder = request_builder_for(spec.provider)
    encoder = LineEncoder(builder, spec)
    for values in ITEMS * 2:  # twice: the second time from cached templates
        line = {"custom_id": "q-1", **values}
        raw = json.dumps(line, ensure_ascii=values.get("user_message") == "x").encode()
        fields = parse_fields(1, raw)
        assert isinstance(fields, dict), fields
        item = parse_item(1, raw)
        assert isinstance(item, BatchItem)
        expected = encode_request_line(builder.build_request("q-1", item, spec))
        assert encoder.encode("q-1", fields, raw) == expected
        assert encoder.encode("q-1", fields) == expected
        assert encoder.encode("q-1", fields, raw, '"q-1"') == expected
        assert encoder.model(fields) == request_model(item, spec)


TOKEN_SPECS = [
    *SPECS[:2],
    JobSpec(provider="openai", model="text-embedding-3-small", endpoint="embeddings"),
    JobSpec(provider="azure-openai", model="gpt-4o-mini-batch", system_prompt="Sé breve. 简短"),
    JobSpec(
        provider="openai",
        model="gpt-4o-mini",
        response_schema={"type": "object", "properties": {"label": {"type": "string"}}},
    ),
]


@pytest.mark.parametrize("spec", TOKEN_SPECS, ids=lambda s: f"{s.provider}-{bool(s.system_prompt)}")
def test_line_encoder_counts_the_tokens_the_estimator_counts_on_the_line(spec: JobSpec) -> None:
    """Chunks are sized by these counts against the enqueued-token quota: they must be the
    estimator's own, exactly, or the quota ledger reserves less than a batch holds."""
    builder = request_builder_for(spec.provider)
    encoder = LineEncoder(builder, spec, count_tokens=True)
    counted = 0
    for values in ITEMS * 2:
        raw = json.dumps({"custom_id": "q-1", **values}).encode()
        fields = parse_fields(1, raw)
        assert isinstance(fields, dict), fields
        try:
            line, tokens = encoder.encode_counted("q-1", fields, raw)
        except ValueError:  # an extra the job's schema refuses: an error line, never staged
            continue
        assert line == encoder.encode("q-1", fields, raw)
        if tokens is not None:  # None: the chunk writer estimates from the line itself
            counted += 1
            assert tokens == estimate_request_line(line, spec.provider), values
    assert counted >= len(ITEMS)  # plain items and extras the estimate does not read: all counted
    assert (
        LineEncoder(builder, spec).encode_counted("q-1", {"custom_id": "q", "user_message": "x"})[1] is None
    )


@pytest.mark.parametrize("key", ["messages", "stream", "custom_id"])
def test_line_encoder_refuses_what_the_builder_refuses(key: str) -> None:
    spec = SPECS[0]
    raw = json.dumps({"custom_id": "q", "user_message": "x", "extra": {key: 1}}).encode()
    fields = parse_fields(1, raw)
    assert isinstance(fields, dict)
    with pytest.raises(ValueError, match=f"extra may not set '{key}'"):
        LineEncoder(request_builder_for("openai"), spec).encode("q", fields, raw)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (b'{"a": "plain"}', True),
        (b'{"a": "caf\\u00e9 \\" \\\\ \\/"}', True),
        (b'{"a": "line\\nbreak"}', False),
        (b'{"a": "\\u001f"}', False),
        (b'{"a": "\\u000A"}', False),
        (b'{"a": "\\t"}', False),
        (b'{"a": "\\\\n is fine but counted"}', False),
    ],
)
def test_control_escapes_are_spotted(raw: bytes, expected: bool) -> None:
    assert has_no_control_escapes(raw) is expected


def test_line_encoder_keeps_few_layouts_however_many_shapes(monkeypatch: pytest.MonkeyPatch) -> None:
    from batch_gateway.providers import line_encoder

    monkeypatch.setattr(line_encoder, "MAX_TEMPLATES", 5)
    spec = SPECS[0]
    builder = request_builder_for(spec.provider)
    encoder = LineEncoder(builder, spec)
    for n in range(20):
        raw = json.dumps({"custom_id": "q", "user_message": "x", "extra": {f"key_{n}": n}}).encode()
        fields = parse_fields(1, raw)
        assert isinstance(fields, dict)
        item = parse_item(1, raw)
        assert isinstance(item, BatchItem)
        assert encoder.encode("q", fields, raw) == encode_request_line(builder.build_request("q", item, spec))
    assert len(encoder._templates) == 5
