"""Prices (override vs genai-prices), tiers, the cost of an attempt, and the learned mix."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from llmrouter.routing import pricing
from llmrouter.routing.pricing import (
    Mix,
    ModelPrice,
    Rate,
    blended,
    cost,
    from_override,
    lookup,
    price_of,
)
from llmrouter.wire.apis import Usage


@dataclass
class Override:
    input: float
    output: float
    cache_read: float | None = None
    cache_write: float | None = None


def flat(inp: float, out: float, read: float, write: float) -> ModelPrice:
    return ModelPrice(Rate(inp), Rate(out), Rate(read), Rate(write), "config")


# -- where prices come from -------------------------------------------------------------------


def test_override_defaults_cache_prices_to_input() -> None:
    p = from_override(Override(0.28, 0.42))
    assert p == ModelPrice(Rate(0.28), Rate(0.42), Rate(0.28), Rate(0.28), "config")
    p = from_override(Override(1.0, 5.0, cache_read=0.1, cache_write=1.25))
    assert (p.cache_read.base, p.cache_write.base) == (0.1, 1.25)


def test_override_wins_over_genai_prices() -> None:
    p = price_of("claude-sonnet-4-5", Override(1.0, 2.0), "https://api.anthropic.com")
    assert p is not None and p.source == "config" and p.input.base == 1.0
    # an override prices even a model genai-prices does not know, and no model at all
    assert price_of("no-such-model-xyz", Override(1.0, 2.0), None) is not None
    assert price_of(None, Override(1.0, 2.0), None) is not None


def test_genai_prices_lookup_offline() -> None:
    p = price_of("gpt-4o", None, "https://api.openai.com/v1")
    assert p is not None and p.source == "genai-prices"
    assert (p.input.base, p.output.base, p.cache_read.base) == (2.5, 10.0, 1.25)
    haiku = lookup("claude-3-5-haiku-latest")
    assert haiku is not None
    assert (haiku.input.base, haiku.output.base) == (0.8, 4.0)
    assert haiku.cache_read.base == pytest.approx(0.08)
    assert haiku.cache_write.base == pytest.approx(1.0)


def test_lookup_at_an_unknown_provider_url_falls_back_to_any_provider() -> None:
    p = lookup("gpt-4o", "https://gateway.example.com/v1")
    assert p is not None and p.input.base == 2.5


def test_unknown_model_is_none_never_zero() -> None:
    assert lookup("no-such-model-xyz") is None
    assert price_of("no-such-model-xyz", None, "https://x.example.com") is None
    assert price_of(None, None, None) is None


def test_lookups_are_cached() -> None:
    pricing._lookups.pop(("gpt-4o-mini", None), None)
    first = lookup("gpt-4o-mini")
    assert ("gpt-4o-mini", None) in pricing._lookups
    assert lookup("gpt-4o-mini") is first
    pricing.preload()  # idempotent


# -- tiers ------------------------------------------------------------------------------------


def test_rate_tiers_cliff() -> None:
    r = Rate(3.0, ((200_000, 6.0), (1_000_000, 9.0)))
    assert r.at(0) == 3.0
    assert r.at(199_999) == 3.0
    assert r.at(200_000) == 6.0
    assert r.at(999_999) == 6.0
    assert r.at(5_000_000) == 9.0
    assert Rate(2.0).at(10**9) == 2.0


def test_genai_prices_tiers_are_read() -> None:
    p = lookup("claude-sonnet-4-5", "https://api.anthropic.com")
    assert p is not None
    assert p.input.base == 3.0 and p.input.at(250_000) == 6.0
    assert p.output.at(250_000) == 22.5


# -- cost of an attempt -----------------------------------------------------------------------


def test_cost_with_cache_read_and_write() -> None:
    p = flat(1.0, 5.0, 0.1, 1.25)
    # input_tokens counts ALL input: 600 plain + 300 cache read + 100 cache write
    u = Usage(input_tokens=1000, output_tokens=200, cache_read_tokens=300, cache_write_tokens=100)
    assert cost(p, u) == pytest.approx((600 * 1.0 + 300 * 0.1 + 100 * 1.25 + 200 * 5.0) / 1e6)


def test_cost_plain_and_partial_usage() -> None:
    p = flat(2.0, 8.0, 2.0, 2.0)
    assert cost(p, Usage(1_000_000, 1_000_000)) == pytest.approx(10.0)
    assert cost(p, Usage(output_tokens=500_000)) == pytest.approx(4.0)
    assert cost(p, Usage(input_tokens=500_000)) == pytest.approx(1.0)
    assert cost(p, Usage(0, 0)) == 0.0


def test_cost_unknown() -> None:
    assert cost(None, Usage(10, 10)) is None  # unpriced: null, never $0
    assert cost(flat(1, 1, 1, 1), Usage()) is None  # nothing reported
    assert cost(flat(1, 1, 1, 1), Usage(cache_read_tokens=5)) is None


def test_cost_never_negative_when_cache_exceeds_input() -> None:
    u = Usage(input_tokens=10, output_tokens=0, cache_read_tokens=50)
    assert cost(flat(1.0, 1.0, 0.5, 1.0), u) == pytest.approx(50 * 0.5 / 1e6)


def test_cost_uses_the_tier_of_the_whole_input() -> None:
    p = lookup("claude-sonnet-4-5", "https://api.anthropic.com")
    assert p is not None
    small = cost(p, Usage(100_000, 1000))
    big = cost(p, Usage(250_000, 1000))
    assert small == pytest.approx((100_000 * 3.0 + 1000 * 15.0) / 1e6)
    assert big == pytest.approx((250_000 * 6.0 + 1000 * 22.5) / 1e6)


def test_free_model_costs_zero() -> None:
    assert cost(flat(0, 0, 0, 0), Usage(100, 100)) == 0.0


# -- blended price and the learned mix --------------------------------------------------------


def test_blended_default_mix_is_3_to_1() -> None:
    p = flat(1.0, 5.0, 0.1, 1.0)
    share, cache = Mix().shares()
    assert (share, cache) == (0.75, 0.0)
    assert blended(p, share, cache) == pytest.approx(0.75 * 1.0 + 0.25 * 5.0)


def test_blended_uses_cache_read_price_for_the_cached_share() -> None:
    p = flat(1.0, 5.0, 0.1, 1.0)
    assert blended(p, 0.5, 0.5) == pytest.approx(0.5 * (0.5 * 1.0 + 0.5 * 0.1) + 0.5 * 5.0)
    assert blended(p, 1.0, 1.0) == pytest.approx(0.1)
    assert blended(p, 0.0, 0.0) == pytest.approx(5.0)


def test_blended_uses_base_rates() -> None:
    p = ModelPrice(Rate(3.0, ((1, 99.0),)), Rate(15.0, ((1, 99.0),)), Rate(0.3), Rate(3.0), "x")
    assert blended(p, 0.75, 0.0) == pytest.approx(0.75 * 3.0 + 0.25 * 15.0)


def test_mix_learns_shares() -> None:
    m = Mix()
    m.add(Usage(input_tokens=900, output_tokens=100, cache_read_tokens=450))
    share, cache = m.shares()
    assert share == pytest.approx(0.9)
    assert cache == pytest.approx(0.5)


def test_mix_ignores_missing_counts_and_caps_cache_share() -> None:
    m = Mix()
    m.add(Usage())
    assert m.shares() == (0.75, 0.0)
    m.add(Usage(input_tokens=10, cache_read_tokens=50))
    assert m.shares() == (1.0, 1.0)
    m2 = Mix()
    m2.add(Usage(output_tokens=10))
    assert m2.shares() == (0.0, 0.0)


def test_mix_decays_old_traffic() -> None:
    m = Mix()
    m.add(Usage(100, 0))
    m.add(Usage(0, 100))
    assert (m.input_tokens, m.output_tokens) == pytest.approx((99.0, 100.0))
    # a profile that changed how it is used: the mix follows
    m = Mix()
    for _ in range(200):
        m.add(Usage(1000, 10))
    assert m.shares()[0] > 0.98
    for _ in range(500):
        m.add(Usage(10, 1000))
    assert m.shares()[0] < 0.05
