"""The HTTP API's handler on the offline stack, driven with the API Gateway (REST, v1) events in events/.

Every endpoint, good and bad requests: the real ApiFunction runs through lambda.invoke as API
Gateway's Lambda proxy integration would call it.
"""

from __future__ import annotations

import base64
import copy
import json
import re
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import boto3
import pytest

from batch_gateway_local.stack.local_gateway import LocalGateway, LocalOptions
from tests.stack_helpers import event


@pytest.fixture(scope="module")
def gateway() -> Iterator[LocalGateway]:
    with LocalGateway(LocalOptions(chunk_max_items=4)) as local:
        yield local


class Answer:
    def __init__(self, payload: dict[str, Any]) -> None:
        self.status: int = payload["statusCode"]
        headers = dict(payload.get("headers") or {})
        for name, values in (payload.get("multiValueHeaders") or {}).items():
            headers[name] = values[-1]
        self.headers = headers
        body = payload.get("body") or ""
        self.json: Any = json.loads(
            base64.b64decode(body) if payload.get("isBase64Encoded") else body or "null"
        )

    def __repr__(self) -> str:
        return f"Answer({self.status}, {self.json!r})"


def invoke(gateway: LocalGateway, request: dict[str, Any]) -> Answer:
    assert gateway.stack is not None
    response = boto3.client("lambda").invoke(
        FunctionName=gateway.stack.functions["ApiFunction"], Payload=json.dumps(request).encode()
    )
    payload = json.loads(response["Payload"].read())
    assert "FunctionError" not in response, payload
    answer = Answer(payload)
    assert "Traceback" not in json.dumps(answer.json)
    return answer


def post_batches(gateway: LocalGateway, body: Any, key: str | None = None, raw: str | None = None) -> Answer:
    request = event("api_post_batches.json", IDEMPOTENCY_KEY=key or "unused")
    if key is None:
        del request["headers"]["Idempotency-Key"]
        del request["multiValueHeaders"]["Idempotency-Key"]
    request["body"] = raw if raw is not None else json.dumps(body)
    return invoke(gateway, request)


def items(count: int, prefix: str = "item") -> list[dict[str, Any]]:
    return [{"custom_id": f"{prefix}-{n}", "user_message": f"question {n}"} for n in range(1, count + 1)]


def spec(**overrides: Any) -> dict[str, Any]:
    return {"provider": "openai", "model": "gpt-4o-mini", **overrides}


def get(
    gateway: LocalGateway, name: str, job_id: str = "none", query: dict[str, str] | None = None
) -> Answer:
    request = event(name, JOB=job_id)
    if query is not None:
        request["queryStringParameters"] = query or None
        request["multiValueQueryStringParameters"] = {k: [v] for k, v in query.items()} or None
    return invoke(gateway, request)


@pytest.fixture(scope="module")
def finished(gateway: LocalGateway) -> dict[str, Any]:
    """A job submitted with the sample event (3 items, one with an odd custom_id) and run to the end."""
    answer = invoke(gateway, event("api_post_batches.json", IDEMPOTENCY_KEY="sample-event-job"))
    assert answer.status == 202, answer
    gateway.wait(answer.json["job_id"], timeout_s=120)
    return dict(answer.json)


# ------------------------------------------------------------------ POST /batches
def test_the_sample_submission_is_accepted_and_runs_through_the_s3_intake(
    gateway: LocalGateway, finished: dict[str, Any]
) -> None:
    job_id = finished["job_id"]
    assert finished["status"] in ("pending", "in_progress")
    assert finished["request_count"] == 3
    assert finished["links"]["self"] == (
        f"https://abcdef1234.execute-api.us-east-1.amazonaws.com/v1/batches/{job_id}"
    )
    key = finished["source"].split("/", 3)[3]
    assert key.startswith("inbox/api/idem-")
    head = boto3.client("s3").head_object(Bucket=gateway.bucket, Key=key)
    assert head["Metadata"]["provider"] == "openai"
    assert base64.b64decode(head["Metadata"]["system-prompt-b64"]).decode() == "Answer in one word."
    job = gateway.progress(job_id).job
    assert job is not None
    assert job.status.value == "completed"
    assert job.counts.succeeded == 3


