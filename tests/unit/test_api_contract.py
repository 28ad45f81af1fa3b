"""The API's contract: openapi.json matches the code, the template routes match openapi.json, and the
pieces of the API that need no AWS (pagination tokens, item checks, paging over a query)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from batch_gateway.api.errors import ApiError
from batch_gateway.api.submission_checks import check_items
from batch_gateway.api.tokens import decode_token, encode_token
from batch_gateway.models import JobSpec
from batch_gateway.storage.dynamo import FILTERED_QUERY_MAX_READS, query_page
from batch_gateway_local.api_front.routes import ApiDefinition
from batch_gateway_local.openapi import OPENAPI_PATH, document
from batch_gateway_local.stack.app_files import PROJECT_ROOT, TEMPLATE


def test_openapi_json_is_generated_from_the_code() -> None:
    assert OPENAPI_PATH.read_text() == document(), "openapi.json is out of date: run `make openapi`"


def test_the_template_routes_are_the_openapi_routes() -> None:
    spec = json.loads(OPENAPI_PATH.read_text())
    documented = {(path, method.upper()) for path, ops in spec["paths"].items() for method in ops}
    api = ApiDefinition.from_template(TEMPLATE)
    # /webhooks/* are the providers' contracts (OpenAI's webhook format), not this API's: not documented.
    deployed = {
        (route.resource, method)
        for route in api.routes
        for method in route.methods
        if not route.resource.startswith("/webhooks/")
    }
    assert deployed == documented


def test_every_operation_documents_its_errors_in_the_error_shape() -> None:
    spec = json.loads(OPENAPI_PATH.read_text())
    for path, operations in spec["paths"].items():
        for method, operation in operations.items():
            for status, response in operation["responses"].items():
                if int(status) >= 400:
                    schema = response["content"]["application/json"]["schema"]
                    assert schema == {"$ref": "#/components/schemas/ErrorBody"}, (path, method, status)
            assert {"403", "422", "429"} <= set(operation["responses"]), (path, method)


def test_the_gateway_responses_answer_in_the_error_shape() -> None:
    api = ApiDefinition.from_template(TEMPLATE)
    for kind in ("MISSING_AUTHENTICATION_TOKEN", "INVALID_API_KEY", "THROTTLED", "REQUEST_TOO_LARGE"):
        status, _, body = api.gateway_response(kind)
        document = json.loads(body)
        assert set(document) == {"error", "message"}, kind
        assert status in (403, 413, 429)


def test_the_readme_documents_every_endpoint() -> None:
    # The endpoint table moved from the README to the HTTP API page.
    page = (PROJECT_ROOT / "docs" / "http-api-and-cli.md").read_text()
    spec = json.loads(OPENAPI_PATH.read_text())
    for path, operations in spec["paths"].items():
        for method in operations:
            assert f"`{method.upper()} {path}`" in page, (method, path)


# ------------------------------------------------------------------ tokens
FIELDS: dict[str, type | tuple[type, ...]] = {"job_id": str, "custom_id": str}


def test_a_token_round_trips_within_its_listing() -> None:
    token = encode_token("results:j:*", {"job_id": "j", "custom_id": "a b/é"})
    assert decode_token(token, "results:j:*", FIELDS) == {"job_id": "j", "custom_id": "a b/é"}


@pytest.mark.parametrize(
    ("token", "scope"),
    [
        (encode_token("results:j:*", {"job_id": "j", "custom_id": "a"}), "results:k:*"),
        (encode_token("results:j:*", {"job_id": "j", "custom_id": "a"}), "results:j:errors"),
        (encode_token("results:j:*", {"job_id": "j"}), "results:j:*"),
        (encode_token("results:j:*", {"job_id": "j", "custom_id": 5}), "results:j:*"),
        (encode_token("results:j:*", {"job_id": "j", "custom_id": ""}), "results:j:*"),
        (encode_token("results:j:*", {"job_id": "j", "custom_id": "x" * 1025}), "results:j:*"),
        ("!!!", "results:j:*"),
        ("", "results:j:*"),
        ("bm90IGpzb24", "results:j:*"),
    ],
)
def test_a_foreign_or_forged_token_is_refused(token: str, scope: str) -> None:
    with pytest.raises(ApiError) as refused:
        decode_token(token, scope, FIELDS)
    assert (refused.value.status, refused.value.code) == (400, "invalid_next_token")


def test_a_non_finite_number_in_a_token_is_refused() -> None:
    token = encode_token("jobs:*", {"created_at": float("nan")})
    with pytest.raises(ApiError):
        decode_token(token, "jobs:*", {"created_at": (int, float)})


# ------------------------------------------------------------------ item checks
def test_items_are_checked_with_the_intakes_rules() -> None:
    errors, invalid, duplicate = check_items(
        [
            {"custom_id": "a", "user_message": "fine"},
            {"custom_id": "b", "user_message": "x", "max_tokens": -1},
            {"custom_id": "a", "user_message": "again"},
            ["not", "an", "object"],
            {"custom_id": "c", "user_message": "x", "extra": {"stream": True}},
        ],
        JobSpec(provider="anthropic", model="m"),
    )
    assert (invalid, duplicate) == (4, True)
    assert [(e.line, e.field) for e in errors] == [
        (2, "max_tokens"),
        (3, "custom_id"),
        (4, None),
        (5, "extra"),
    ]
    assert "first used on item 1" in errors[1].reason


# ------------------------------------------------------------------ paging over a query
class FakeTable:
    """A DynamoDB table's query over sorted items: Limit, FilterExpression-like predicate, keys."""

    def __init__(self, items: list[dict[str, Any]], keep: Any = None) -> None:
        self.items, self.keep, self.reads = items, keep, 0

    def query(self, Limit: int, ExclusiveStartKey: dict[str, Any] | None = None, **_: Any) -> dict[str, Any]:  # noqa: N803
        self.reads += 1
        start = 0
        if ExclusiveStartKey:
            start = next(i for i, item in enumerate(self.items) if item["k"] == ExclusiveStartKey["k"]) + 1
        window = self.items[start : start + Limit]
        page: dict[str, Any] = {"Items": [i for i in window if self.keep is None or self.keep(i)]}
        if start + Limit < len(self.items):
            page["LastEvaluatedKey"] = {"k": window[-1]["k"]}
        return page


