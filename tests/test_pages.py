"""The router's own pages at llmrouter.invalid: status, health and metrics from router state."""

from __future__ import annotations

import json
import re
import time
from collections.abc import AsyncIterator

import aiohttp
import pytest
from llmrouter.config import parse_config
from llmrouter.proxy.dispatch import Engine, provider_key
from llmrouter.proxy.metrics import Metrics
from llmrouter.proxy.pages import (
    ALLOW_PATTERN,
    HOST,
    Pages,
    ProfileStatus,
    ProviderStatus,
    Status,
    allow_hosts_with_pages,
    answer,
    health,
    status_of,
)
from llmrouter.wire.outcome import Failure
from mitmproxy.proxy.mode_specs import ProxyMode
from mitmproxy.test import tflow
from test_metrics import SEQUENCE

CONFIG = {
    "providers": {
        "a": {"base_url": "https://a.example", "api": "anthropic"},
        "b": {"base_url": "https://b.example", "api": "anthropic"},
        "off": {"base_url": "https://off.example", "api": "openai", "enabled": False},
    },
    "profiles": {
        "default": {"hosts": ["api.anthropic.com"], "providers": ["a", "b"]},
        "solo": {"hosts": ["api.openai.com"], "providers": ["off"]},
    },
}


@pytest.fixture
async def engine() -> AsyncIterator[Engine]:
    async with aiohttp.ClientSession() as session:
        eng = Engine(session, lambda record: None)
        yield eng


def _status(*states: tuple[str, str], cooldown: float = 0.0) -> Status:
    providers = [ProviderStatus(n, "anthropic", s != "disabled", s, cooldown, None, 0, 0)
                 for n, s in states]  # fmt: skip
    return Status(providers, [ProfileStatus("p", "failover", ["h"], [n for n, _ in states])])


async def test_status_of_a_running_engine(engine: Engine) -> None:
    cfg = parse_config(CONFIG, env={})
    engine.apply_config(cfg)
    now = time.monotonic()
    key = provider_key("a", cfg.providers["a"])
    engine.health.record(key, now, Failure.SERVER)  # a: cooling 10 s after a 5xx
    st = status_of(cfg, engine, pending=2, config="/etc/profiles.yaml", now=now + 1)
    a, b, off = st.providers
    assert (a.name, a.state, a.cooldown_s, a.last_error) == ("a", "cooling", 9.0, "server")
    assert (a.attempts_5m, a.failures_5m) == (1, 1)
    assert (b.state, b.cooldown_s, b.attempts_5m) == ("healthy", 0.0, 0)
    assert (off.state, off.enabled, off.api) == ("disabled", False, "openai")
    assert [p.name for p in st.profiles] == ["default", "solo"]
    assert (st.streams_in_flight, st.upstream_connections, st.config) == (
        2, 0, "/etc/profiles.yaml")  # fmt: skip
    ok, detail = health(st)
    assert not ok  # "solo" has only a disabled provider
    assert detail["profiles"]["default"] == {"ok": True, "usable": ["b"]}
    assert detail["reason"] == "profile solo: no usable provider (off disabled)"


def test_health_reasons() -> None:
    assert health(_status(("a", "healthy"), ("b", "cooling")))[0]
    assert health(_status(("a", "probing")))[0]  # cooldown over, being probed
    ok, detail = health(_status(("a", "cooling"), ("b", "disabled"), cooldown=42.4))
    assert not ok
    assert detail["reason"] == "profile p: no usable provider (a cooling 42s more, b disabled)"
    ok, detail = health(None)
    assert not ok and "not running" in detail["reason"]


