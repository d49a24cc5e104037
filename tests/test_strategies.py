"""Strategies: candidates + health/latency/price snapshot -> try order + reason (issue 3)."""

from __future__ import annotations

import math
import random
from collections import Counter
from collections.abc import Sequence
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from llmrouter.config import parse_config
from llmrouter.routing.strategies import Candidate, Selection, Selector

STRATEGIES = ["failover", "round-robin", "weighted", "least-latency", "least-cost"]


def C(name: str, **kw: Any) -> Candidate:
    return Candidate(name, **kw)


def sel(strategy: str, cands: Sequence[Candidate], seed: int = 0, **kw: Any) -> Selection:
    return Selector(random.Random(seed)).select(strategy, "p", cands, **kw)


def within(count: int, n: int, p: float, sds: float = 4.0) -> bool:
    """`count` of `n` Bernoulli(p) draws lies within `sds` standard deviations of n*p."""
    return abs(count - n * p) <= sds * math.sqrt(n * p * (1 - p))


def firsts(selector: Selector, strategy: str, cands: Sequence[Candidate], n: int, **kw: Any):
    return Counter(selector.select(strategy, "p", cands, **kw).order[0] for _ in range(n))


# -- rules for every strategy -----------------------------------------------------------------


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_disabled_providers_are_removed(strategy: str) -> None:
    cands = [
        C("off1", enabled=False, weight=100, price=0.0, latency_ms=1, warm=True, samples=9),
        C("a", price=1.0),
        C("off2", enabled=False, healthy=False),
        C("b", price=2.0),
    ]
    for seed in range(20):
        order = sel(strategy, cands, seed).order
        assert sorted(order) == ["a", "b"]


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_no_enabled_candidate(strategy: str) -> None:
    s = Selector(random.Random(0))
    got = s.select(strategy, "p", [C("a", enabled=False)])
    assert got.order == ()
    assert got.reason == f"{strategy}: no enabled candidate"
    assert s.counters == {}
    assert s.select(strategy, "p", []).order == ()


def test_disabled_never_move_the_round_robin_counter() -> None:
    s = Selector(random.Random(0))
    cands = [C("a"), C("x", enabled=False), C("b"), C("y", enabled=False)]
    picks = [s.select("round-robin", "p", cands).order[0] for _ in range(6)]
    assert picks == ["a", "b", "a", "b", "a", "b"]
    assert s.select("round-robin", "p", cands).reason == "round-robin: slot 1 of 2"


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_cooling_after_healthy(strategy: str) -> None:
    cands = [
        C("c1", healthy=False, weight=5, price=0.1, latency_ms=1, warm=True, samples=9),
        C("h1", weight=1, price=3.0, latency_ms=300, warm=True, samples=9),
        C("c2", healthy=False, weight=1, price=0.2, latency_ms=2, warm=True, samples=9),
        C("h2", weight=1, price=2.0, latency_ms=200, warm=True, samples=9),
    ]
    for seed in range(10):
        got = sel(strategy, cands, seed)
        assert set(got.order[:2]) == {"h1", "h2"}
        assert set(got.order[2:]) == {"c1", "c2"}
        assert got.reason.endswith("; 2 cooling")


@pytest.mark.parametrize(
    ("strategy", "expected"),
    [
        ("failover", ("h1", "h2", "c2", "c1")),  # configured order
        ("weighted", ("c1", "c2")),  # descending weight: c1 (5) before c2 (1)
        ("least-latency", ("c1", "c2")),  # fastest first: c1 1 ms before c2 2 ms
        ("least-cost", ("c2", "c1")),  # cheapest first: c2 $0.1 before c1 $0.2
    ],
)
def test_cooling_keep_the_strategys_order(strategy: str, expected: tuple[str, ...]) -> None:
    cands = [
        C("h1", weight=1, price=3.0, latency_ms=300, warm=True, samples=9),
        C("c2", healthy=False, weight=1, price=0.1, latency_ms=2, warm=True, samples=9),
        C("h2", weight=1, price=3.0, latency_ms=300, warm=True, samples=9),
        C("c1", healthy=False, weight=5, price=0.2, latency_ms=1, warm=True, samples=9),
    ]
    got = sel(strategy, cands).order
    if strategy == "failover":
        assert got == expected
    else:
        assert got[-len(expected) :] == expected


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_all_cooling_still_gives_an_order(strategy: str) -> None:
    cands = [C(n, healthy=False, price=1.0) for n in "abc"]
    got = sel(strategy, cands)
    assert got.order == ("a", "b", "c")  # never refuse: all cooling still gives an order
    assert got.reason.startswith(f"{strategy}: ")


