"""Strategies: candidates + a snapshot of health, latency and price -> try order + reason.

The pick goes first; the rest follow as the failover order. Healthy candidates always come
before cooling ones, each group in the strategy's own order. Every sort is stable, so ties keep
the configured order. Pure: no I/O, no mitmproxy imports; the only state is the round-robin
counters and the RNG, both owned by `Selector` and replaceable in tests.

With a conversation key, round-robin and weighted order the healthy candidates by rendezvous
hashing of that key (weighted: with the weights) instead of the counter or the RNG: the
parallel first requests of one conversation agree, on every instance, and conversations still
spread evenly (by weight). The counter does not move for them.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, NamedTuple

from llmrouter.routing.affinity import rendezvous

UnknownPrice = Literal["last", "exclude"] | float


@dataclass(frozen=True, slots=True)
class Candidate:
    name: str
    healthy: bool = True
    enabled: bool = True
    weight: float = 1.0  # effective: the profile's `weights` already applied
    latency_ms: float | None = None  # p50 for the request's kind (ttft, or ms per token)
    warm: bool = False  # enough recent samples to trust latency_ms
    samples: int = 0
    price: float | None = None  # blended USD per million tokens; None: unknown


class Selection(NamedTuple):
    # A NamedTuple, not a frozen dataclass: built on every request, and 3x cheaper to make.
    order: tuple[str, ...]
    reason: str
    explored: bool = False


def _money(p: float) -> str:
    return f"${p:.3g}/M"


class Selector:
    """Runs a strategy. Holds the round-robin counter of each profile and the RNG."""

    def __init__(self, rng: random.Random | None = None, start: int = 0) -> None:
        self.rng = rng or random.Random()
        self.counters: dict[str, int] = {}
        # Where every counter starts: 0 for one router; a random offset per instance when
        # several share state, so that instances started together do not all begin alike.
        self.start = start

    def select(
        self,
        strategy: str,
        profile: str,
        candidates: Sequence[Candidate],
        *,
        stream: bool = True,
        explore: float = 0.05,
        min_samples: int = 5,
        unknown_price: UnknownPrice = "last",
        conversation: str | None = None,
    ) -> Selection:
        """Order `candidates` by `strategy`. `profile` names the round-robin counter (one per
        profile, one per route); `conversation` (a hashed key) turns round-robin and weighted
        into rendezvous hashing."""
        healthy: list[Candidate] = []
        cooling: list[Candidate] = []
        for c in candidates:  # disabled ones are dropped here: no counter, no share
            if c.enabled:
                (healthy if c.healthy else cooling).append(c)
        if not healthy and not cooling:  # nothing to order; no counter moves, no RNG draw
            return Selection((), f"{strategy}: no enabled candidate")
        if conversation is not None and strategy in ("round-robin", "weighted"):
            order, reason, explored = _rendezvous(strategy, conversation, healthy, cooling)
        elif strategy == "round-robin":
            order, reason, explored = self._round_robin(profile, healthy, cooling)
        elif strategy == "weighted":
            order, reason, explored = self._weighted(healthy, cooling)
        elif strategy == "least-latency":
            order, reason, explored = self._least_latency(healthy, cooling, stream, explore)
        elif strategy == "least-cost":
            order, reason, explored = _least_cost(healthy, cooling, unknown_price)
        else:
            order, reason, explored = _names(healthy, cooling), "failover: configured order", False
        if cooling and healthy:
            reason = f"{reason}; {len(cooling)} cooling"
        return Selection(order, reason, explored)

    def _round_robin(
        self, profile: str, healthy: list[Candidate], cooling: list[Candidate]
    ) -> _Out:
        k = len(healthy)
        if not k:
            return _names(cooling), "round-robin: all cooling", False
        n = self.counters.get(profile, self.start)
        self.counters[profile] = n + 1
        i = n % k
        return (
            _names(healthy[i:], healthy[:i], cooling),
            f"round-robin: slot {i + 1} of {k}",
            False,
        )

    def _weighted(self, healthy: list[Candidate], cooling: list[Candidate]) -> _Out:
        rest_cooling = sorted(cooling, key=_neg_weight) if len(cooling) > 1 else cooling
        if not healthy:
            return _names(rest_cooling), "weighted: all cooling", False
        total = sum(c.weight for c in healthy)
        if total > 0:
            r = self.rng.random() * total
            pick = healthy[-1]
            for c in healthy:
                if c.weight > 0:
                    pick = c
                    r -= c.weight
                    if r < 0:
                        break
            share = pick.weight / total
        else:  # all-zero: uniform
            pick = healthy[int(self.rng.random() * len(healthy))]
            share = 1 / len(healthy)
        rest = [c for c in healthy if c is not pick]
        rest.sort(key=_neg_weight)
        reason = f"weighted: {share:.0%} share of {pick.name}"
        return _names([pick], rest, rest_cooling), reason, False

    def _least_latency(
        self, healthy: list[Candidate], cooling: list[Candidate], stream: bool, explore: float
    ) -> _Out:
        warm, cold = _split_warm(healthy)
        warm_cooling, cold_cooling = _split_warm(cooling)
        if cold and (not warm or self.rng.random() < explore):
            # Cold providers are neither fastest (flooded) nor slowest (starved): sample them.
            pick = cold[int(self.rng.random() * len(cold))]
            rest = [c for c in cold if c is not pick]
            why = "exploring cold provider" if warm else "no warm provider yet, exploring"
            return (
                _names([pick], warm, rest, warm_cooling, cold_cooling),
                f"least-latency: {why} {pick.name} ({pick.samples} samples)",
                True,
            )
        if not warm:
            return _names(warm_cooling, cold_cooling), "least-latency: all cooling", False
        best = warm[0]
        figure = (
            f"ttft p50 {best.latency_ms:.0f} ms"
            if stream
            else f"ms/token p50 {best.latency_ms:.1f}"
        )
        return (
            _names(warm, cold, warm_cooling, cold_cooling),
            f"least-latency: {figure} over {best.samples} samples",
            False,
        )


_Out = tuple[tuple[str, ...], str, bool]  # order, reason, explored


def _rendezvous(
    strategy: str, key: str, healthy: list[Candidate], cooling: list[Candidate]
) -> _Out:
    """Round-robin (uniform) or weighted, chosen by the conversation's rendezvous hash."""
    weighted = strategy == "weighted"
    rest = sorted(cooling, key=_neg_weight) if weighted and len(cooling) > 1 else cooling
    if not healthy:
        return _names(rest), f"{strategy}: all cooling", False
    names = [c.name for c in healthy]
    order = rendezvous(key, names, [c.weight for c in healthy] if weighted else None)
    total = sum(c.weight for c in healthy)
    first = next(c for c in healthy if c.name == order[0])
    if weighted and total > 0:
        share = f"{first.weight / total:.0%} share"
    else:
        share = f"1 of {len(healthy)}"
    reason = f"{strategy}: conversation rendezvous, {share} -> {first.name}"
    return (*order, *(c.name for c in rest)), reason, False