def test_the_202_carries_a_location_header(gateway: LocalGateway) -> None:
    answer = post_batches(gateway, spec(items=items(2, "loc")))
    assert answer.status == 202
    assert answer.headers["Location"] == answer.json["links"]["self"]


def test_the_same_idempotency_key_gives_the_same_job_and_no_second_batch(
    gateway: LocalGateway, finished: dict[str, Any]
) -> None:
    again = invoke(gateway, event("api_post_batches.json", IDEMPOTENCY_KEY="sample-event-job"))

    assert again.status == 202
    assert again.json["job_id"] == finished["job_id"]
    assert again.headers.get("Idempotent-Replayed") == "true"
    assert_submitted_once(gateway, finished)


def assert_submitted_once(gateway: LocalGateway, job: dict[str, Any]) -> None:
    """One inbox object version (so one job) and one provider batch for the job."""
    key = job["source"].split("/", 3)[3]
    versions = boto3.client("s3").list_object_versions(Bucket=gateway.bucket, Prefix=key)["Versions"]
    assert [v["Key"] for v in versions] == [key]
    chunks = gateway.progress(job["job_id"]).chunks
    batches = [sorted(k for k in chunk if re.fullmatch(r"batch_r\d+_a\d+", k)) for chunk in chunks]
    assert batches == [["batch_r0_a0"]]


def test_the_same_idempotency_key_with_another_body_is_a_conflict(gateway: LocalGateway) -> None:
    first = post_batches(gateway, spec(items=items(2, "idem")), key="reused-key")
    assert first.status == 202

    second = post_batches(gateway, spec(model="gpt-4o", items=items(2, "idem")), key="reused-key")

    assert second.status == 409
    assert second.json["error"] == "idempotency_key_reused"


def test_another_caller_may_use_the_same_idempotency_key(gateway: LocalGateway) -> None:
    first = post_batches(gateway, spec(items=items(1, "scoped")), key="shared-key")
    request = event("api_post_batches.json", IDEMPOTENCY_KEY="shared-key")
    request["requestContext"]["identity"]["userArn"] = "arn:aws:iam::123456789012:user/someone-else"
    request["body"] = json.dumps(spec(model="gpt-4o", items=items(1, "scoped")))

    second = invoke(gateway, request)

    assert (first.status, second.status) == (202, 202)
    assert first.json["job_id"] != second.json["job_id"]


def test_malformed_json_is_a_400(gateway: LocalGateway) -> None:
    answer = post_batches(gateway, None, raw='{"provider": "openai", "items": [')
    assert answer.status == 400
    assert answer.json["error"] == "malformed_json"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"model": "m", "items": [{"custom_id": "a", "user_message": "x"}]}, "provider"),
        (
            {"provider": "vertex", "model": "m", "items": [{"custom_id": "a", "user_message": "x"}]},
            "provider",
        ),
        ({"provider": "openai", "model": "m"}, "body"),
        ({"provider": "openai", "model": "m", "items": [], "source": "s3://b/k"}, "body"),
        (
            {
                "provider": "openai",
                "model": "m",
                "items": [{"custom_id": "a", "user_message": "x"}],
                "colour": 1,
            },
            "colour",
        ),
        (
            {"provider": "openai", "model": "m", "on_invalid": "ignore", "items": [{"custom_id": "a"}]},
            "on_invalid",
        ),
    ],
)
def test_a_request_that_does_not_match_the_schema_is_a_422_naming_the_field(
    gateway: LocalGateway, body: dict[str, Any], field: str
) -> None:
    answer = post_batches(gateway, body)
    assert answer.status == 422, answer
    assert answer.json["error"] == "validation_error"
    assert any(field in detail["loc"] for detail in answer.json["details"]), answer.json


