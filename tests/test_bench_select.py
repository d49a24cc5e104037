"""Selection speed: `select` (including its reason) for every strategy with 2, 8, 32 candidates.

Normal runs have `--benchmark-disable` (each runs once, as a smoke test). Figures:
    .venv/bin/pytest tests/test_bench_select.py --benchmark-enable
Target (issue 3): median under 10 µs with 8 candidates, for every strategy.
"""

from __future__ import annotations

import random
from typing import Any

import pytest
from llmrouter.routing.strategies import Candidate, Selector

STRATEGIES = ["failover", "round-robin", "weighted", "least-latency", "least-cost"]


def candidates(n: int) -> list[Candidate]:
    """A realistic mix: varied weights, latencies and prices, one cooling, one cold."""
    rng = random.Random(n)
    out = []
    for i in range(n):
        out.append(
            Candidate(
                f"provider-{i}",
                healthy=i != 1,
                weight=float(rng.choice([0, 1, 2, 3])),
                latency_ms=rng.uniform(100, 2000),
                warm=i != n - 1,
                samples=rng.randint(5, 500),
                price=None if i == 2 else rng.uniform(0.1, 20.0),
            )
        )
    return out


@pytest.mark.parametrize("n", [2, 8, 32])
@pytest.mark.parametrize("strategy", STRATEGIES)
def test_bench_select(benchmark: Any, strategy: str, n: int) -> None:
    selector = Selector(random.Random(0))
    cands = candidates(n)
    benchmark.group = f"select {n} candidates"
    sel = benchmark(selector.select, strategy, "bench", cands, stream=True, explore=0.05)
    assert sorted(sel.order) == sorted(c.name for c in cands)
    assert sel.reason.startswith(strategy)
