"""Prometheus metrics: values that match a known sequence of attempt records."""

from __future__ import annotations

from typing import Any

import pytest
from llmrouter.proxy.metrics import Metrics
from prometheus_client.parser import text_string_to_metric_families


def rec(provider: str, outcome: str = "ok", **kw: Any) -> dict[str, Any]:
    """An attempt record with the JSONL line's field names (proxy.attempt.Attempt.record)."""
    base: dict[str, Any] = {
        "ts": "2026-11-26T10:00:00.000Z", "request_id": "r", "profile": "default",
        "strategy": "failover", "candidates": ["a", "b"], "reason": "", "attempt": 1,
        "provider": provider, "api": "anthropic", "model": "m", "requested_model": "m",
        "stream": True, "status": 200, "outcome": outcome, "error": None, "final": True,
        "probe": False, "ttfb_ms": 10.0, "ttft_ms": None, "total_ms": None,
        "input_tokens": None, "output_tokens": None, "cache_read_tokens": None,
        "cache_write_tokens": None, "cost_usd": None, "bytes": 0, "content_events": 0,
        "skipped": [], "cooldown_s": None,
    }  # fmt: skip
    return base | kw


SEQUENCE = [
    # r1: a 503, failover to b which streams.
    rec("a", "http_error", status=503, final=False, total_ms=12.0),
    rec("b", attempt=2, ttft_ms=300.0, total_ms=1500.0, input_tokens=1000, output_tokens=50,
        cache_read_tokens=800, cache_write_tokens=0, cost_usd=0.0125),
    # r2: a times out, b 429, a third provider c serves without a price.
    rec("a", "timeout", status=None, final=False, total_ms=30000.0, profile="work"),
    rec("b", "http_error", status=429, attempt=2, final=False, profile="work"),
    rec("c", attempt=3, profile="work", total_ms=700.0, input_tokens=10, output_tokens=2),
    # r3, r4: a serves first try; r5: its 400 goes to the client (final, not served).
    rec("a", ttft_ms=80.0, total_ms=400.0, input_tokens=5, output_tokens=5, cost_usd=0.001),
    rec("a", ttft_ms=120.0, total_ms=2600.0, input_tokens=5, output_tokens=7, cost_usd=0.002),
    rec("a", "http_error", status=400, total_ms=5.0),
    # r6: the client went away mid-attempt.
    rec("b", "client_closed", status=200, final=False, total_ms=50.0),
]  # fmt: skip


def samples(m: Metrics) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    out = {}
    for family in text_string_to_metric_families(m.render().decode()):
        for s in family.samples:
            out[s.name, frozenset(s.labels.items())] = s.value
    return out


def value(
    s: dict[tuple[str, frozenset[tuple[str, str]]], float], name: str, **labels: str
) -> float:
    return s.get((name, frozenset(labels.items())), 0.0)