@pytest.mark.parametrize("strategy", ["failover", "weighted", "least-latency", "least-cost"])
def test_ties_keep_configured_order(strategy: str) -> None:
    # Every candidate ties on the strategy's key: the sort must be stable.
    names = ["e", "b", "d", "a", "c"]
    cands = [C(n, weight=2.0, price=0.5, latency_ms=100.0, warm=True, samples=10) for n in names]
    for seed in range(30):
        order = list(sel(strategy, cands, seed, explore=0.0).order)
        if strategy == "weighted":  # the first is drawn; the rest keep configured order
            rest = [n for n in names if n != order[0]]
            assert order[1:] == rest
        else:
            assert order == names


def test_ties_among_partial_keys_keep_configured_order() -> None:
    cands = [
        C("x", price=2.0),
        C("y", price=1.0),
        C("z", price=2.0),
        C("w", price=1.0),
    ]
    assert sel("least-cost", cands).order == ("y", "w", "x", "z")
    lat = [
        C(n, latency_ms=v, warm=True, samples=5) for n, v in zip("xyzw", (2, 1, 2, 1), strict=True)
    ]
    assert sel("least-latency", lat, explore=0.0).order == ("y", "w", "x", "z")


# -- failover ---------------------------------------------------------------------------------


def test_failover_is_configured_order() -> None:
    got = sel("failover", [C("b"), C("a"), C("c")])
    assert got == Selection(("b", "a", "c"), "failover: configured order")


def test_unknown_strategy_falls_back_to_failover() -> None:
    assert sel("bogus", [C("b"), C("a")]).order == ("b", "a")


# -- round-robin ------------------------------------------------------------------------------


def test_round_robin_rotates_with_slot_reason() -> None:
    s = Selector(random.Random(0))
    cands = [C("a"), C("b"), C("c")]
    got = [s.select("round-robin", "p", cands) for _ in range(4)]
    assert [g.order for g in got] == [
        ("a", "b", "c"),
        ("b", "c", "a"),
        ("c", "a", "b"),
        ("a", "b", "c"),
    ]
    assert [g.reason for g in got] == [
        "round-robin: slot 1 of 3",
        "round-robin: slot 2 of 3",
        "round-robin: slot 3 of 3",
        "round-robin: slot 1 of 3",
    ]


def test_round_robin_counters_are_per_profile() -> None:
    s = Selector(random.Random(0))
    cands = [C("a"), C("b"), C("c")]
    p1, p2 = [], []
    for i in range(9):
        p1.append(s.select("round-robin", "one", cands).order[0])
        if i % 3 == 0:  # another profile's traffic does not disturb the rotation
            p2.append(s.select("round-robin", "two", cands).order[0])
    assert p1 == ["a", "b", "c"] * 3
    assert p2 == ["a", "b", "c"]
    assert s.counters == {"one": 9, "two": 3}


@pytest.mark.parametrize(("n", "k"), [(12, 3), (100, 3), (101, 4), (7, 7), (1000, 6), (5, 8)])
def test_round_robin_fairness(n: int, k: int) -> None:
    s = Selector(random.Random(0))
    cands = [C(f"p{i}") for i in range(k)]
    counts = firsts(s, "round-robin", cands, n)
    for i in range(k):
        assert abs(counts[f"p{i}"] - n / k) <= 1


