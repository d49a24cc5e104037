"""What a request reserves: an upper bound of its cost over its candidates (micro-USD)."""

from __future__ import annotations

from typing import Any

import pytest
from llmrouter.routing.pricing import ModelPrice, Rate
from llmrouter.state.reservation import (
    DEFAULT_MAX_TOKENS,
    Reservation,
    plan_reservation,
    requested_max_tokens,
    reservation_micro,
)

# -- the reservation estimate --------------------------------------------------------------


def price(inp: float, out: float, write: float | None = None, **tiers: Any) -> ModelPrice:
    i = Rate(inp, tiers.get("input_tiers", ()))
    o = Rate(out, tiers.get("output_tiers", ()))
    return ModelPrice(i, o, Rate(inp / 10), Rate(write if write is not None else inp), "config")


def test_reservation_is_input_plus_max_tokens_at_output_price() -> None:
    # 10k input tokens at $3/M + 1k output at $15/M = $0.03 + $0.015
    assert reservation_micro(price(3, 15), 10_000, 1_000) == 45_000


def test_reservation_uses_the_cache_write_rate_when_dearer() -> None:
    assert reservation_micro(price(3, 15, write=3.75), 10_000, 1_000) == 37_500 + 15_000


def test_reservation_follows_tiers_at_the_estimated_input() -> None:
    p = price(3, 15, input_tiers=((200_000, 6.0),), output_tiers=((200_000, 22.5),))
    assert reservation_micro(p, 100_000, 1_000) == 300_000 + 15_000
    assert reservation_micro(p, 250_000, 1_000) == 1_500_000 + 22_500


def test_reservation_rounds_up_to_a_micro_dollar() -> None:
    assert reservation_micro(price(0.1, 0.1), 1, 1) == 1  # 0.2 micro-USD


def test_reservation_without_max_tokens_uses_the_documented_default() -> None:
    assert reservation_micro(price(0, 1), 0, None) == DEFAULT_MAX_TOKENS
    assert reservation_micro(price(0, 1), -50, 0) == DEFAULT_MAX_TOKENS


def test_reservation_of_an_unknown_price_is_none() -> None:
    assert reservation_micro(None, 10_000, 1_000) is None


def test_a_free_model_reserves_nothing() -> None:
    assert reservation_micro(price(0, 0), 10_000, 1_000) == 0


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        (None, None),
        ({}, None),
        ({"max_tokens": 32000}, 32000),  # Anthropic
        ({"max_completion_tokens": 4096}, 4096),  # OpenAI
        ({"max_tokens": 100, "max_completion_tokens": 4096}, 4096),  # the larger bound
        ({"max_tokens": True}, None),
        ({"max_tokens": "100"}, None),
        ({"max_tokens": 0}, None),
        ({"max_tokens": -1}, None),
    ],
)
def test_requested_max_tokens(payload: dict[str, Any] | None, expected: int | None) -> None:
    assert requested_max_tokens(payload) == expected


def test_plan_reserves_the_dearest_priced_candidate_and_sets_unpriced_ones_aside() -> None:
    plan = plan_reservation(
        {"cheap": price(1, 2), "unknown": None, "dear": price(3, 15), "free": price(0, 0)},
        10_000,
        1_000,
    )
    assert plan == Reservation(45_000, ["cheap", "dear", "free"], ["unknown"])


def test_plan_with_nothing_priced() -> None:
    assert plan_reservation({"a": None}, 10, 10) == Reservation(0, [], ["a"])
    assert plan_reservation({}, 10, 10) == Reservation(0, [], [])