def test_invalid_items_are_a_422_with_line_level_details_and_no_job(gateway: LocalGateway) -> None:
    before = len(
        list(
            boto3.client("s3").list_objects_v2(Bucket=gateway.bucket, Prefix="inbox/api/").get("Contents", [])
        )
    )
    bad = [
        {"custom_id": "ok-1", "user_message": "fine"},
        {"custom_id": "hot", "user_message": "x", "temperature": 3.5},
        {"custom_id": "", "user_message": "x"},
        "not an object",
        {"custom_id": "ok-1", "user_message": "again"},
        {"custom_id": "own", "user_message": "x", "extra": {"messages": []}},
    ]

    answer = post_batches(gateway, spec(items=bad))

    assert answer.status == 422
    assert answer.json["error"] == "invalid_items"
    by_line = {(d["line"], d.get("field")) for d in answer.json["details"]}
    assert {(2, "temperature"), (3, "custom_id"), (4, None), (5, "custom_id"), (6, "extra")} <= by_line
    temperature = next(d for d in answer.json["details"] if d["line"] == 2)
    assert "use a number from 0 to 2" in temperature["reason"]
    after = len(
        list(
            boto3.client("s3").list_objects_v2(Bucket=gateway.bucket, Prefix="inbox/api/").get("Contents", [])
        )
    )
    assert after == before


def test_with_on_invalid_skip_the_valid_items_run_and_invalid_ones_get_error_results(
    gateway: LocalGateway,
) -> None:
    answer = post_batches(
        gateway,
        spec(
            on_invalid="skip",
            items=[{"custom_id": "good", "user_message": "hi"}, {"custom_id": "bad", "user_message": ""}],
        ),
    )
    assert answer.status == 202, answer
    job = gateway.wait(answer.json["job_id"], timeout_s=120)
    assert (job.counts.succeeded, job.counts.invalid) == (1, 1)


def test_duplicate_custom_ids_are_refused_even_with_skip(gateway: LocalGateway) -> None:
    answer = post_batches(gateway, spec(on_invalid="skip", items=items(2, "dup") + items(1, "dup")))
    assert answer.status == 422
    assert "duplicate custom_id" in answer.json["message"]


def test_more_items_than_the_cap_is_a_413(gateway: LocalGateway) -> None:
    answer = post_batches(
        gateway, spec(items=[{"custom_id": str(n), "user_message": "x"} for n in range(5001)])
    )
    assert answer.status == 413
    assert answer.json["error"] == "payload_too_large"


def test_a_body_over_5_mb_is_a_413(gateway: LocalGateway) -> None:
    big = [{"custom_id": f"b{n}", "user_message": "x" * 1_100_000} for n in range(5)]
    answer = post_batches(gateway, spec(items=big))
    assert answer.status == 413
    assert "source" in answer.json["message"]


def test_a_system_prompt_too_long_for_object_metadata_is_a_422(gateway: LocalGateway) -> None:
    answer = post_batches(gateway, spec(system_prompt="é" * 700, items=items(1)))
    assert answer.status == 422
    assert "bytes of UTF-8" in answer.json["message"]


def test_a_non_json_content_type_is_a_415(gateway: LocalGateway) -> None:
    request = event("api_post_batches.json", IDEMPOTENCY_KEY="k")
    request["headers"]["Content-Type"] = "text/csv"
    request["multiValueHeaders"]["Content-Type"] = ["text/csv"]
    answer = invoke(gateway, request)
    assert answer.status == 415


def test_a_source_under_uploads_is_copied_into_the_inbox_and_runs(gateway: LocalGateway) -> None:
    body = "".join(json.dumps(i) + "\n" for i in items(5, "src"))
    boto3.client("s3").put_object(Bucket=gateway.bucket, Key="uploads/tickets.jsonl", Body=body.encode())

    answer = post_batches(
        gateway, spec(source=f"s3://{gateway.bucket}/uploads/tickets.jsonl"), key="source-1"
    )
    again = post_batches(gateway, spec(source=f"s3://{gateway.bucket}/uploads/tickets.jsonl"), key="source-1")

    assert answer.status == 202, answer
    assert again.json["job_id"] == answer.json["job_id"]
    job = gateway.wait(answer.json["job_id"], timeout_s=120)
    assert job.counts.succeeded == 5
    assert job.chunk_count == 2  # chunk_max_items=4


@pytest.mark.parametrize(
    ("source", "status", "code"),
    [
        ("s3://someone-elses-bucket/data.jsonl", 403, "source_not_allowed"),
        ("s3://BUCKET/results/x/results.jsonl", 403, "source_not_allowed"),
        ("s3://BUCKET/uploads/missing.jsonl", 422, "source_not_found"),
    ],
)
def test_a_source_the_api_may_not_read_is_refused(
    gateway: LocalGateway, source: str, status: int, code: str
) -> None:
    answer = post_batches(gateway, spec(source=source.replace("BUCKET", gateway.bucket)))
    assert (answer.status, answer.json["error"]) == (status, code)


