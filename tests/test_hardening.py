"""The smaller hardening fixes, each in process: bounded tables, what status, explain and the
comment print, the JSONL file's mode and encoding, the handoff's header timeout, proxy users,
router_profile, the size options, redirects, and what the flow display says was sent."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import stat
import time
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml
from addonctx import router_taddons
from llmrouter.config import parse_config
from llmrouter.proxy import views
from llmrouter.proxy.addon import Router
from llmrouter.proxy.attempt import Attempt, Ctx
from llmrouter.proxy.dispatch import Answer, Engine, Request, provider_key
from llmrouter.proxy.exchange import Exchange
from llmrouter.proxy.handoff import Handoff
from llmrouter.proxy.intake import MALFORMED_USER
from llmrouter.proxy.intake import proxy_user as _proxy_user
from llmrouter.proxy.journal import Journal
from llmrouter.routing import pricing
from llmrouter.state.latency import LatencyBook
from llmrouter.wire.outcome import Failure, Outcome, classify_status
from mitmproxy import exceptions

# -- bounded tables, small status ------------------------------------------------------------


def test_the_latency_book_keeps_the_most_recently_used_series() -> None:
    lb = LatencyBook(max_series=100)
    for i in range(1000):
        lb.record_ok("a", f"model-{i}", True, float(i), ttft_ms=1.0)
    assert len(lb) == 100 and lb.get("a", "model-0", True) is None
    assert lb.get("a", "model-999", True) is not None
    lb.get("a", "model-900", True)  # used: survives the next newcomer, unlike model-901
    lb.record_ok("a", "new", True, 2000.0, ttft_ms=1.0)
    assert lb.get("a", "model-900", True) is not None and lb.get("a", "model-901", True) is None
    summary = lb.summary("a", 5)
    assert len(summary) == 5 and "new ttft" in summary and lb.count("a") == 100


def test_price_lookups_are_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pricing, "MAX_LOOKUPS", 50)
    pricing._lookups.clear()
    for i in range(200):
        pricing.lookup(f"no-such-model-{i}")
    assert len(pricing._lookups) <= 50
    pricing._lookups.clear()


def attempt(model: str | None = "m", **kw: Any) -> Attempt:
    ctx = Ctx("f" * 16, "default", "failover", "anthropic", model, False, time.monotonic() + 60,
              candidates=["a", "b"], reason="failover: configured order")  # fmt: skip
    att = Attempt(ctx, 1, "a", "a http://x", False, model=model)
    for k, v in kw.items():
        setattr(att, k, v)
    return att


CFG = parse_config({
    "providers": {"a": {"base_url": "http://127.0.0.1:9", "api": "anthropic"},
                  "k": {"base_url": "http://127.0.0.1:9", "api": "anthropic", "api_key": "sk-k1"}},
    "profiles": {"default": {"hosts": ["x"], "providers": ["a", "k"]}},
}, {})  # fmt: skip


async def test_status_stays_small_with_many_hostile_model_names() -> None:
    async with aiohttp.ClientSession() as session:
        engine = Engine(session, lambda record: None)
        engine.apply_config(CFG)
        key = provider_key("a", CFG.providers["a"])
        for i in range(20_000):
            engine.latency.record_ok(key, f"m{i}\r\nforged \u202e" + "x" * 150, True, float(i),
                                     ttft_ms=5.0)  # fmt: skip
        text = views.status(CFG, engine, 0)  # was 120 MB and seconds of a blocked loop
    assert len(text) < 4000, len(text)
    assert "+2043 more" in text and "\r" not in text and "\u202e" not in text
    # header, one provider row, the bindings line, two counters: no line a model name forged
    assert "\\r\\nforged \\u202e" in text and len(text.splitlines()) == 6


def test_explain_and_summaries_read_right() -> None:
    broken = attempt(status=200, outcome=Outcome.CONNECT_ERROR, error="response body broken",
                     t_end=None)  # fmt: skip
    broken.end(Outcome.CONNECT_ERROR, "response body broken")
    assert broken.summary().startswith("a 200 connect_error ")
    assert broken.summary().endswith("ms (response body broken)")
    ok = attempt(status=200)
    ok.end(Outcome.OK, None)
    assert ok.summary().startswith("a 200 ") and "(" not in ok.summary()
    failed = attempt(status=503)
    failed.end(Outcome.HTTP_ERROR, "HTTP 503")
    assert failed.summary().startswith("a 503 ") and "(" not in failed.summary()
    answer = Answer(200, [], b"", attempts=[broken, ok], served_by=ok)
    text = views.explain("f" * 16, "default", answer, None)
    assert "strategy   failover: configured order\n" in text
    assert "failover: failover" not in text and "Nonems" not in text and "ttft -" in text


def test_comment_and_explain_escape_what_clients_and_providers_chose() -> None:
    att = attempt(model="claude\r\nrouter: forged \u202e")
    att.end(Outcome.INBAND_ERROR, "in-band x\ny")
    answer = Answer(502, [], b"", attempts=[att])
    for text in (views.comment("default", answer, "note\r\nforged"),
                 views.explain("f" * 16, "default", answer, None)):  # fmt: skip
        assert "\r" not in text and "\u202e" not in text and "forged" in text
        assert "\nrouter: forged" not in text


# -- the flow display and the request agree on the key ---------------------------------------


def test_the_display_shows_a_key_exactly_when_one_is_sent() -> None:
    exchange = Exchange(None, None, None, lambda *a: None)  # type: ignore[arg-type]
    req = Request("id", "POST", "/v1/messages", [("x-api-key", "client-key")], b"{}", {},
                  "anthropic", "anthropic")  # fmt: skip
    for name in ("a", "k"):
        prov = CFG.providers[name]
        sent = dict(exchange._request_headers(req, prov))
        att = attempt()
        att.provider, att.url, att.sent_body = name, "http://127.0.0.1:9/v1/messages", b"{}"
        shown = views.display_request(CFG, req, Answer(200, [], attempts=[att], served_by=att))
        assert shown is not None
        shown_headers = dict(shown[2])
        if name == "k":
            assert sent["x-api-key"] == "sk-k1" and shown_headers["x-api-key"] == views.REDACTED
        else:
            assert sent["x-api-key"] == shown_headers["x-api-key"] == "client-key"


# -- the JSONL file ---------------------------------------------------------------------------


def test_the_jsonl_is_created_private_and_takes_any_string(tmp_path: Path) -> None:
    path = tmp_path / "router.jsonl"
    j = Journal(path, max_bytes=200, backups=2)
    j.write({"model": "claude-\ud800", "error": "x\r\ny"})
    first = path.read_text().splitlines()[0]
    assert json.loads(first)["model"] == "claude-\ud800" and first.isascii()
    for _ in range(5):  # rotations create files too
        j.write({"pad": "x" * 150})
    j.close()
    assert len(list(tmp_path.iterdir())) == 3
    for p in tmp_path.iterdir():
        assert stat.S_IMODE(p.stat().st_mode) == 0o600, p
    old = tmp_path / "old.jsonl"
    old.write_text("")
    os.chmod(old, 0o644)
    Journal(old).close()
    assert stat.S_IMODE(old.stat().st_mode) == 0o600  # an older, readable file is tightened


# -- the handoff server -----------------------------------------------------------------------


async def test_the_handoff_closes_half_sent_requests() -> None:
    h = Handoff(header_timeout=0.3)
    await h.start()
    try:
        conns = [await asyncio.open_connection("127.0.0.1", h.port) for _ in range(20)]
        for _, w in conns:
            w.write(b"GET / HTTP/1.1\r\nHost: x\r\nx-router-handoff: ")  # never finished
            await w.drain()
        for r, _ in conns:  # each is closed by the server: EOF, well before the test's timeout
            assert await asyncio.wait_for(r.read(), 5) == b""
        for _, w in conns:
            w.close()
    finally:
        await h.stop()


# -- proxy users, router_profile, options -----------------------------------------------------


def basic(raw: bytes) -> str:
    return "Basic " + base64.b64encode(raw).decode()


def test_proxy_users() -> None:
    assert _proxy_user(basic(b"work:pw")) == "work"
    assert _proxy_user(basic(b"w\xf6rk:pw")) == "w\\xf6rk"  # not a profile: a 400, like any
    assert _proxy_user("Basic !!!not-base64") == MALFORMED_USER
    assert _proxy_user(basic(b":pw")) is None and _proxy_user(None) is None
    assert _proxy_user("Bearer xyz") is None


def write(tmp_path: Path, cfg: dict[str, Any]) -> str:
    path = tmp_path / "profiles.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return str(path)


NO_DEFAULT = {
    "providers": {"a": {"base_url": "http://127.0.0.1:9", "api": "anthropic"}},
    "profiles": {"main": {"hosts": ["x"], "providers": ["a"]}},
}


def test_router_profile_is_empty_by_default_and_checked_on_reload(tmp_path: Path) -> None:
    r = Router()
    with router_taddons(r) as tctx:
        tctx.configure(r, router_config=write(tmp_path, NO_DEFAULT))
        assert tctx.options.router_profile == "" and r.config is not None
        tctx.configure(r, router_profile="main")
        with pytest.raises(exceptions.OptionsError, match="no profile 'nope'; known: main"):
            tctx.configure(r, router_profile="nope")
        renamed = {**NO_DEFAULT, "profiles": {"other": NO_DEFAULT["profiles"]["main"]}}
        write(tmp_path, renamed)
        out = tctx.command(r.reload)
        assert out.startswith("not reloaded") and "router_profile: no profile 'main'" in out
        assert set(r.config.profiles) == {"main"}
        tctx.configure(r, router_profile="")
        assert tctx.command(r.reload).startswith("reloaded")


def test_size_options_must_be_positive(tmp_path: Path) -> None:
    r = Router()
    with router_taddons(r) as tctx:
        tctx.configure(r, router_config=write(tmp_path, NO_DEFAULT))
        assert (tctx.options.max_request_mb, tctx.options.max_response_mb) == (32, 64)
        for opt in ("max_request_mb", "max_response_mb"):
            with pytest.raises(exceptions.OptionsError, match=">= 1"):
                tctx.configure(r, **{opt: 0})


@pytest.mark.parametrize("status", [300, 301, 302, 303, 304, 307, 308])
def test_a_redirect_is_a_retryable_provider_failure(status: int) -> None:
    assert classify_status(status) == (Outcome.HTTP_ERROR, True, Failure.SERVER)
    assert classify_status(200) == (Outcome.OK, False, Failure.NONE)
