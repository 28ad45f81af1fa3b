"""The console's page data: progress, status history, outcome bars, errors grouped by reason, and
the submit page's reading of a JSONL upload (line numbers kept across blank lines)."""

from __future__ import annotations

import pytest

pytest.importorskip("starlette")

from batch_gateway.models import Estimate, EstimatedCost, EstimatedLineError
from batch_gateway_local.console import views
from batch_gateway_local.console.submit import (
    Prepared,
    _file_lines,
    estimate_summary,
    parse_jsonl,
    parse_schema,
)


def test_history_follows_the_timestamps() -> None:
    job = {
        "status": "completed",
        "created_at": 10.0,
        "finished_at": 30.0,
        "chunks": [{"submitted_at": 12.0}, {"submitted_at": 11.0}],
    }
    assert views.history(job) == [("pending", 10.0), ("in_progress", 11.0), ("completed", 30.0)]
    assert views.history({"status": "pending", "created_at": 5.0}) == [("pending", 5.0)]


def test_outcome_bars_cover_the_width_in_order() -> None:
    bars = views.outcome_bars({"succeeded": 3, "errored": 1, "expired": 0})
    assert [(b.name, b.count) for b in bars] == [("succeeded", 3), ("errored", 1)]
    assert bars[0].x == 0
    assert bars[1].x == 75
    assert bars[0].width + bars[1].width == 100
    assert views.outcome_bars({}) == []


def test_errors_are_grouped_most_frequent_first_with_a_few_examples() -> None:
    rows = [{"custom_id": f"a{n}", "error": "HTTP 400 bad"} for n in range(5)] + [
        {"custom_id": "b", "error": None}
    ]
    groups = views.group_errors(rows)
    assert [(g.reason, g.count) for g in groups] == [("HTTP 400 bad", 5), ("no answer", 1)]
    assert groups[0].examples == ["a0", "a1", "a2"]


def test_progress_of_a_running_and_a_finished_job() -> None:
    running = {
        "request_count": 10,
        "created_at": 0,
        "chunks": [{"collected_at": 1, "counts": {"succeeded": 4}}, {"counts": {}}],
    }
    assert (views.progress(running).done, views.progress(running).total) == (4, 10)
    finished = {"request_count": 10, "invalid_count": 2, "created_at": 0, "finished_at": 5, "chunks": []}
    assert views.progress(finished).percent == 100


def test_cost_and_duration_read_well() -> None:
    assert views.cost({"cost": {"usd": 0.00012}}) == "$0.0001"
    assert views.cost({"cost": {"usd": None, "unpriced_models": ["x"]}}) == "unpriced"
    assert views.duration({"created_at": 0, "finished_at": 7260}) == "2 h 1 min"


def test_a_jsonl_upload_keeps_file_line_numbers() -> None:
    items, numbers, problems = parse_jsonl(b'{"custom_id": "a"}\n\n{not json\n{"custom_id": "b"}\n')
    assert [i["custom_id"] for i in items] == ["a", "b"]
    assert numbers == [1, 4]
    assert problems[0]["line"] == 3
    assert problems[0]["reason"].startswith("not JSON")
    # the API numbers the items it was sent; the page shows the file's lines
    assert _file_lines([{"line": 2, "reason": "x"}], numbers) == [{"line": 4, "reason": "x"}]


def test_a_response_schema_must_be_a_json_object() -> None:
    assert parse_schema("  ") == (None, None)  # optional
    assert parse_schema('{"type": "object"}') == ({"type": "object"}, None)
    assert "not JSON" in (parse_schema("{type: object}")[1] or "")
    assert "JSON object" in (parse_schema("[1]")[1] or "")
    # a spec problem's loc and msg become the field and the reason the page shows
    refused = [{"loc": ["body", "response_schema"], "type": "invalid_schema", "msg": "needs 'note'"}]
    shown = _file_lines(refused, [1])[0]
    assert (shown["field"], shown["reason"]) == ("response_schema", "needs 'note'")


def test_an_estimate_summary_uses_the_file_lines_and_says_when_unpriced() -> None:
    prepared = Prepared({}, "t.jsonl", {}, [{}, {}], [1, 3])
    estimate = Estimate(
        provider="openai",
        model="gpt-4o-mini",
        accepted=False,
        reason="rejected: 1 invalid line(s)",
        requests=1,
        invalid_lines=1,
        errors=[EstimatedLineError(line=2, field="user_message", reason="Field required")],
        provider_batches=1,
        estimated_input_tokens=12,
        cost=EstimatedCost(input_usd=0.0001, expected_usd=0.0002, ceiling_usd=0.5),
    )
    summary = estimate_summary(prepared, estimate)
    assert summary["errors"][0]["line"] == 3
    assert summary["price"] == "$0.0002 expected, up to $0.5000 (input alone $0.0001)"
    unpriced = EstimatedCost(input_usd=None, expected_usd=None, ceiling_usd=None, unpriced_models=["m"])
    assert estimate_summary(prepared, estimate.model_copy(update={"cost": unpriced}))["price"] == (
        "no price for this model (m)"
    )


def test_the_answer_page_shows_the_parsed_answer_when_there_is_one() -> None:
    assert views.answer_lines(None) == {"line": None, "parsed": None}
    plain = views.answer_lines({"custom_id": "a", "response": {"content": "hi", "parsed": None}})
    assert plain["parsed"] is None
    assert '"custom_id": "a"' in (plain["line"] or "")
    parsed = views.answer_lines({"custom_id": "a", "response": {"parsed": {"label": "<b>"}}})
    assert parsed["parsed"] == '{\n  "label": "<b>"\n}'  # text; the template escapes it
    # While the job runs there is no results.jsonl yet: the results row's parsed answer is shown.
    running = views.answer_lines(None, {"custom_id": "a", "parsed": {"label": "bug"}})
    assert running == {"line": None, "parsed": '{\n  "label": "bug"\n}'}


def test_the_console_command_binds_loopback_and_needs_an_api(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from batch_gateway_local.cli import commands as cli

    monkeypatch.delenv("BATCH_GATEWAY_ENDPOINT", raising=False)
    args = cli._parser().parse_args(["console"])
    assert (args.host, args.port) == ("127.0.0.1", 8080)
    up = cli._parser().parse_args(["local", "up", "--console", "--console-port", "9000"])
    assert (up.console, up.console_port, up.demo_jobs) == (True, 9000, False)
    assert cli.main(["console"]) == 2
    assert "give --endpoint URL" in capsys.readouterr().err