def test_metrics_match_a_known_sequence() -> None:
    m = Metrics()
    m.observe_all(SEQUENCE)
    m.set_providers([("a", "cooling", 12.5), ("b", "healthy", 0.0), ("c", "disabled", 0.0)])
    s = samples(m)
    total = "llmrouter_attempts_total"
    assert value(s, total, profile="default", provider="a", outcome="http_error") == 2
    assert value(s, total, profile="default", provider="a", outcome="ok") == 2
    assert value(s, total, profile="work", provider="a", outcome="timeout") == 1
    assert value(s, total, profile="work", provider="b", outcome="http_error") == 1
    assert value(s, total, profile="default", provider="b", outcome="client_closed") == 1
    assert sum(v for (n, _), v in s.items() if n == total) == len(SEQUENCE)
    assert value(s, "llmrouter_failovers_total", profile="default") == 1
    assert value(s, "llmrouter_failovers_total", profile="work") == 2
    assert value(s, "llmrouter_requests_total", profile="default", result="served") == 3
    assert value(s, "llmrouter_requests_total", profile="default", result="failed") == 1
    assert value(s, "llmrouter_requests_total", profile="work", result="served") == 1
    up = "llmrouter_upstream_responses_total"
    assert value(s, up, provider="a", status="503") == 1
    assert value(s, up, provider="b", status="429") == 1
    assert value(s, up, provider="a", status="200") == 2
    # Histograms hold ok attempts only: a's 30 s timeout is not a latency.
    ttft = "llmrouter_ttft_seconds"
    assert value(s, f"{ttft}_count", provider="a") == 2
    assert value(s, f"{ttft}_sum", provider="a") == pytest.approx(0.2)
    assert value(s, f"{ttft}_bucket", provider="a", le="0.1") == 1
    assert value(s, f"{ttft}_bucket", provider="a", le="0.25") == 2
    assert value(s, f"{ttft}_count", provider="c") == 0  # not streamed
    att = "llmrouter_attempt_seconds"
    assert value(s, f"{att}_count", provider="a") == 2
    assert value(s, f"{att}_sum", provider="a") == pytest.approx(3.0)
    assert value(s, f"{att}_bucket", provider="a", le="2.5") == 1
    assert value(s, f"{att}_bucket", provider="a", le="+Inf") == 2
    assert value(s, f"{att}_sum", provider="c") == pytest.approx(0.7)
    tok = "llmrouter_tokens_total"
    assert value(s, tok, provider="b", kind="input") == 1000
    assert value(s, tok, provider="b", kind="cache_read") == 800
    assert value(s, tok, provider="b", kind="output") == 50
    assert value(s, tok, provider="a", kind="output") == 12
    assert ("llmrouter_tokens_total", frozenset({("provider", "b"), ("kind", "cache_write")})) \
        not in s  # a zero count adds no series  # fmt: skip
    assert value(s, "llmrouter_cost_usd_total", provider="b") == pytest.approx(0.0125)
    assert value(s, "llmrouter_cost_usd_total", provider="a") == pytest.approx(0.003)
    assert ("llmrouter_cost_usd_total", frozenset({("provider", "c")})) not in s
    state = "llmrouter_provider_state"
    assert value(s, state, provider="a", state="cooling") == 1
    assert value(s, state, provider="a", state="healthy") == 0
    assert value(s, state, provider="c", state="disabled") == 1
    assert value(s, "llmrouter_provider_cooldown_seconds", provider="a") == 12.5
    assert not any(n.endswith("_created") for n, _ in s)


def test_provider_gauges_follow_the_config_and_odd_records_are_harmless() -> None:
    m = Metrics()
    m.set_providers([("a", "healthy", 0.0), ("gone", "cooling", 3.0)])
    m.set_providers([("a", "probing", 0.0)])  # "gone" left the config on a reload
    s = samples(m)
    assert value(s, "llmrouter_provider_state", provider="a", state="probing") == 1
    assert not any(dict(labels).get("provider") == "gone" for _, labels in s)
    m.observe({"provider": "x", "attempt": "2", "ttft_ms": "fast", "input_tokens": -5,
               "cost_usd": True, "status": "503"})  # fmt: skip
    s = samples(m)
    assert value(s, "llmrouter_attempts_total", profile="-", provider="x", outcome="unknown") == 1
    assert value(s, "llmrouter_failovers_total", profile="-") == 0
    assert value(s, "llmrouter_tokens_total", provider="x", kind="input") == 0


def test_the_shared_store_shows_only_when_there_is_one() -> None:
    m = Metrics()
    m.set_shared({"backend": "local"})
    assert not [k for k in samples(m) if k[0] == "llmrouter_shared_state"]
    status = {"backend": "redis", "state": "unreachable", "instances": 2, "queue": 7,
              "dropped": 1, "failed": 0, "redis": "redis://:***@h:1/0"}  # fmt: skip
    m.set_shared(status)
    s = samples(m)
    got = {w: value(s, "llmrouter_shared_state", what=w)
           for w in ("connected", "instances", "queue", "dropped", "failed")}  # fmt: skip
    assert got == {"connected": 0, "instances": 2, "queue": 7, "dropped": 1, "failed": 0}
    assert b"redis://" not in m.render()  # the URL is no metric
    m.set_shared({"backend": "local"})  # (a status without a store clears them)
    assert not [k for k in samples(m) if k[0] == "llmrouter_shared_state"]
