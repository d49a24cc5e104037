"""Affinity: rendezvous spread and agreement, the binding book, and the strategies' use of it."""

from __future__ import annotations

import math
import random
from collections import Counter

import pytest
from llmrouter.routing.affinity import BindingBook, Lookup, pin, rendezvous
from llmrouter.routing.strategies import Candidate, Selector

KEYS = [f"{i:032x}" for i in range(10_000)]


def within_4_sigma(count: int, n: int, p: float) -> bool:
    sd = math.sqrt(n * p * (1 - p))
    return abs(count - n * p) <= 4 * sd


# -- rendezvous ------------------------------------------------------------------------------


@pytest.mark.parametrize("weights", [[1, 1, 1], [1, 2, 3], [5, 1, 0.5, 3.5], [0.1, 10]])
def test_rendezvous_spread_follows_the_weights(weights: list[float]) -> None:
    names = [f"p{i}" for i in range(len(weights))]
    firsts = Counter(rendezvous(k, names, weights)[0] for k in KEYS)
    total = sum(weights)
    for name, w in zip(names, weights, strict=True):
        assert within_4_sigma(firsts[name], len(KEYS), w / total), (name, firsts)


def test_rendezvous_zero_weight_is_never_first_and_goes_last() -> None:
    orders = [rendezvous(k, ["a", "z", "b", "y"], [1, 0, 1, 0]) for k in KEYS[:2000]]
    assert all(o[2:] == ["z", "y"] for o in orders)  # configured order among the zeros
    all_zero = Counter(rendezvous(k, ["a", "b"], [0, 0])[0] for k in KEYS)
    assert within_4_sigma(all_zero["a"], len(KEYS), 0.5)


def test_rendezvous_is_the_same_everywhere() -> None:
    """Parallel first requests of one conversation, on any instance, agree: no shared state."""
    names = ["a", "b", "c"]
    for k in KEYS[:200]:
        assert rendezvous(k, names, [1, 2, 3]) == rendezvous(k, list(names), [1.0, 2.0, 3.0])


def test_removing_a_candidate_moves_only_its_conversations() -> None:
    before = {k: rendezvous(k, ["a", "b", "c"])[0] for k in KEYS}
    after = {k: rendezvous(k, ["a", "c"])[0] for k in KEYS}
    moved = [k for k in KEYS if before[k] != after[k]]
    assert moved and all(before[k] == "b" for k in moved)


# -- strategies with a conversation key -------------------------------------------------------


def cands(*names: str, **kw: object) -> list[Candidate]:
    return [Candidate(n, **kw) for n in names]  # type: ignore[arg-type]


@pytest.mark.parametrize("strategy", ["round-robin", "weighted"])
def test_rr_and_weighted_use_rendezvous_with_a_conversation(strategy: str) -> None:
    s1, s2 = Selector(random.Random(1)), Selector(random.Random(2))
    cs = [Candidate("a", weight=1), Candidate("b", weight=2), Candidate("c", weight=3)]
    for k in KEYS[:100]:
        o1 = s1.select(strategy, "p", cs, conversation=k)
        o2 = s2.select(strategy, "p", cs, conversation=k)
        assert o1.order == o2.order
        assert o1.reason.startswith(f"{strategy}: conversation rendezvous, ")
        assert o1.reason.endswith(f"-> {o1.order[0]}")
    assert s1.counters == {}  # the counter does not move for keyed requests


def test_round_robin_rendezvous_spreads_uniformly_over_healthy() -> None:
    cs = [Candidate("a", weight=5), Candidate("b"), Candidate("c"), Candidate("d", healthy=False)]
    sel = Selector()
    firsts = Counter(sel.select("round-robin", "p", cs, conversation=k).order[0] for k in KEYS)
    assert set(firsts) == {"a", "b", "c"}  # weights ignored, cooling never first
    for name in "abc":
        assert within_4_sigma(firsts[name], len(KEYS), 1 / 3)
    assert sel.select("round-robin", "p", cs, conversation=KEYS[0]).order[-1] == "d"


def test_weighted_rendezvous_reason_and_cooling() -> None:
    cs = [Candidate("a", weight=1), Candidate("b", weight=3), Candidate("c", healthy=False)]
    sel = Selector().select("weighted", "p", cs, conversation=KEYS[0])
    assert sel.order[-1] == "c"
    assert sel.reason.endswith("1 cooling")
    assert ("25% share" in sel.reason) == (sel.order[0] == "a")
    all_cooling = Selector().select("weighted", "p", cands("a", "b", healthy=False),
                                    conversation=KEYS[0])  # fmt: skip
    assert all_cooling.reason == "weighted: all cooling"


