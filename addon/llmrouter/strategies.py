"""Strategies: candidates + a snapshot of health, latency and price -> try order + reason.

The pick goes first; the rest follow as the failover order. Healthy candidates always come
before cooling ones, each group in the strategy's own order. Every sort is stable, so ties keep
the configured order. Pure: no I/O, no mitmproxy imports; the only state is the round-robin
counters and the RNG, both owned by `Selector` and replaceable in tests.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

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


@dataclass(frozen=True, slots=True)
class Selection:
    order: tuple[str, ...]
    reason: str
    explored: bool = False


def _money(p: float) -> str:
    return f"${p:.3g}/M"


class Selector:
    """Runs a strategy. Holds the round-robin counter of each profile and the RNG."""

    def __init__(self, rng: random.Random | None = None) -> None:
        self.rng = rng or random.Random()
        self.counters: dict[str, int] = {}

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
    ) -> Selection:
        cands = [c for c in candidates if c.enabled]
        healthy = [c for c in cands if c.healthy]
        cooling = [c for c in cands if not c.healthy]
        if strategy == "round-robin":
            sel = self._round_robin(profile, healthy, cooling)
        elif strategy == "weighted":
            sel = self._weighted(healthy, cooling)
        elif strategy == "least-latency":
            sel = self._least_latency(healthy, cooling, stream, explore)
        elif strategy == "least-cost":
            sel = _least_cost(healthy, cooling, unknown_price)
        else:
            sel = Selection(_names(healthy, cooling), "failover: configured order")
        if cooling and healthy:
            sel = Selection(sel.order, f"{sel.reason}; {len(cooling)} cooling", sel.explored)
        return sel

    def _round_robin(
        self, profile: str, healthy: list[Candidate], cooling: list[Candidate]
    ) -> Selection:
        k = len(healthy)
        if not k:
            return Selection(_names(cooling), "round-robin: all cooling")
        n = self.counters.get(profile, 0)
        self.counters[profile] = n + 1
        i = n % k
        return Selection(
            _names(healthy[i:], healthy[:i], cooling), f"round-robin: slot {i + 1} of {k}"
        )

    def _weighted(self, healthy: list[Candidate], cooling: list[Candidate]) -> Selection:
        by_weight = lambda c: -c.weight  # noqa: E731 - stable: ties keep configured order
        rest_cooling = sorted(cooling, key=by_weight)
        if not healthy:
            return Selection(_names(rest_cooling), "weighted: all cooling")
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
        rest = sorted((c for c in healthy if c is not pick), key=by_weight)
        return Selection(
            _names([pick], rest, rest_cooling), f"weighted: {share:.0%} share of {pick.name}"
        )

    def _least_latency(
        self, healthy: list[Candidate], cooling: list[Candidate], stream: bool, explore: float
    ) -> Selection:
        unit = "ttft" if stream else "ms/token"
        warm = sorted((c for c in healthy if c.warm), key=_latency)
        cold = [c for c in healthy if not c.warm]
        cooling_order = sorted((c for c in cooling if c.warm), key=_latency) + [
            c for c in cooling if not c.warm
        ]
        if cold and (not warm or self.rng.random() < explore):
            # Cold providers are neither fastest (flooded) nor slowest (starved): sample them.
            pick = cold[int(self.rng.random() * len(cold))]
            rest = [c for c in cold if c is not pick]
            why = "exploring cold provider" if warm else "no warm provider yet, exploring"
            return Selection(
                _names([pick], warm, rest, cooling_order),
                f"least-latency: {why} {pick.name} ({pick.samples} samples)",
                explored=True,
            )
        if not warm:
            return Selection(_names(cooling_order), "least-latency: all cooling")
        best = warm[0]
        figure = f"{best.latency_ms:.0f} ms" if stream else f"{best.latency_ms:.1f}"
        return Selection(
            _names(warm, cold, cooling_order),
            f"least-latency: {unit} p50 {figure} over {best.samples} samples",
        )


def _latency(c: Candidate) -> float:
    return c.latency_ms if c.latency_ms is not None else float("inf")


def _least_cost(
    healthy: list[Candidate], cooling: list[Candidate], unknown: UnknownPrice
) -> Selection:
    def rank(group: list[Candidate]) -> list[Candidate]:
        if isinstance(unknown, float | int) and not isinstance(unknown, bool):
            return sorted(group, key=lambda c: c.price if c.price is not None else unknown)
        priced = sorted((c for c in group if c.price is not None), key=lambda c: c.price)  # type: ignore[arg-type,return-value]
        if unknown == "exclude":
            return priced
        return priced + [c for c in group if c.price is None]

    order = rank(healthy) + rank(cooling)
    if not order:
        return Selection((), "least-cost: no candidate has a known price")
    pick = order[0]
    price = pick.price if pick.price is not None else unknown
    why = _money(price) + " blended" if isinstance(price, float | int) else "no known price"
    return Selection(tuple(c.name for c in order), f"least-cost: {why}")


def _names(*groups: Sequence[Candidate]) -> tuple[str, ...]:
    return tuple(c.name for g in groups for c in g)