def test_a_bad_idempotency_key_header_is_a_422(gateway: LocalGateway) -> None:
    answer = post_batches(gateway, spec(items=items(1)), key="has spaces in it")
    assert answer.status == 422


# ------------------------------------------------------------------ GET /batches
def test_jobs_are_listed_newest_first_with_opaque_pagination(
    gateway: LocalGateway, finished: dict[str, Any]
) -> None:
    seen: list[dict[str, Any]] = []
    query: dict[str, str] = {"limit": "2"}
    while True:
        page = get(gateway, "api_get_batches.json", query=query)
        assert page.status == 200, page
        assert len(page.json["jobs"]) <= 2
        seen.extend(page.json["jobs"])
        if not page.json["next_token"]:
            break
        query = {"limit": "2", "next_token": page.json["next_token"]}
    created = [job["created_at"] for job in seen]
    assert created == sorted(created, reverse=True)
    assert len({job["job_id"] for job in seen}) == len(seen)
    assert finished["job_id"] in {job["job_id"] for job in seen}


def test_jobs_can_be_filtered_by_status(gateway: LocalGateway, finished: dict[str, Any]) -> None:
    page = get(gateway, "api_get_batches.json", query={"status": "completed", "limit": "100"})
    assert page.status == 200
    assert page.json["jobs"]
    assert {job["status"] for job in page.json["jobs"]} == {"completed"}
    failed = get(gateway, "api_get_batches.json", query={"status": "expired"})
    assert failed.json["jobs"] == []


def _token(document: Any) -> str:
    return base64.urlsafe_b64encode(json.dumps(document).encode()).decode().rstrip("=")


@pytest.mark.parametrize(
    "token",
    [
        "not-a-token!",
        "%%%",
        _token("just a string"),
        _token({"v": 1, "q": "jobs:*", "k": {"job_id": "x"}}),
        _token(
            {
                "v": 1,
                "q": "jobs:completed",
                "k": {"job_id": "x", "sk": "JOB", "record_type": "JOB", "created_at": 1},
            }
        ),
        _token(
            {
                "v": 1,
                "q": "jobs:*",
                "k": {"job_id": "x", "sk": "CHUNK#0001", "record_type": "JOB", "created_at": 1},
            }
        ),
        _token(
            {"v": 2, "q": "jobs:*", "k": {"job_id": "x", "sk": "JOB", "record_type": "JOB", "created_at": 1}}
        ),
        _token(
            {
                "v": 1,
                "q": "jobs:*",
                "k": {"job_id": "x", "sk": "JOB", "record_type": "JOB", "created_at": "1"},
            }
        ),
    ],
)
def test_a_malformed_or_forged_list_token_is_a_400(gateway: LocalGateway, token: str) -> None:
    answer = get(gateway, "api_get_batches.json", query={"next_token": token})
    assert answer.status == 400, answer
    assert answer.json["error"] == "invalid_next_token"


def test_a_list_limit_out_of_range_is_a_422(gateway: LocalGateway) -> None:
    assert get(gateway, "api_get_batches.json", query={"limit": "0"}).status == 422
    assert get(gateway, "api_get_batches.json", query={"limit": "1001"}).status == 422
    assert get(gateway, "api_get_batches.json", query={"status": "sleeping"}).status == 422


# ------------------------------------------------------------------ GET /batches/{job_id}
def test_a_job_shows_counts_usage_and_each_chunks_provider_batches(
    gateway: LocalGateway, finished: dict[str, Any]
) -> None:
    answer = get(gateway, "api_get_batch.json", finished["job_id"])

    assert answer.status == 200
    job = answer.json
    assert job["status"] == "completed"
    assert job["counts"]["succeeded"] == 3
    assert job["usage"]["total_tokens"] > 0
    assert job["retry_rounds"] == []
    assert job["finished_at"] >= job["created_at"]
    chunk = job["chunks"][0]
    assert chunk["provider_batch_id"] == chunk["provider_batches"][0]["id"]
    assert chunk["provider_batches"][0]["round"] == 0
    assert chunk["status"] == "completed"
    assert chunk["submitted_at"]
    assert chunk["collected_at"]


