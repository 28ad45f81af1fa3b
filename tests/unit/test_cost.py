import pytest

from batch_gateway.cost import job_cost, model_prices
from batch_gateway.providers.anthropic.parsing import anthropic_usage
from batch_gateway.providers.openai.parsing import openai_usage


def test_openai_cost_from_real_format_usage_bills_cached_input_at_its_own_price() -> None:
    usage = openai_usage(
        {
            "prompt_tokens": 1000,
            "completion_tokens": 500,
            "total_tokens": 1500,
            "prompt_tokens_details": {"cached_tokens": 200, "audio_tokens": 0},
            "completion_tokens_details": {"reasoning_tokens": 0},
        }
    )

    cost = job_cost("openai", {"gpt-4o-mini-2024-07-18": usage})

    assert cost.usd == pytest.approx((800 * 0.075 + 200 * 0.0375 + 500 * 0.30) / 1_000_000)
    assert cost.unpriced_models == []
    assert cost.prices_as_of


def test_anthropic_cost_from_real_format_usage_bills_cache_writes_and_reads_separately() -> None:
    usage = anthropic_usage(
        {
            "input_tokens": 100,
            "cache_creation_input_tokens": 50,
            "cache_read_input_tokens": 1000,
            "output_tokens": 20,
        }
    )

    cost = job_cost("anthropic", {"claude-3-5-haiku-20241022": usage})

    assert cost.usd == pytest.approx((100 * 0.40 + 50 * 0.50 + 1000 * 0.04 + 20 * 2.00) / 1_000_000)


def test_an_unknown_model_makes_the_cost_unknown_never_zero() -> None:
    cost = job_cost("openai", {"gpt-4o-mini": {"prompt_tokens": 10}, "my-finetune": {"prompt_tokens": 10}})

    assert cost.usd is None
    assert cost.unpriced_models == ["my-finetune"]


def test_the_longest_matching_model_name_wins() -> None:
    assert model_prices("openai", "gpt-4o-mini-2024-07-18") == model_prices("openai", "gpt-4o-mini")
    assert model_prices("openai", "gpt-4o-2024-08-06") == model_prices("openai", "gpt-4o")
    assert model_prices("openai", "gpt-5-nano") is None
