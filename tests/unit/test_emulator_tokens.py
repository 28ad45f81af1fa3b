"""The emulator's own token count: tokenizer-like, about 4 characters a token for English prose."""

from __future__ import annotations

from batch_gateway_local.emulator.tokens import (
    REPLY_PRIMING,
    TOKENS_PER_MESSAGE,
    chat_prompt_tokens,
    count_tokens,
    messages_input_tokens,
)

PROSE = (
    "Our users run classification and extraction over millions of records. Today the orchestration "
    "is proven on at most ten chunks, and at real sizes it breaks on hard quotas. A chunk that does "
    "not fit waits, cheaply, and is never failed for it."
)


def test_english_prose_is_about_four_characters_a_token() -> None:
    assert 3.5 <= len(PROSE) / count_tokens(PROSE) <= 4.8


def test_pieces_count_as_a_tokenizer_splits_them() -> None:
    assert count_tokens("cat") == 1
    assert count_tokens("internationalization") == 3  # long words split into pieces
    assert count_tokens("1234567") == 3  # digits in groups of three
    assert count_tokens("!!") == 1
    assert count_tokens("日本語") == 3  # one a character outside Latin script
    assert count_tokens("") == 0


def test_a_prompt_counts_every_message_its_overhead_and_its_tools() -> None:
    body = {
        "model": "m",
        "messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "hi"}],
    }
    plain = chat_prompt_tokens(body)
    assert plain == count_tokens("Be brief.") + count_tokens("hi") + 2 * TOKENS_PER_MESSAGE + REPLY_PRIMING
    tool = {"type": "function", "function": {"name": "lookup", "parameters": {"type": "object"}}}
    assert chat_prompt_tokens({**body, "tools": [tool]}) > plain
    params = {"system": "Be brief.", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 5}
    assert messages_input_tokens(params) == plain  # the same prompt costs the same on Anthropic
