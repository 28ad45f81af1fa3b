"""provider_custom_id: user ids that are safe everywhere pass unchanged, others become bg-<line>."""

from __future__ import annotations

import re

import pytest

from batch_gateway.providers.custom_ids import RESERVED_PREFIX, is_safe_custom_id, provider_custom_id
from batch_gateway.providers.registry import get_provider
from batch_gateway.providers.requests import request_builder_for

ANTHROPIC_ID = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")


@pytest.mark.parametrize(
    "custom_id", ["a", "req-1", "Request_42", "x" * 64, "ABC-def_123", "bg", "b-g-1", "BG-1"]
)
def test_safe_ids_pass_unchanged(custom_id: str) -> None:
    assert provider_custom_id(custom_id, 7) == custom_id


@pytest.mark.parametrize(
    "custom_id",
    [
        "order.17",  # dot
        "my request",  # space
        "café",  # unicode letter
        "请求-1",  # non-Latin
        "x" * 65,  # one over Anthropic's limit
        "a/b",
        "line\n",
        "emoji-🙂",
        "bg-1",  # reserved prefix, even though it matches the pattern
        "bg-anything",
    ],
)
def test_unsafe_or_reserved_ids_become_line_ids(custom_id: str) -> None:
    assert provider_custom_id(custom_id, 12) == "bg-12"


def test_line_ids_are_unique_and_cannot_collide_with_user_ids() -> None:
    ids = [provider_custom_id("not safe!", line) for line in range(1, 1001)]
    assert len(set(ids)) == 1000
    assert all(ANTHROPIC_ID.match(i) for i in ids)
    # A user id can never look like a generated one.
    assert not is_safe_custom_id(f"{RESERVED_PREFIX}5")


def test_line_must_be_one_based() -> None:
    with pytest.raises(ValueError, match="1-based"):
        provider_custom_id("a.b", 0)


@pytest.mark.parametrize("name", ["openai", "anthropic"])
def test_same_rule_for_every_provider(name: str) -> None:
    assert get_provider(name, "key").provider_custom_id("a.b", 3) == "bg-3"
    assert request_builder_for(name).provider_custom_id("ok_id", 3) == "ok_id"
