"""End to end: the router's pages at llmrouter.invalid through a real mitmdump, over http and
https, with metric values that match a known sequence of attempts.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
from llmrouter.tools.fakeprovider import Behaviour, FakeProvider
from prometheus_client.parser import text_string_to_metric_families
from routerproc import RouterProc, curl, provider, wait_for

pytestmark = pytest.mark.e2e


def _get(r: RouterProc, url: str) -> tuple[int, str]:
    out = curl(r, url, "--proxy", r.proxy, "-w", "\n%{http_code}")  # curl: http_proxy only
    assert out.returncode == 0, out.stderr.decode()
    body, _, code = out.stdout.decode().rpartition("\n")
    return int(code), body


def _metrics(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    return {(s.name, frozenset(s.labels.items())): s.value
            for fam in text_string_to_metric_families(text) for s in fam.samples}  # fmt: skip


def test_pages_over_http_and_https(
    fakes: Callable[..., FakeProvider], origin: FakeProvider, router: Callable[..., RouterProc]
) -> None:
    first = fakes("first", default=Behaviour(kind="status", status=503))
    second = fakes("second")
    config = {
        "providers": {"first": provider(first), "second": provider(second)},
        "profiles": {
            "default": {"hosts": ["localhost"], "providers": ["first", "second"]},
            "solo": {"hosts": ["solo.localhost"], "providers": ["first"]},
        },
    }
    r = router(config)
    assert wait_for(lambda: _get(r, "http://llmrouter.invalid/healthz")[0] == 200, 10)
    # Known traffic: r1 fails over (first 503, then second); first is then cooling, so r2 goes
    # straight to second.
    url = origin.url.replace("127.0.0.1", "localhost") + "/v1/messages"
    messages = [{"role": "user", "content": "hi"}]
    payload = json.dumps({"model": "m", "max_tokens": 5, "messages": messages})
    for _ in range(2):
        out = curl(r, url, "-H", "content-type: application/json", "-d", payload)
        assert b"Hello from second" in out.stdout, out
    r.wait_lines(3)

    for scheme in ("http", "https"):
        code, body = _get(r, f"{scheme}://llmrouter.invalid/metrics")
        assert code == 200, body
        m = _metrics(body)
        total = "llmrouter_attempts_total"
        assert m[total, frozenset({("profile", "default"), ("provider", "first"),
                                   ("outcome", "http_error")})] == 1  # fmt: skip
        assert m[total, frozenset({("profile", "default"), ("provider", "second"),
                                   ("outcome", "ok")})] == 2  # fmt: skip
        assert m["llmrouter_failovers_total", frozenset({("profile", "default")})] == 1
        assert m["llmrouter_provider_state", frozenset({("provider", "first"),
                                                        ("state", "cooling")})] == 1  # fmt: skip
        assert m["llmrouter_attempt_seconds_count", frozenset({("provider", "second")})] == 2

        code, body = _get(r, f"{scheme}://llmrouter.invalid/healthz")
        detail = json.loads(body)
        assert code == 503 and detail["profiles"]["default"]["usable"] == ["second"]
        assert detail["reason"].startswith("profile solo: no usable provider (first cooling ")

        code, body = _get(r, f"{scheme}://llmrouter.invalid/status")
        status = json.loads(body)
        assert code == 200 and status["healthy"] is False
        states = {p["name"]: (p["state"], p["last_error"]) for p in status["providers"]}
        assert states == {"first": ("cooling", "server"), "second": ("healthy", None)}

    # A load balancer's check or a scraper, straight to the proxy's own port (no proxy).
    for path, want in (("/healthz", 503), ("/metrics", 200)):
        out = subprocess.run(["curl", "-sS", "-w", "\n%{http_code}", r.proxy + path],
                             capture_output=True, timeout=30, check=False,
                             env={"PATH": "/usr/bin:/bin"})  # fmt: skip
        body, _, code = out.stdout.decode().rpartition("\n")
        assert int(code) == want, out
    assert _metrics(body)["llmrouter_failovers_total", frozenset({("profile", "default")})] == 1


def test_pages_without_tls_trust_fail_clearly(
    router: Callable[..., RouterProc], tmp_path: Path
) -> None:
    config = {
        "providers": {"a": provider("http://127.0.0.1:9")},
        "profiles": {"default": {"hosts": ["localhost"], "providers": ["a"]}},
    }
    r = router(config)
    # curl with only the public roots: the proxy's certificate for llmrouter.invalid is refused.
    out = subprocess.run(
        ["curl", "-sS", "--proxy", r.proxy, "https://llmrouter.invalid/healthz"],
        capture_output=True, timeout=30, check=False, env={"PATH": "/usr/bin:/bin"},
    )  # fmt: skip
    assert out.returncode == 60, out  # SSL certificate problem


def test_tls_hint_once_per_client(router: Callable[..., RouterProc], origin: FakeProvider) -> None:
    config = {
        "providers": {"a": provider("http://127.0.0.1:9")},
        "profiles": {"default": {"hosts": ["localhost"], "providers": ["a"]}},
    }
    r = router(config)
    url = origin.url.replace("127.0.0.1", "localhost") + "/v1/messages"
    for _ in range(2):  # curl with the public roots only: it refuses the router's certificate
        out = subprocess.run(["curl", "-sS", "--proxy", r.proxy, "-d", "{}", url],
                             capture_output=True, timeout=30, check=False,
                             env={"PATH": "/usr/bin:/bin"})  # fmt: skip
        assert out.returncode == 60, out
    assert wait_for(lambda: "broke off TLS for localhost" in r.output(), 10)
    log = r.output()
    assert log.count("router: client 127.0.0.1 broke off TLS for localhost") == 1
    assert f"NODE_EXTRA_CA_CERTS={r.conf}/mitmproxy-ca-cert.pem" in log