def _walk(table: FakeTable, limit: int, filtered: bool) -> list[list[int]]:
    pages, key = [], None
    while True:
        kwargs = {"ExclusiveStartKey": key} if key else {}
        items, key = query_page(table, kwargs, limit, ("k",), filtered=filtered)  # type: ignore[arg-type]
        pages.append([item["k"] for item in items])
        if key is None:
            return pages


def test_unfiltered_pages_cover_every_item_once() -> None:
    table = FakeTable([{"k": n} for n in range(10)])
    pages = _walk(table, 4, filtered=False)
    assert [k for page in pages for k in page] == list(range(10))
    assert all(len(page) <= 4 for page in pages)


def test_filtered_pages_fill_up_and_skip_nothing() -> None:
    table = FakeTable([{"k": n} for n in range(1000)], keep=lambda item: item["k"] % 7 == 0)
    pages = _walk(table, 5, filtered=True)
    assert [k for page in pages for k in page] == [n for n in range(1000) if n % 7 == 0]
    assert all(len(page) == 5 for page in pages[:-1])


def test_a_filter_that_matches_little_returns_a_short_page_and_a_key_instead_of_reading_everything() -> None:
    table = FakeTable([{"k": n} for n in range(5000)], keep=lambda item: item["k"] == 4999)
    items, key = query_page(table, {}, 10, ("k",), filtered=True)  # type: ignore[arg-type]
    assert items == []
    assert key is not None
    assert table.reads == FILTERED_QUERY_MAX_READS