def test_round_robin_advances_only_over_healthy() -> None:
    s = Selector(random.Random(0))
    cands = [C("a"), C("b", healthy=False), C("c"), C("d")]
    got = [s.select("round-robin", "p", cands) for _ in range(30)]
    counts = Counter(g.order[0] for g in got)
    assert counts == {"a": 10, "c": 10, "d": 10}
    assert all(g.order[-1] == "b" for g in got)
    assert got[0].reason == "round-robin: slot 1 of 3; 1 cooling"


def test_round_robin_all_cooling_does_not_move_the_counter() -> None:
    s = Selector(random.Random(0))
    got = s.select("round-robin", "p", [C("a", healthy=False), C("b", healthy=False)])
    assert got == Selection(("a", "b"), "round-robin: all cooling")
    assert s.counters.get("p", 0) == 0


# -- weighted ---------------------------------------------------------------------------------


def test_weighted_shares_over_10000_draws() -> None:
    s = Selector(random.Random(12345))
    n = 10_000
    counts = firsts(s, "weighted", [C("a", weight=3), C("b", weight=1)], n)
    assert within(counts["a"], n, 0.75), counts
    assert counts["a"] + counts["b"] == n


def test_weighted_three_way_shares_over_10000_draws() -> None:
    s = Selector(random.Random(2024))
    n = 10_000
    cands = [C("a", weight=5), C("b", weight=3), C("c", weight=2)]
    counts = firsts(s, "weighted", cands, n)
    for name, p in (("a", 0.5), ("b", 0.3), ("c", 0.2)):
        assert within(counts[name], n, p), counts


def test_weighted_zero_never_first_but_still_a_failover_candidate() -> None:
    s = Selector(random.Random(1))
    cands = [C("z", weight=0), C("a", weight=1), C("b", weight=2)]
    for _ in range(2000):
        order = s.select("weighted", "p", cands).order
        assert order[0] != "z"
        assert order[-1] == "z"


def test_weighted_all_zero_is_uniform() -> None:
    s = Selector(random.Random(7))
    n = 9000
    cands = [C(x, weight=0) for x in "abc"]
    counts = firsts(s, "weighted", cands, n)
    for x in "abc":
        assert within(counts[x], n, 1 / 3), counts
    assert s.select("weighted", "p", cands).reason.startswith("weighted: 33% share of ")


def test_weighted_cooling_left_out_of_the_draw() -> None:
    s = Selector(random.Random(3))
    n = 4000
    cands = [C("big", weight=8, healthy=False), C("a", weight=1), C("b", weight=1)]
    got = [s.select("weighted", "p", cands) for _ in range(n)]
    counts = Counter(g.order[0] for g in got)
    assert "big" not in counts
    assert within(counts["a"], n, 0.5), counts
    assert all(g.order[-1] == "big" for g in got)
    assert got[0].reason == f"weighted: 50% share of {got[0].order[0]}; 1 cooling"


def test_weighted_rest_in_descending_weight_then_configured_order() -> None:
    cands = [C("a", weight=1), C("b", weight=5), C("c", weight=3), C("d", weight=3), C("e")]
    seen = set()
    for seed in range(200):
        order = sel("weighted", cands, seed).order
        rest = [n for n in ("b", "c", "d", "a", "e") if n != order[0]]
        assert list(order[1:]) == rest
        seen.add(order[0])
    assert seen == set("abcde")


def test_weighted_reason() -> None:
    got = sel("weighted", [C("a", weight=3), C("b", weight=1)], seed=0)
    share = {"a": "75%", "b": "25%"}[got.order[0]]
    assert got.reason == f"weighted: {share} share of {got.order[0]}"


def test_weighted_all_cooling() -> None:
    got = sel("weighted", [C("a", weight=1, healthy=False), C("b", weight=2, healthy=False)])
    assert got == Selection(("b", "a"), "weighted: all cooling")