def test_an_unknown_job_is_a_404(gateway: LocalGateway) -> None:
    for name in ("api_get_batch.json", "api_get_results.json", "api_post_cancel.json"):
        answer = get(gateway, name, "no-such-job")
        assert (answer.status, answer.json["error"]) == (404, "not_found"), name


def test_a_malformed_job_id_is_a_422(gateway: LocalGateway) -> None:
    request = event("api_get_batch.json", JOB="x")
    request["path"] = "/batches/bad%21id"
    assert invoke(gateway, request).status == 422


def test_an_unknown_route_is_a_404_in_the_error_shape(gateway: LocalGateway) -> None:
    request = event("api_get_batch.json", JOB="x")
    request["path"] = "/nothing/here"
    answer = invoke(gateway, request)
    assert (answer.status, answer.json["error"]) == (404, "not_found")


# ------------------------------------------------------------------ results
def test_results_are_paginated_rows(gateway: LocalGateway, finished: dict[str, Any]) -> None:
    rows: list[dict[str, Any]] = []
    query = {"limit": "2"}
    while True:
        page = get(gateway, "api_get_results.json", finished["job_id"], query)
        assert page.status == 200, page
        rows.extend(page.json["results"])
        if not page.json["next_token"]:
            break
        query = {"limit": "2", "next_token": page.json["next_token"]}
    assert sorted(r["custom_id"] for r in rows) == ["ticket 003/é", "ticket-001", "ticket-002"]
    assert all(r["ok"] and r["content"] for r in rows)


def test_only_errors_filters_the_rows(gateway: LocalGateway) -> None:
    batch = [
        {"custom_id": "fine", "user_message": "hello"},
        {"custom_id": "broken", "user_message": "fail please [[emulator:error-400]]"},
    ]
    answer = post_batches(gateway, spec(items=batch))
    gateway.wait(answer.json["job_id"], timeout_s=120)

    page = get(gateway, "api_get_results.json", answer.json["job_id"], {"only": "errors"})

    assert [row["custom_id"] for row in page.json["results"]] == ["broken"]
    assert "HTTP 400" in page.json["results"][0]["error"]


def test_a_results_token_of_another_job_or_listing_is_a_400(
    gateway: LocalGateway, finished: dict[str, Any]
) -> None:
    page = get(gateway, "api_get_results.json", finished["job_id"], {"limit": "1"})
    token = page.json["next_token"]
    other = post_batches(gateway, spec(items=items(1, "other")))

    for job_id, query in (
        (other.json["job_id"], {"next_token": token}),
        (finished["job_id"], {"next_token": token, "only": "errors"}),
        (finished["job_id"], {"next_token": token[:-3]}),
    ):
        answer = get(gateway, "api_get_results.json", job_id, query)
        assert (answer.status, answer.json["error"]) == (400, "invalid_next_token"), query


def test_format_url_gives_a_presigned_link_to_results_jsonl(
    gateway: LocalGateway, finished: dict[str, Any]
) -> None:
    answer = get(gateway, "api_get_results.json", finished["job_id"], {"format": "url"})
    assert answer.status == 200
    assert answer.json["url"].startswith(f"https://{gateway.bucket}.s3.amazonaws.com/results/")
    assert "X-Amz-Signature=" in answer.json["url"]
    assert answer.json["results_uri"].endswith("/results.jsonl")


def test_format_url_before_the_job_has_results_is_a_409(gateway: LocalGateway) -> None:
    # A row as the API writes it before intake runs (here: no upload, so nothing ever runs).
    from batch_gateway.intake.spec import new_job
    from batch_gateway.models import JobSpec
    from batch_gateway.storage.jobs import JobsRepository

    JobsRepository(gateway.outputs["JobsTableName"]).create_job(
        new_job("pending-job", JobSpec(provider="openai", model="m"), "s3://b/k")
    )
    answer = get(gateway, "api_get_results.json", "pending-job", {"format": "url"})
    assert (answer.status, answer.json["error"]) == (409, "results_not_ready")


