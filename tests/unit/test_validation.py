"""The line checks (``intake.checks``): a reference-library line is accepted, each bad field is named
with a reason that says what to do."""

import json

import pytest

from batch_gateway.intake.checks import LineError, parse_item
from batch_gateway.models import BatchItem


def errors_of(obj: object, line: int = 7) -> list[LineError]:
    raw = obj if isinstance(obj, bytes) else json.dumps(obj).encode()
    result = parse_item(line, raw)
    assert isinstance(result, list), f"expected errors, got {result!r}"
    return result


def test_a_reference_library_line_is_accepted_with_its_defaults() -> None:
    item = parse_item(1, b'{"custom_id": "a", "user_message": "hi"}')
    assert item == BatchItem(custom_id="a", user_message="hi", temperature=0.0, max_tokens=4096, extra={})


@pytest.mark.parametrize(
    ("obj", "field", "words"),
    [
        ({"custom_id": "", "user_message": "x"}, "custom_id", "must not be empty"),
        ({"user_message": "x"}, "custom_id", "is required"),
        ({"custom_id": "a", "user_message": ""}, "user_message", "must not be empty"),
        (
            {"custom_id": "a", "user_message": "x", "temperature": 2.5},
            "temperature",
            "less than or equal to 2",
        ),
        ({"custom_id": "a", "user_message": "x", "max_tokens": 0}, "max_tokens", "greater than 0"),
        ({"custom_id": "a", "user_message": "x", "max_tokens": "many"}, "max_tokens", "valid integer"),
        ({"custom_id": "a", "user_message": "x", "prompt": "y"}, "prompt", "unknown field 'prompt'"),
    ],
)
def test_each_invalid_field_is_named_with_a_reason(obj: dict[str, object], field: str, words: str) -> None:
    errors = errors_of(obj)
    assert [e.field for e in errors] == [field]
    assert words in errors[0].reason
    assert errors[0].line == 7


def test_an_error_names_the_item_when_its_custom_id_is_readable() -> None:
    assert errors_of({"custom_id": "order-9", "user_message": ""})[0].custom_id == "order-9"


def test_malformed_json_says_each_line_must_be_one_object() -> None:
    (error,) = errors_of(b'{"custom_id": "a", ')
    assert "not valid JSON" in error.reason
    assert error.custom_id is None


def test_a_json_array_line_is_explained() -> None:
    (error,) = errors_of(b"[1, 2]")
    assert "JSON object" in error.reason


def test_a_custom_id_too_long_for_the_results_table_is_refused() -> None:
    (error,) = errors_of({"custom_id": "x" * 1025, "user_message": "hi"})
    assert error.field == "custom_id"
    assert "1024 bytes" in error.reason