def test_rng_is_replaceable() -> None:
    class Fixed(random.Random):
        def random(self) -> float:
            return 0.99

    s = Selector(Fixed())
    assert s.select("weighted", "p", [C("a", weight=1), C("b", weight=1)]).order[0] == "b"
    s.rng = random.Random(0)
    assert isinstance(s.rng, random.Random)


# -- profile weights --------------------------------------------------------------------------


def engine_candidates(cfg_data: dict[str, Any], model: str | None = None, stream: bool = True):
    """The glue that turns config + state into Candidates (proxy.planning.Planner)."""
    from llmrouter.proxy.dispatch import Engine, Request
    from llmrouter.routing.routes import policy_for

    cfg = parse_config(cfg_data, {})
    engine = Engine(None, lambda _: None)  # type: ignore[arg-type]
    payload = {"model": model, "stream": stream}
    req = Request("id", "POST", "/v1/messages", [], b"", payload, "anthropic", "anthropic")
    profile = cfg.profiles["p"]
    policy = policy_for(profile, None)
    names = list(profile.providers)
    return engine, engine.planner.candidates(cfg, "p", profile, policy, names, req)


def provider(**kw: Any) -> dict[str, Any]:
    return {"base_url": "https://x.example.com", "api": "anthropic", **kw}


def test_profile_weights_override_provider_weights_missing_keeps_own() -> None:
    data = {
        "providers": {"a": provider(weight=5), "b": provider(weight=2), "c": provider()},
        "profiles": {
            "p": {"hosts": ["h"], "providers": ["a", "b", "c"], "weights": {"a": 0, "c": 7}}
        },
    }
    _, cands = engine_candidates(data)
    assert {c.name: c.weight for c in cands} == {"a": 0.0, "b": 2.0, "c": 7.0}


# -- least-latency ----------------------------------------------------------------------------


def warm(name: str, ms: float, samples: int = 10, **kw: Any) -> Candidate:
    return C(name, latency_ms=ms, warm=True, samples=samples, **kw)


def test_least_latency_warm_ordering_and_reason() -> None:
    cands = [warm("a", 300), warm("b", 412.4, 37), warm("c", 120, 37), warm("d", 200)]
    got = sel("least-latency", cands, explore=0.0)
    assert got.order == ("c", "d", "a", "b")
    assert got.reason == "least-latency: ttft p50 120 ms over 37 samples"
    assert not got.explored


def test_least_latency_non_stream_reason() -> None:
    got = sel("least-latency", [warm("a", 12.34, 8)], stream=False)
    assert got.reason == "least-latency: ms/token p50 12.3 over 8 samples"


def test_least_latency_cold_after_warm_when_not_exploring() -> None:
    cands = [C("cold1", samples=2), warm("w2", 500), C("cold2"), warm("w1", 100)]
    got = sel("least-latency", cands, explore=0.0)
    assert got.order == ("w1", "w2", "cold1", "cold2")


def test_least_latency_explores_cold_with_configured_share() -> None:
    n = 10_000
    for explore in (0.05, 0.2):
        s = Selector(random.Random(99))
        cands = [warm("fast", 100), C("cold", samples=2), warm("slow", 900)]
        got = [s.select("least-latency", "p", cands, explore=explore) for _ in range(n)]
        explored = [g for g in got if g.explored]
        assert within(len(explored), n, explore), (explore, len(explored))
        for g in explored:
            assert g.order == ("cold", "fast", "slow")
            assert g.reason == "least-latency: exploring cold provider cold (2 samples)"
        assert all(g.order[0] == "fast" for g in got if not g.explored)


def test_least_latency_explore_picks_among_cold_uniformly() -> None:
    s = Selector(random.Random(5))
    cands = [warm("w", 100), C("c1"), C("c2")]
    got = [s.select("least-latency", "p", cands, explore=1.0) for _ in range(2000)]
    counts = Counter(g.order[0] for g in got)
    assert within(counts["c1"], 2000, 0.5), counts
    for g in got:  # the other cold one follows the warm ones
        assert g.order[1:] == ("w", "c2" if g.order[0] == "c1" else "c1")


