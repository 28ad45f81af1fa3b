"""Request lines: shapes, system prompt, extra merge rules, deterministic compact JSON."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from batch_gateway.models import BatchItem, JobSpec
from batch_gateway.providers.registry import PROVIDER_NAMES, get_provider
from batch_gateway.providers.requests import (
    ANTHROPIC_LIMITS,
    OPENAI_LIMITS,
    build_anthropic_request,
    build_openai_request,
    encode_request_line,
    request_builder_for,
)

OPENAI = JobSpec(provider="openai", model="gpt-4o-mini", system_prompt="Be brief.")
ANTHROPIC = JobSpec(provider="anthropic", model="claude-haiku-4-5", system_prompt="Be brief.")
BEDROCK = JobSpec(
    provider="bedrock", model="anthropic.claude-haiku-4-5-20251001-v1:0", system_prompt="Be brief."
)


def item(**fields: object) -> BatchItem:
    return BatchItem.model_validate({"custom_id": "q1", "user_message": "Capital of France?", **fields})


def test_openai_line_with_system_prompt() -> None:
    line = build_openai_request("q1", item(temperature=0.2, max_tokens=50), OPENAI)
    assert line == {
        "custom_id": "q1",
        "method": "POST",
        "url": "/v1/chat/completions",
        "body": {
            "model": "gpt-4o-mini",
            "messages": [
                {"role": "system", "content": "Be brief."},
                {"role": "user", "content": "Capital of France?"},
            ],
            "temperature": 0.2,
            "max_completion_tokens": 50,
        },
    }


def test_openai_line_without_system_prompt_uses_defaults() -> None:
    spec = JobSpec(provider="openai", model="gpt-4o-mini")
    body = build_openai_request("q1", item(), spec)["body"]
    assert body["messages"] == [{"role": "user", "content": "Capital of France?"}]
    assert body["temperature"] == 0.0
    assert body["max_completion_tokens"] == 4096
    assert "max_tokens" not in body


def test_anthropic_line_with_and_without_system_prompt() -> None:
    line = build_anthropic_request("q1", item(max_tokens=300), ANTHROPIC)
    assert line == {
        "custom_id": "q1",
        "params": {
            "model": "claude-haiku-4-5",
            "max_tokens": 300,
            "messages": [{"role": "user", "content": "Capital of France?"}],
            "system": "Be brief.",
            "temperature": 0.0,
        },
    }
    bare = build_anthropic_request("q1", item(), JobSpec(provider="anthropic", model="claude-haiku-4-5"))
    assert "system" not in bare["params"]


def test_extra_is_merged_and_may_override_defaults() -> None:
    extra = {"top_p": 0.9, "temperature": 0.7, "response_format": {"type": "json_object"}, "seed": 1}
    body = build_openai_request("q1", item(extra=extra), OPENAI)["body"]
    assert body["top_p"] == 0.9
    assert body["temperature"] == 0.7
    assert body["response_format"] == {"type": "json_object"}
    params = build_anthropic_request(
        "q1", item(extra={"stop_sequences": ["END"], "system": [{"type": "text", "text": "S"}]}), ANTHROPIC
    )["params"]
    assert params["stop_sequences"] == ["END"]
    assert params["system"] == [{"type": "text", "text": "S"}]


def test_none_in_extra_removes_a_default() -> None:
    body = build_openai_request("q1", item(extra={"temperature": None}), OPENAI)["body"]
    assert "temperature" not in body


def test_openai_max_tokens_in_extra_replaces_max_completion_tokens() -> None:
    body = build_openai_request("q1", item(extra={"max_tokens": 10}), OPENAI)["body"]
    assert body["max_tokens"] == 10
    assert "max_completion_tokens" not in body


def test_reasoning_requests_leave_an_unchosen_temperature_out() -> None:
    thinking = {"thinking": {"type": "enabled", "budget_tokens": 2048}}
    params = build_anthropic_request("q1", item(extra=thinking), ANTHROPIC)["params"]
    assert "temperature" not in params
    assert params["thinking"] == thinking["thinking"]
    # An explicit temperature is the user's choice and is sent.
    explicit = build_anthropic_request("q1", item(extra=thinking, temperature=1.0), ANTHROPIC)["params"]
    assert explicit["temperature"] == 1.0
    body = build_openai_request("q1", item(extra={"reasoning_effort": "low"}), OPENAI)["body"]
    assert "temperature" not in body


@pytest.mark.parametrize("key", ["messages", "stream", "custom_id"])
@pytest.mark.parametrize("build", [build_openai_request, build_anthropic_request])
def test_extra_may_not_override_gateway_keys(key: str, build: object) -> None:
    assert callable(build)
    spec = OPENAI if build is build_openai_request else ANTHROPIC
    with pytest.raises(ValueError, match=f"extra may not set '{key}'.*remove it from extra"):
        build("q1", item(extra={key: "x"}), spec)


@pytest.mark.parametrize("build", [build_openai_request, build_anthropic_request])
def test_extra_model_overrides_the_job_model_for_that_item(build: object) -> None:
    assert callable(build)
    spec = OPENAI if build is build_openai_request else ANTHROPIC
    request = build("q1", item(extra={"model": "other-model"}), spec)
    body = request["body"] if build is build_openai_request else request["params"]
    assert body["model"] == "other-model"
    assert next(iter(body)) == "model"


@pytest.mark.parametrize("bad", [None, "", "  ", 7, ["m"]])
def test_extra_model_must_be_a_model_name(bad: object) -> None:
    with pytest.raises(ValueError, match=r"extra\.model must be a model name"):
        build_openai_request("q1", item(extra={"model": bad}), OPENAI)


def test_key_order_is_deterministic_and_json_compact() -> None:
    extra_a = {"z_param": 1, "a_param": 2}
    extra_b = {"a_param": 2, "z_param": 1}
    line_a = encode_request_line(build_openai_request("q1", item(extra=extra_a), OPENAI))
    line_b = encode_request_line(build_openai_request("q1", item(extra=extra_b), OPENAI))
    assert line_a == line_b
    assert line_a.endswith(b"\n")
    assert b", " not in line_a
    assert b": " not in line_a
    keys = list(json.loads(line_a)["body"])
    assert keys == ["model", "messages", "temperature", "max_completion_tokens", "a_param", "z_param"]


def test_encode_keeps_unicode_and_survives_lone_surrogates() -> None:
    assert "Größe".encode() in encode_request_line(
        build_anthropic_request("q1", item(user_message="Größe"), ANTHROPIC)
    )
    # BatchItem refuses lone surrogates in its strings, but extra values are free-form.
    broken = encode_request_line(
        build_anthropic_request("q1", item(extra={"stop_sequences": ["a\ud800"]}), ANTHROPIC)
    )
    assert b"\\ud800" in broken


def test_builders_and_providers_share_limits_and_lines() -> None:
    assert OPENAI_LIMITS.max_requests == 50_000
    assert OPENAI_LIMITS.max_bytes == 200 * 1024 * 1024
    assert ANTHROPIC_LIMITS.max_requests == 100_000
    assert ANTHROPIC_LIMITS.max_bytes == 256 * 1024 * 1024
    for name in PROVIDER_NAMES:
        provider = get_provider(name, "key")
        builder = request_builder_for(name)
        assert provider.name == builder.name == name
        assert provider.limits == builder.limits
        spec = {"openai": OPENAI, "bedrock": BEDROCK}.get(name, ANTHROPIC)
        assert provider.build_request("q1", item(), spec) == builder.build_request("q1", item(), spec)


def test_unknown_provider_is_a_readable_error() -> None:
    with pytest.raises(ValueError, match="expected one of: openai, anthropic"):
        get_provider("mistral", "key")
    with pytest.raises(ValueError, match="unknown provider"):
        request_builder_for("mistral")


def test_importing_providers_and_building_lines_imports_no_sdk() -> None:
    root = Path(__file__).resolve().parents[2]
    code = (
        "import sys\n"
        "from batch_gateway.providers.registry import get_provider\n"
        "from batch_gateway.providers.requests import request_builder_for\n"
        "from batch_gateway.models import BatchItem, JobSpec\n"
        "for name in ('openai', 'anthropic'):\n"
        "    p = get_provider(name, 'k')\n"
        "    p.build_request('a', BatchItem(custom_id='a', user_message='hi'), JobSpec(provider=name, model='m'))\n"
        "print(sorted(m for m in ('openai', 'anthropic', 'httpx2') if m in sys.modules))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        env={"PYTHONPATH": str(root / "layers" / "batch_gateway")},
        capture_output=True,
        text=True,
        check=True,
    )
    assert out.stdout.strip() == "[]"
