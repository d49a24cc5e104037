"""Prometheus metrics of the router, in their own registry (no process or default collectors).

Fed from the attempt records (the JSONL lines of `Attempt.record()`, one `observe` per line)
and, at each scrape, from the providers' current state. Exposed at
http://llmrouter.invalid/metrics by `proxy.pages`.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.metrics_core import Metric

STATES = ("healthy", "cooling", "probing", "disabled")
_TTFT_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0)
_ATTEMPT_BUCKETS = (0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0)
_TOKENS = (("input", "input_tokens"), ("output", "output_tokens"),
           ("cache_read", "cache_read_tokens"), ("cache_write", "cache_write_tokens"))  # fmt: skip
CONTENT_TYPE = CONTENT_TYPE_LATEST


def _count(v: Any) -> int:
    return v if isinstance(v, int) and not isinstance(v, bool) and v > 0 else 0


def _seconds(ms: Any) -> float | None:
    ok = isinstance(ms, int | float) and not isinstance(ms, bool) and ms >= 0
    return ms / 1000 if ok else None


class Metrics:
    def __init__(self) -> None:
        r = self.registry = CollectorRegistry(auto_describe=True)
        labels = ["profile", "provider", "outcome"]
        self.attempts = Counter(
            "llmrouter_attempts_total", "Upstream attempts by how they ended.", labels, registry=r
        )
        self.failovers = Counter(
            "llmrouter_failovers_total",
            "Moves of a request to its next candidate (attempts numbered 2 and up).",
            ["profile"],
            registry=r,
        )
        self.requests = Counter(
            "llmrouter_requests_total",
            "Client requests by their final answer: served (ok) or failed.",
            ["profile", "result"],
            registry=r,
        )
        self.statuses = Counter(
            "llmrouter_upstream_responses_total",
            "Upstream HTTP statuses per provider, every attempt.",
            ["provider", "status"],
            registry=r,
        )
        self.ttft = Histogram(
            "llmrouter_ttft_seconds",
            "Time to first token of ok streamed attempts.",
            ["provider"],
            buckets=_TTFT_BUCKETS,
            registry=r,
        )
        self.attempt_seconds = Histogram(
            "llmrouter_attempt_seconds",
            "Total time of ok attempts, to the last byte.",
            ["provider"],
            buckets=_ATTEMPT_BUCKETS,
            registry=r,
        )
        self.tokens = Counter(
            "llmrouter_tokens_total",
            "Tokens by kind; input counts all input, cached or not (as in the JSONL log).",
            ["provider", "kind"],
            registry=r,
        )
        self.cost = Counter(
            "llmrouter_cost_usd_total", "USD of priced attempts.", ["provider"], registry=r
        )
        self.state = Gauge(
            "llmrouter_provider_state",
            "1 for the provider's current state, 0 for the others.",
            ["provider", "state"],
            registry=r,
        )
        self.cooldown = Gauge(
            "llmrouter_provider_cooldown_seconds",
            "Seconds left of the provider's cooldown (0: none).",
            ["provider"],
            registry=r,
        )
        self.shared = Gauge(
            "llmrouter_shared_state",
            "The shared state store (Redis; absent without one): connected 1 or 0, live "
            "instances, background writes queued, dropped (queue full) and refused by Redis.",
            ["what"],
            registry=r,
        )
        self.streams = Gauge(
            "llmrouter_streams_in_flight",
            "Streamed answers being handed off or relayed.",
            registry=r,
        )

    def observe(self, record: Mapping[str, Any]) -> None:
        """One attempt record, as written to the JSONL log. Never raises on odd values."""
        profile = str(record.get("profile") or "-")
        provider = str(record.get("provider") or "-")
        outcome = str(record.get("outcome") or "unknown")
        self.attempts.labels(profile, provider, outcome).inc()
        attempt = record.get("attempt")
        if isinstance(attempt, int) and attempt > 1:
            self.failovers.labels(profile).inc()
        if record.get("final") is True:
            self.requests.labels(profile, "served" if outcome == "ok" else "failed").inc()
        status = record.get("status")
        if isinstance(status, int) and not isinstance(status, bool):
            self.statuses.labels(provider, str(status)).inc()
        if outcome == "ok":
            if (ttft := _seconds(record.get("ttft_ms"))) is not None:
                self.ttft.labels(provider).observe(ttft)
            if (total := _seconds(record.get("total_ms"))) is not None:
                self.attempt_seconds.labels(provider).observe(total)
        for kind, field in _TOKENS:
            if n := _count(record.get(field)):
                self.tokens.labels(provider, kind).inc(n)
        cost = record.get("cost_usd")
        if isinstance(cost, int | float) and not isinstance(cost, bool) and cost > 0:
            self.cost.labels(provider).inc(cost)

    def observe_all(self, records: Iterable[Mapping[str, Any]]) -> None:
        for r in records:
            self.observe(r)

    def set_providers(self, providers: Iterable[tuple[str, str, float]]) -> None:
        """(name, state, cooldown seconds left) of every configured provider, now. Providers
        that left the config disappear from these gauges."""
        self.state.clear()
        self.cooldown.clear()
        for name, state, left in providers:
            for s in STATES:
                self.state.labels(name, s).set(1 if s == state else 0)
            self.cooldown.labels(name).set(max(0.0, left))

    def set_shared(self, status: Mapping[str, Any]) -> None:
        """The store's figures at a scrape (`StateBackend.status()`); nothing for a local one."""
        self.shared.clear()
        if status.get("backend") != "redis":
            return
        self.shared.labels("connected").set(1 if status.get("state") == "connected" else 0)
        for what in ("instances", "queue", "dropped", "failed"):
            v = status.get(what)
            if isinstance(v, int):
                self.shared.labels(what).set(v)

    def render(self) -> bytes:
        """The Prometheus text exposition (content type `CONTENT_TYPE`)."""
        return generate_latest(_WithoutCreated(self.registry))  # type: ignore[arg-type]


class _WithoutCreated:
    """The registry minus the `*_created` timestamps: they double the page and say little."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self._registry = registry

    def collect(self) -> Iterator[Metric]:
        for metric in self._registry.collect():  # fresh objects on every collect
            metric.samples = [s for s in metric.samples if not s.name.endswith("_created")]
            yield metric