def test_least_latency_no_warm_provider_always_explores() -> None:
    s = Selector(random.Random(0))
    got = s.select("least-latency", "p", [C("a"), C("b", samples=3)], explore=0.0)
    assert got.explored
    assert "least-latency: no warm provider yet, exploring" in got.reason


def test_least_latency_stale_provider_counts_as_cold() -> None:
    # A stale series reaches the selector as warm=False, whatever its old figure says.
    cands = [C("stale", latency_ms=1.0, warm=False, samples=50), warm("w", 500)]
    got = sel("least-latency", cands, explore=0.0)
    assert got.order == ("w", "stale")
    got = sel("least-latency", cands, explore=1.0)
    assert got.order == ("stale", "w") and "exploring cold provider stale" in got.reason


def test_least_latency_cooling_never_explored() -> None:
    s = Selector(random.Random(0))
    cands = [warm("w", 100), C("cold", healthy=False), warm("slowcool", 50, healthy=False)]
    for _ in range(200):
        got = s.select("least-latency", "p", cands, explore=1.0)
        assert got.order == ("w", "slowcool", "cold")
        assert not got.explored


def test_least_latency_warm_without_a_figure_is_cold() -> None:
    got = sel("least-latency", [C("nofig", warm=True), warm("w", 100)], explore=0.0)
    assert got.order == ("w", "nofig")


def test_least_latency_all_cooling() -> None:
    got = sel("least-latency", [C("a", healthy=False), warm("b", 1, healthy=False)])
    assert got == Selection(("b", "a"), "least-latency: all cooling")


# -- least-cost -------------------------------------------------------------------------------


def test_least_cost_ranks_by_blended_price_with_reason() -> None:
    cands = [C("a", price=3.0), C("b", price=0.41), C("c", price=1.5)]
    got = sel("least-cost", cands)
    assert got.order == ("b", "c", "a")
    assert got.reason == "least-cost: $0.41/M blended"


def test_least_cost_free_is_a_known_price() -> None:
    got = sel("least-cost", [C("a", price=1.0), C("free", price=0.0), C("u")])
    assert got.order == ("free", "a", "u")
    assert got.reason == "least-cost: $0/M blended"


def test_least_cost_unknown_last() -> None:
    cands = [C("u1"), C("a", price=2.0), C("u2"), C("b", price=1.0)]
    assert sel("least-cost", cands).order == ("b", "a", "u1", "u2")
    assert sel("least-cost", cands, unknown_price="last").order == ("b", "a", "u1", "u2")


def test_least_cost_unknown_exclude() -> None:
    cands = [C("u1"), C("a", price=2.0), C("u2", healthy=False), C("b", price=1.0)]
    assert sel("least-cost", cands, unknown_price="exclude").order == ("b", "a")
    got = sel("least-cost", [C("u1"), C("u2")], unknown_price="exclude")
    assert got == Selection((), "least-cost: no candidate has a known price")


@pytest.mark.parametrize(("number", "expected"), [(0.5, ("b", "u", "a")), (5.0, ("b", "a", "u"))])
def test_least_cost_unknown_as_number(number: float, expected: tuple[str, ...]) -> None:
    cands = [C("a", price=2.0), C("u"), C("b", price=0.1)]
    assert sel("least-cost", cands, unknown_price=number).order == expected


def test_least_cost_unknown_priced_pick_is_named_in_reason() -> None:
    got = sel("least-cost", [C("u"), C("a", price=2.0)], unknown_price=0.25)
    assert got.order == ("u", "a")
    assert got.reason == "least-cost: $0.25/M blended"
    got = sel("least-cost", [C("u")])
    assert got == Selection(("u",), "least-cost: no known price")


def test_least_cost_cooling_cheap_goes_after_healthy_expensive() -> None:
    cands = [C("cheap", price=0.1, healthy=False), C("dear", price=10.0)]
    got = sel("least-cost", cands)
    assert got.order == ("dear", "cheap")
    assert got.reason == "least-cost: $10/M blended; 1 cooling"