@pytest.mark.parametrize("strategy", ["failover", "least-latency", "least-cost"])
def test_other_strategies_ignore_the_key(strategy: str) -> None:
    cs = [Candidate("a", price=2.0, latency_ms=10, warm=True, samples=9),
          Candidate("b", price=1.0, latency_ms=5, warm=True, samples=9)]  # fmt: skip
    with_key = Selector(random.Random(0)).select(strategy, "p", cs, conversation=KEYS[0])
    without = Selector(random.Random(0)).select(strategy, "p", cs)
    assert with_key == without


# -- the binding book ------------------------------------------------------------------------


def test_new_then_bound_only_after_success() -> None:
    book = BindingBook()
    p = pin(book, "k", "work", 300, now=0)
    assert p.lookup == Lookup(None)
    assert p.state("a") == "new"
    assert p.order(("b", "a"), {"a", "b"}) == ("b", "a")  # nothing bound: strategy's order
    # Attempts that failed or were cancelled never call success: nothing is bound.
    assert book.size() == 0
    assert pin(book, "k", "work", 300, now=1).state("a") == "new"
    p.success("a", now=2)
    q = pin(book, "k", "work", 300, now=3)
    assert q.lookup.bound == "a"
    assert q.state("a") == "bound"
    assert q.order(("b", "c", "a"), {"a", "b", "c"}) == ("a", "b", "c")


def test_failover_rebinds_to_whoever_served() -> None:
    book = BindingBook()
    book.bind("k", "a", "work", 300, now=0)
    p = pin(book, "k", "work", 300, now=10)
    # `a` is cooling: not available, so the order stays the strategy's and `b` serves.
    assert p.order(("a", "b"), available={"b"}) == ("a", "b")
    assert p.state("b") == "rebound"
    p.success("b", now=11)
    later = pin(book, "k", "work", 300, now=20)
    assert later.lookup.bound == "b"
    # `a` recovered: the conversation stays on `b` (its cache is there now).
    assert later.order(("a", "b"), available={"a", "b"}) == ("b", "a")


def test_a_binding_never_revives_an_excluded_provider() -> None:
    book = BindingBook()
    book.bind("k", "a", "work", 300, now=0)
    p = pin(book, "k", "work", 300, now=1)
    assert p.order(("b", "c"), available={"b", "c"}) == ("b", "c")  # disabled: not in order
    assert p.order(("b", "c", "a"), available={"b", "c"}) == ("b", "c", "a")  # cooling


def test_ttl_slides_with_each_success() -> None:
    book = BindingBook()
    book.bind("k", "a", "work", 300, now=0)
    assert pin(book, "k", "work", 300, now=299).state("a") == "bound"
    pin(book, "k", "work", 300, now=299).success("a", now=299)
    assert pin(book, "k", "work", 300, now=598).state("a") == "bound"
    expired = pin(book, "k", "work", 300, now=599)
    assert expired.state("a") == "expired"
    assert expired.lookup.bound is None
    assert expired.order(("b", "a"), {"a", "b"}) == ("b", "a")  # the strategy chooses again
    expired.success("b", now=600)
    assert pin(book, "k", "work", 300, now=601).lookup.bound == "b"


def test_the_ttl_is_the_pins() -> None:
    book = BindingBook()
    pin(book, "k", "work", 3600, now=0).success("a", now=0)
    assert pin(book, "k", "work", 300, now=3599).state("a") == "bound"
    assert pin(book, "k", "work", 300, now=3600).state("a") == "expired"


def test_compaction_unbinds_for_this_request() -> None:
    book = BindingBook()
    book.bind("k", "a", "work", 300, now=0)
    p = pin(book, "k", "work", 300, now=1, compaction=True)
    assert p.state("a") == "expired"
    assert p.order(("b", "a"), {"a", "b"}) == ("b", "a")
    assert pin(book, "k", "work", 300, now=2).state("a") == "bound"  # the binding is still there


def test_lru_cap() -> None:
    book = BindingBook(cap=3)
    for i, k in enumerate("abc"):
        book.bind(k, "p", "work", 300, now=i)
    book.get("a", now=3)  # a is used: b is now the oldest
    book.bind("d", "p", "work", 300, now=4)
    assert book.size() == 3
    assert book.get("b", now=5) == Lookup(None)
    assert book.get("a", now=5).bound == "p"


def test_snapshot_counts_live_bindings_per_profile() -> None:
    book = BindingBook()
    book.bind("k1", "a", "work", 300, now=0)
    book.bind("k2", "a", "work", 300, now=0)
    book.bind("k3", "b", "work", 300, now=0)
    book.bind("k4", "b", "home", 10, now=0)
    assert book.snapshot(now=5) == {"work": {"a": 2, "b": 1}, "home": {"b": 1}}
    assert book.snapshot(now=20) == {"work": {"a": 2, "b": 1}}


def test_drop_providers_on_reload() -> None:
    book = BindingBook()
    book.bind("k1", "a", "work", 300, now=0)
    book.bind("k2", "b", "work", 300, now=0)
    assert book.drop_providers({"a"}) == 1
    assert book.get("k1", now=1) == Lookup(None)
    assert book.get("k2", now=1).bound == "b"