def test_pages_serve() -> None:
    metrics = Metrics()
    metrics.observe_all(SEQUENCE)
    pages = Pages(metrics)
    good = _status(("a", "healthy"), ("b", "cooling"), cooldown=5.0)
    bad = _status(("a", "cooling"), cooldown=30.0)

    page = pages.serve("GET", "/healthz", good)
    assert page.status == 200 and json.loads(page.body)["ok"] is True
    assert ("cache-control", "no-store") in page.headers
    page = pages.serve("GET", "/healthz?verbose=1", bad)
    assert page.status == 503
    assert json.loads(page.body)["reason"] == "profile p: no usable provider (a cooling 30s more)"
    assert pages.serve("GET", "/healthz", None).status == 503

    page = pages.serve("GET", "/status", good)
    body = json.loads(page.body)
    assert page.status == 200 and ("content-type", "application/json") in page.headers
    assert body["healthy"] is True
    assert [(p["name"], p["state"]) for p in body["providers"]] == [("a", "healthy"),
                                                                    ("b", "cooling")]  # fmt: skip
    assert body["profiles"][0]["providers"] == ["a", "b"]
    assert pages.serve("GET", "/status", None).status == 503

    page = pages.serve("GET", "/metrics", bad)
    text = page.body.decode()
    assert page.status == 200 and dict(page.headers)["content-type"].startswith("text/plain")
    assert 'llmrouter_provider_state{provider="a",state="cooling"} 1.0' in text
    assert 'llmrouter_failovers_total{profile="work"} 2.0' in text
    assert re.search(r"^llmrouter_streams_in_flight 0\.0$", text, re.M)

    assert pages.serve("GET", "/", None).body.startswith(b"llmrouter\n")
    page = pages.serve("GET", "/nope", good)
    assert page.status == 404 and json.loads(page.body)["pages"] == [
        "/status", "/healthz", "/metrics"]  # fmt: skip
    page = pages.serve("POST", "/healthz", good)
    assert page.status == 405 and ("allow", "GET, HEAD") in page.headers


def test_answer_only_the_reserved_host() -> None:
    pages = Pages(Metrics())
    f = tflow.tflow()
    f.request.host, f.request.path = HOST, "/healthz"
    assert answer(f, pages, lambda: _status(("a", "healthy")))
    assert f.response is not None and f.response.status_code == 200
    assert f.response.headers["content-type"] == "application/json"
    other = tflow.tflow()
    other.request.host = "api.anthropic.com"
    assert not answer(other, pages, lambda: None) and other.response is None
    served = tflow.tflow(resp=True)  # another addon answered first
    served.request.host = HOST
    assert not answer(served, pages, lambda: None)


def test_answer_requests_to_the_proxys_own_address() -> None:
    """A load balancer's `GET http://10.0.0.5:8080/healthz` (no proxy): mitmproxy would refuse it
    as a loop to itself, so the pages answer it."""
    pages = Pages(Metrics())
    f = tflow.tflow()
    f.client_conn.sockname = ("10.0.0.5", 8080)
    f.request.host, f.request.port, f.request.path = "10.0.0.5", 8080, "/healthz"
    assert answer(f, pages, lambda: _status(("a", "healthy")))
    assert f.response is not None and f.response.status_code == 200
    local = tflow.tflow()
    local.client_conn.sockname = ("127.0.0.1", 8080)
    local.request.host, local.request.port, local.request.path = "localhost", 8080, "/metrics"
    assert answer(local, pages, lambda: None) and local.response is not None
    for host, port in (("10.0.0.5", 443), ("example.com", 8080)):  # elsewhere: proxied as ever
        other = tflow.tflow()
        other.client_conn.sockname = ("10.0.0.5", 8080)
        other.request.host, other.request.port = host, port
        assert not answer(other, pages, lambda: None) and other.response is None
    reverse = tflow.tflow()
    reverse.client_conn.proxy_mode = ProxyMode.parse("reverse:http://127.0.0.1:9")
    reverse.client_conn.sockname = ("10.0.0.5", 8080)
    reverse.request.host, reverse.request.port = "10.0.0.5", 8080
    assert not answer(reverse, pages, lambda: None)


def test_allow_hosts_pattern() -> None:
    assert re.fullmatch(ALLOW_PATTERN, f"{HOST}:443") and re.fullmatch(ALLOW_PATTERN, f"{HOST}:80")
    assert not re.fullmatch(ALLOW_PATTERN, f"x{HOST}:443")
    base = [r"^api\.anthropic\.com:\d+$"]
    assert allow_hosts_with_pages(base) == [*base, ALLOW_PATTERN]
    assert allow_hosts_with_pages([*base, ALLOW_PATTERN]) == [*base, ALLOW_PATTERN]