def cost_config(**profile: Any) -> dict[str, Any]:
    return {
        "providers": {
            # mapped to a cheap model, priced by genai-prices
            "mapped": provider(models={"claude-sonnet-*": "claude-3-5-haiku-latest"}),
            # unmapped: the requested model's genai-prices price
            "plain": provider(),
            # an override wins over genai-prices, whatever the model
            "override": provider(price={"input": 1.0, "output": 5.0, "cache_read": 0.1}),
            # a model genai-prices does not know
            "unknown": provider(models={"*": "no-such-model-xyz"}),
        },
        "profiles": {
            "p": {
                "hosts": ["h"],
                "providers": ["plain", "override", "unknown", "mapped"],
                "strategy": "least-cost",
                **profile,
            }
        },
    }


def test_least_cost_price_after_model_mapping_and_override() -> None:
    engine, cands = engine_candidates(cost_config(), model="claude-sonnet-4-5")
    price = {c.name: c.price for c in cands}
    # default mix 3:1 input:output, no cache
    assert price["plain"] == pytest.approx(0.75 * 3.0 + 0.25 * 15.0)  # sonnet 4.5: $3/$15
    assert price["mapped"] == pytest.approx(0.75 * 0.8 + 0.25 * 4.0)  # haiku 3.5: $0.8/$4
    assert price["override"] == pytest.approx(0.75 * 1.0 + 0.25 * 5.0)
    assert price["unknown"] is None
    got = engine.selector.select("least-cost", "p", cands)
    assert got.order == ("mapped", "override", "plain", "unknown")
    assert got.reason == "least-cost: $1.6/M blended"


def test_least_cost_blends_by_the_learned_mix_with_cache_reads() -> None:
    from llmrouter.wire.apis import Usage

    engine, _ = engine_candidates(cost_config(), model="claude-sonnet-4-5")
    mix = engine.mixes["p"]
    mix.add(Usage(input_tokens=1000, output_tokens=1000, cache_read_tokens=500))
    from llmrouter.proxy.dispatch import Request

    cfg = parse_config(cost_config(), {})
    req = Request(
        "id",
        "POST",
        "/v1/messages",
        [],
        b"",
        {"model": "claude-sonnet-4-5"},
        "anthropic",
        "anthropic",
    )
    from llmrouter.routing.routes import policy_for

    profile = cfg.profiles["p"]
    policy = policy_for(profile, None)
    cands = engine.planner.candidates(cfg, "p", profile, policy, list(profile.providers), req)
    price = {c.name: c.price for c in cands}
    # input share 1/2, of which half is cache reads
    assert price["override"] == pytest.approx(0.5 * (0.5 * 1.0 + 0.5 * 0.1) + 0.5 * 5.0)
    assert price["plain"] == pytest.approx(0.5 * (0.5 * 3.0 + 0.5 * 0.3) + 0.5 * 15.0)


# -- reasons ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("strategy", "prefix"),
    [
        ("failover", "failover: configured order"),
        ("round-robin", "round-robin: slot 1 of 3"),
        ("weighted", "weighted: "),
        ("least-latency", "least-latency: ttft p50 "),
        ("least-cost", "least-cost: $"),
    ],
)
def test_every_strategy_gives_a_reason(strategy: str, prefix: str) -> None:
    cands = [warm(n, 100.0 * (i + 1), price=float(i + 1)) for i, n in enumerate("abc")]
    got = sel(strategy, cands, explore=0.0)
    assert got.reason.startswith(prefix), got.reason
    assert got.order[0] in "abc"


# -- properties -------------------------------------------------------------------------------