def test_one_result_by_url_encoded_custom_id(gateway: LocalGateway, finished: dict[str, Any]) -> None:
    answer = get(gateway, "api_get_result.json", finished["job_id"])
    assert answer.status == 200, answer
    assert answer.json["custom_id"] == "ticket 003/é"
    assert answer.json["line"] == 3

    request = event("api_get_result.json", JOB=finished["job_id"])
    request["path"] = f"/batches/{finished['job_id']}/results/{quote('nobody', safe='')}"
    assert invoke(gateway, request).status == 404


# ------------------------------------------------------------------ cancel
def test_cancel_is_a_202_and_idempotent(gateway: LocalGateway) -> None:
    gateway.emulator.scenario = "slow"
    try:
        answer = post_batches(gateway, spec(items=items(3, "cancel")))
        job_id = answer.json["job_id"]
        first = get(gateway, "api_post_cancel.json", job_id)
        second = get(gateway, "api_post_cancel.json", job_id)
    finally:
        gateway.emulator.scenario = "ok"
    assert (first.status, second.status) == (202, 202)
    assert first.json["cancel_requested"] is True
    job = gateway.wait(job_id, timeout_s=120)
    assert job.status.value == "cancelled"
    after = get(gateway, "api_post_cancel.json", job_id)
    assert (after.status, after.json["status"]) == (202, "cancelled")


def test_an_unexpected_error_is_a_500_without_a_stack_trace(
    gateway: LocalGateway, finished: dict[str, Any]
) -> None:
    request = copy.deepcopy(event("api_get_batch.json", JOB=finished["job_id"]))
    table = gateway.outputs["JobsTableName"]
    boto3.resource("dynamodb").Table(table).update_item(
        Key={"job_id": finished["job_id"], "sk": "JOB"},
        UpdateExpression="SET #s = :s",
        ExpressionAttributeNames={"#s": "status"},
        ExpressionAttributeValues={":s": "not-a-status"},
    )
    try:
        answer = invoke(gateway, request)
    finally:
        boto3.resource("dynamodb").Table(table).update_item(
            Key={"job_id": finished["job_id"], "sk": "JOB"},
            UpdateExpression="SET #s = :s",
            ExpressionAttributeNames={"#s": "status"},
            ExpressionAttributeValues={":s": "completed"},
        )
    assert answer.status == 500
    assert answer.json["error"] == "internal_error"
    assert "Traceback" not in answer.json["message"]


def test_the_api_logs_a_metric_but_no_prompt_or_credential(
    gateway: LocalGateway, finished: dict[str, Any]
) -> None:
    assert gateway.stack is not None
    logs = gateway.stack.function_logs("ApiFunction")
    assert "ApiBatchesSubmitted" in logs
    for private in ("my parcel never arrived", "Answer in one word", "AKIAIOSFODNN7EXAMPLE"):
        assert private not in logs


def test_inline_items_in_a_providers_own_format_are_checked_translated_and_run(gateway: LocalGateway) -> None:
    lines = [
        {
            "custom_id": "a-1",
            "params": {
                "model": "claude-x",
                "max_tokens": 50,
                "messages": [{"role": "user", "content": "hi"}],
            },
        },
        {
            "custom_id": "a-2",
            "params": {"max_tokens": 50, "top_k": 3, "messages": [{"role": "user", "content": "hi"}]},
        },
    ]

    refused = post_batches(gateway, spec(items=lines))
    answer = post_batches(gateway, spec(items=lines, on_invalid="skip", format="anthropic"))

    assert refused.status == 422
    (detail,) = refused.json["details"]
    assert (detail["line"], detail["field"]) == (2, "params.top_k")
    assert "no equivalent on openai" in detail["reason"]
    assert answer.status == 202, answer
    job = gateway.wait(answer.json["job_id"], timeout_s=120)
    assert (job.counts.succeeded, job.counts.invalid) == (1, 1)


def test_a_csv_format_needs_a_source_and_a_template(gateway: LocalGateway) -> None:
    inline = post_batches(gateway, spec(items=items(1), format="csv", template="Q: {q}"))
    no_template = post_batches(gateway, spec(source=f"s3://{gateway.bucket}/uploads/t.csv", format="csv"))
    assert (inline.status, no_template.status) == (422, 422)
    assert "source" in inline.json["message"]
    assert "template" in no_template.json["message"]