def _neg_weight(c: Candidate) -> float:
    return -c.weight  # sorted() is stable: ties keep configured order


def _split_warm(group: list[Candidate]) -> tuple[list[Candidate], list[Candidate]]:
    """(warm sorted by latency, cold in configured order). Warm without a figure counts as
    cold: it cannot be ranked, so it is explored, never taken as the fastest."""
    warm: list[Candidate] = []
    cold: list[Candidate] = []
    for c in group:
        (warm if c.warm and c.latency_ms is not None else cold).append(c)
    if len(warm) > 1:
        warm.sort(key=_latency)
    return warm, cold


def _latency(c: Candidate) -> float:
    return c.latency_ms  # type: ignore[return-value] - only warm ones, which have a figure


def _price(c: Candidate) -> float:
    return c.price  # type: ignore[return-value] - only priced ones


def _by_price(group: list[Candidate], exclude: bool) -> list[Candidate]:
    priced = [c for c in group if c.price is not None]
    priced.sort(key=_price)
    if exclude or len(priced) == len(group):
        return priced
    return priced + [c for c in group if c.price is None]  # `last`: never silently $0


def _least_cost(healthy: list[Candidate], cooling: list[Candidate], unknown: UnknownPrice) -> _Out:
    if isinstance(unknown, str):
        exclude = unknown == "exclude"
        order = _by_price(healthy, exclude) + _by_price(cooling, exclude)
    else:  # an explicit number stands in for the unknown price

        def key(c: Candidate) -> float:
            return unknown if c.price is None else c.price  # type: ignore[return-value]

        order = sorted(healthy, key=key) + sorted(cooling, key=key)
    if not order:
        return (), "least-cost: no candidate has a known price", False
    price = order[0].price
    if price is None and not isinstance(unknown, str):
        price = unknown
    why = "no known price" if price is None else _money(price) + " blended"
    return tuple(c.name for c in order), f"least-cost: {why}", False


def _names(*groups: Sequence[Candidate]) -> tuple[str, ...]:
    return tuple(c.name for g in groups for c in g)
