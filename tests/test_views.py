"""What people read: the flow's comment and mark, router.explain and router.status."""

from __future__ import annotations

from pathlib import Path

import pytest
from llmrouter.config import load_config
from llmrouter.proxy import pages, views
from llmrouter.proxy.attempt import Attempt, Ctx
from llmrouter.proxy.dispatch import Answer, Engine, provider_key
from llmrouter.wire.outcome import Outcome
from mitmproxy.utils import emoji


def _ctx(**kw: object) -> Ctx:
    c = Ctx("0123456789abcdef", "demo", "failover", "anthropic", "m", True, 0.0)
    c.candidates, c.reason = ["flaky", "steady"], "failover: configured order"
    for k, v in kw.items():
        setattr(c, k, v)
    return c


def _attempt(c: Ctx, n: int, provider: str, status: int | None, outcome: Outcome, ms: float,
             error: str | None = None) -> Attempt:  # fmt: skip
    a = Attempt(c, n, provider, f"{provider} http://x", False, t0=0.0)
    a.status, a.model = status, "m"
    a.end(outcome, error, ended=ms / 1000)
    return a


def _failover(c: Ctx) -> Answer:
    flaky = _attempt(c, 1, "flaky", 529, Outcome.HTTP_ERROR, 2)
    steady = _attempt(c, 2, "steady", 200, Outcome.OK, 725)
    return Answer(200, [], attempts=[flaky, steady], served_by=steady)


def test_comment_leads_with_the_outcome_chain_and_ends_with_profile_and_strategy() -> None:
    answer = _failover(_ctx())
    assert views.comment("demo", answer, None) == "flaky 529 2ms → steady 200 725ms · demo/failover"
    assert views.failed_over(answer)


def test_comment_adds_skips_and_notes_after_the_profile() -> None:
    c = _ctx(skipped=[{"provider": "cold", "reason": "cooling 3s"}])
    note = "profile 'ip' does not serve localhost"
    assert views.comment("demo", _failover(c), note) == (
        "flaky 529 2ms → steady 200 725ms · demo/failover · skipped cold: cooling 3s · " + note
    )
    failed = Answer(502, [], attempts=[_attempt(_ctx(), 1, "a", None, Outcome.CONNECT_ERROR, 3,
                                                "connection refused")])  # fmt: skip
    assert views.comment("demo", failed, None) == (
        "a connect_error 3ms (connection refused) · demo/failover"
    )
    assert views.comment("demo", Answer(502, []), None) == "no attempt · demo/?"


def test_the_failover_mark_is_drawn_without_an_emoji_font() -> None:
    # mitmweb maps the mark through mitmproxy's emoji table; unknown marks become a red circle.
    assert emoji.emoji[views.FAILOVER_MARK] == "↪"  # U+21AA, in DejaVu and other text fonts


def test_explain_has_no_doubled_strategy_and_no_none() -> None:
    c = _ctx()
    failed = _attempt(c, 1, "flaky", None, Outcome.TIMEOUT, 1000, "first_byte_timeout")
    text = views.explain(c.request_id, "demo", Answer(504, [], attempts=[failed]), None)
    assert "strategy   failover: configured order\n" in text
    assert "failover: failover" not in text and "None" not in text
    assert "ttfb -  ttft -  total 1000ms" in text
    c2 = _ctx(strategy="weighted", reason="75% share of a")  # a reason without its strategy
    ok = _attempt(c2, 1, "a", 200, Outcome.OK, 10)
    assert "strategy   weighted: 75% share of a\n" in views.explain("x", "d", Answer(200, [],
        attempts=[ok], served_by=ok), None)  # fmt: skip


@pytest.fixture
def engine_and_config(tmp_path: Path) -> tuple[Engine, object]:
    path = tmp_path / "profiles.yaml"
    path.write_text(
        "providers:\n  slowish: {base_url: 'http://127.0.0.1:9', api: anthropic}\n"
        "profiles:\n  default: {hosts: [localhost], providers: [slowish]}\n"
    )
    cfg = load_config(str(path))

    class _Session:  # upstream.in_use reads the connector; no aiohttp session is needed here
        connector = None

    engine = Engine(_Session(), lambda record: None)  # type: ignore[arg-type]
    engine.apply_config(cfg)
    return engine, cfg


def test_status_shows_measured_latency_and_the_penalties_apart(engine_and_config) -> None:
    """A provider whose streams took ~301 ms and then failed: status says 301 ms measured, and
    the penalties that rank it for least-latency apart (never `ttft 90302 ms`)."""
    engine, cfg = engine_and_config
    key = provider_key("slowish", cfg.providers["slowish"])
    for t, ttft in enumerate((295.0, 301.0, 306.0)):
        engine.latency.record_ok(key, "m", True, float(t), ttft_ms=ttft)
    for t in range(4):
        engine.latency.record_failure(key, "m", True, 10.0 + t)
    text = views.status(cfg, engine, 0)
    ranked = engine.latency.get(key, "m", True).p50  # type: ignore[union-attr]
    assert f"m ttft 301 ms (3 ok) + 4 failed: ranked {ranked:.0f} ms" in text
    lat = pages.status_of(cfg, engine).providers[0].latency["m ttft"]
    assert lat == {"p50_ms": 301.0, "samples": 3, "failure_penalties": 4,
                   "ranked_p50_ms": round(ranked, 1)}  # fmt: skip


def test_a_translated_answer_says_so_and_the_configs_api_skips_stay_out_of_the_comment() -> None:
    c = _ctx(skipped=[{"provider": "gpt", "reason": "credentials",
                       "detail": "openai provider without api_key; the client's key is for "
                       "anthropic"}])  # fmt: skip
    answer = _failover(c)
    steady = answer.attempts[1]
    steady.api, steady.translated = "openai", True
    assert views.comment("demo", answer, None) == (
        "flaky 529 2ms → steady 200 725ms · demo/failover · translated anthropic → openai"
    )
    text = views.explain("f1", "demo", answer, None)
    assert "skipped    gpt: credentials (openai provider without api_key" in text
    assert "translated: anthropic request, openai provider" in text
    assert steady.record()["api"] == "openai" and steady.record()["translated"] is True
    assert answer.attempts[0].record()["api"] == "anthropic"  # the request's, untranslated