@st.composite
def candidate_lists(draw: st.DrawFn) -> list[Candidate]:
    n = draw(st.integers(min_value=0, max_value=10))
    out = []
    for i in range(n):
        is_warm = draw(st.booleans())
        out.append(
            Candidate(
                f"p{i}",
                healthy=draw(st.booleans()),
                enabled=draw(st.booleans() | st.just(True)),
                weight=draw(st.sampled_from([0.0, 0.5, 1.0, 2.0, 3.0])),
                latency_ms=draw(st.sampled_from([None, 50.0, 100.0, 100.0, 400.0])),
                warm=is_warm,
                samples=draw(st.integers(min_value=0, max_value=50)),
                price=draw(st.sampled_from([None, 0.0, 0.5, 0.5, 2.0])),
            )
        )
    return out


prop = settings(max_examples=250, deadline=None)
strategy_st = st.sampled_from(STRATEGIES)


@prop
@given(cands=candidate_lists(), strategy=strategy_st, seed=st.integers(0, 2**32))
def test_prop_output_is_a_permutation_of_enabled(
    cands: list[Candidate], strategy: str, seed: int
) -> None:
    got = sel(strategy, cands, seed)
    assert sorted(got.order) == sorted(c.name for c in cands if c.enabled)


@prop
@given(cands=candidate_lists(), strategy=strategy_st, seed=st.integers(0, 2**32))
def test_prop_healthy_before_cooling(cands: list[Candidate], strategy: str, seed: int) -> None:
    healthy = {c.name: c.healthy for c in cands}
    flags = [healthy[n] for n in sel(strategy, cands, seed).order]
    assert flags == sorted(flags, reverse=True)


@prop
@given(cands=candidate_lists(), strategy=strategy_st, seed=st.integers(0, 2**32))
def test_prop_deterministic_under_a_fixed_seed(
    cands: list[Candidate], strategy: str, seed: int
) -> None:
    a, b = Selector(random.Random(seed)), Selector(random.Random(seed))
    for _ in range(5):
        assert a.select(strategy, "p", cands) == b.select(strategy, "p", cands)


@prop
@given(cands=candidate_lists(), seed=st.integers(0, 2**32))
def test_prop_zero_weight_never_first_while_a_positive_one_is_healthy(
    cands: list[Candidate], seed: int
) -> None:
    order = sel("weighted", cands, seed).order
    by_name = {c.name: c for c in cands}
    if any(c.enabled and c.healthy and c.weight > 0 for c in cands):
        assert by_name[order[0]].weight > 0


@prop
@given(cands=candidate_lists(), strategy=strategy_st, seed=st.integers(0, 2**32))
def test_prop_ties_are_stable(cands: list[Candidate], strategy: str, seed: int) -> None:
    """Within a health group, candidates that tie on the strategy's key keep configured order."""
    pos = {c.name: i for i, c in enumerate(cands)}
    by_name = {c.name: c for c in cands}
    got = sel(strategy, cands, seed, explore=0.0)
    order = list(got.order)
    if strategy in ("round-robin",):
        return  # a rotation, not a sort
    if got.explored or (strategy == "weighted" and order and by_name[order[0]].healthy):
        order = order[1:]  # the first is drawn at random

    def key(c: Candidate) -> tuple[Any, ...]:
        if strategy == "weighted":
            return (c.healthy, c.weight)
        if strategy == "least-cost":
            return (c.healthy, c.price)
        if strategy == "least-latency":
            warm = c.warm and c.latency_ms is not None
            return (c.healthy, warm, c.latency_ms if warm else None)
        return (c.healthy,)

    for i, x in enumerate(order):
        for y in order[i + 1 :]:
            if key(by_name[x]) == key(by_name[y]):
                assert pos[x] < pos[y], (x, y, got)


@prop
@given(cands=candidate_lists(), n=st.integers(1, 40))
def test_prop_round_robin_fair_over_healthy(cands: list[Candidate], n: int) -> None:
    s = Selector(random.Random(0))
    healthy = [c.name for c in cands if c.enabled and c.healthy]
    if not any(c.enabled for c in cands):
        return
    counts = firsts(s, "round-robin", cands, n)
    if healthy:
        assert set(counts) <= set(healthy)
        for name in healthy:
            assert abs(counts[name] - n / len(healthy)) <= 1
