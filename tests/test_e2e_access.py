"""End to end, one router for a team: `access` users authenticate every connection and request,
pick profiles only within their set, and spend within their budgets and request rates; the
router refuses to listen beyond loopback without users. Real mitmdump, real SDKs, curl and
httpx2, fake providers on 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import json
import re
import ssl
import subprocess
import sys
from typing import Any

import anthropic
import httpx2
import openai
import pytest
from llmrouter.access import hash_token, new_token
from llmrouter.tools.fakeprovider import Behaviour
from routerproc import (
    RouterProc,
    anthropic_client,
    curl,
    on_localhost,
    openai_client,
    provider,
    wait_for,
)

pytestmark = pytest.mark.e2e

ALICE, BOB = new_token(), new_token()
MSG: dict[str, Any] = {"model": "claude-test", "max_tokens": 3000,
                       "messages": [{"role": "user", "content": "hi"}]}  # fmt: skip
CENT = Behaviour(output_tokens=3000)  # at $1 per million output tokens: $0.003 a request
PRICE = {"input": 0, "output": 1}


def team(fake_a: Any, fake_b: Any | None = None, alice: dict[str, Any] | None = None,
         **users: Any) -> dict[str, Any]:  # fmt: skip
    """Profiles default (provider a) and work (b), both on localhost; alice may use default,
    bob both."""
    b = fake_b or fake_a
    return {
        "providers": {"a": provider(fake_a, price=PRICE), "b": provider(b, price=PRICE),
                      "oa": provider(fake_a, "openai", price=PRICE)},
        "profiles": {"default": {"hosts": ["localhost"], "providers": ["a", "oa"]},
                     "work": {"hosts": ["localhost"], "providers": ["b"]}},
        "access": {"users": {
            "alice": {"token_sha256": hash_token(ALICE), "profiles": ["default"],
                      **(alice or {})},
            "bob": {"token_sha256": hash_token(BOB), "profiles": ["default", "work"]},
            **users,
        }},
    }  # fmt: skip


def connect_code(r: RouterProc, url: str, user: str | None = None, **kw: Any) -> bytes:
    """The status the proxy gave curl's CONNECT (000 when none)."""
    out = curl(r, url, "-w", "\n%{http_connect}", user=user, **kw)
    return out.stdout.rsplit(b"\n", 1)[-1]


def proxy(r: RouterProc, user: str | None) -> str:
    """For curl's plain-HTTP requests: curl reads only a lower-case http_proxy."""
    return r.env(user)["HTTP_PROXY"]


def error_of(e: anthropic.APIStatusError | openai.APIStatusError) -> Any:
    return json.loads(e.response.content)["error"]


# -- authentication ---------------------------------------------------------------------------


def test_no_or_wrong_credentials_get_407_everywhere(fakes, origin, router, test_ca) -> None:
    a = fakes("a")
    other = fakes("other", ssl_context=test_ca.server_context())  # a pass-through TLS host
    plain = fakes("plain")  # a pass-through plain-HTTP host
    r = router(team(a))
    api = on_localhost(origin) + "/v1/messages"
    for user in (None, f"alice:{BOB}", "alice:not-the-token", f"mallory:{ALICE}"):
        assert connect_code(r, api, user) == b"407", user  # intercepted
        assert connect_code(r, other.url + "/x", user, cacert=test_ca.ca_pem) == b"407", user
        out = curl(r, plain.url + "/x", "-i", "--proxy", proxy(r, user))  # absolute-form
        assert out.stdout.startswith(b"HTTP/1.1 407"), out
        assert b'proxy-authenticate: Basic realm="llmrouter"' in out.stdout.lower().replace(
            b"basic", b"Basic")  # fmt: skip
    with pytest.raises(anthropic.APIConnectionError):  # httpx: the CONNECT was refused
        anthropic_client(r, origin).messages.create(**MSG)
    assert not a.requests and not other.requests and not plain.requests and r.lines() == []
    # The right token: routed, and pass-through hosts work as ever.
    raw = anthropic_client(r, origin, user=f"alice:{ALICE}").messages.with_raw_response
    assert raw.create(**MSG).headers["x-router-profile"] == "default"
    assert connect_code(r, other.url + "/x", f"alice:{ALICE}", cacert=test_ca.ca_pem) == b"200"
    assert (
        b'"origin": "plain"' in curl(r, plain.url + "/x", "--proxy", proxy(r, f"bob:{BOB}")).stdout
    )
    assert [line["user"] for line in r.wait_lines(1)] == ["alice"]
    for q in a.requests + other.requests + plain.requests:
        assert "proxy-authorization" not in q.headers


def test_a_profile_outside_the_users_set_is_403(fakes, origin, router) -> None:
    a, b = fakes("a"), fakes("b")
    r = router(team(a, b))
    with pytest.raises(anthropic.PermissionDeniedError) as exc:
        anthropic_client(r, origin, user=f"alice+work:{ALICE}").messages.create(**MSG)
    assert "user alice may not use profile 'work'" in error_of(exc.value)["message"]
    with pytest.raises(openai.PermissionDeniedError) as exc2:  # the header, in OpenAI's format
        openai_client(r, origin, user=f"alice:{ALICE}").chat.completions.create(
            model="gpt-test", messages=[{"role": "user", "content": "hi"}],
            extra_headers={"X-Router-Profile": "work"})  # fmt: skip
    assert error_of(exc2.value)["code"] == "forbidden_profile"
    bob = anthropic_client(r, origin, user=f"bob+work:{BOB}").messages.with_raw_response
    assert bob.create(**MSG).headers["x-router-profile"] == "work"
    assert not a.requests and len(b.requests) == 1


def test_a_revoked_users_open_connection_is_refused_on_its_next_request(
    fakes, origin, router
) -> None:
    a = fakes("a")
    cfg = team(a)
    r = router(cfg)
    url = on_localhost(origin) + "/v1/messages"
    headers = {"x-api-key": "client-key", "anthropic-version": "2023-06-01"}
    keep = httpx2.Limits(keepalive_expiry=60)  # the connection outlives the reload
    trust = ssl.create_default_context(cafile=str(r.bundle))
    with httpx2.Client(proxy=f"http://alice:{ALICE}@127.0.0.1:{r.port}", verify=trust,
                       timeout=30, limits=keep, trust_env=False) as client:  # fmt: skip
        assert client.post(url, json=MSG, headers=headers).status_code == 200
        del cfg["access"]["users"]["alice"]
        r.write_config(cfg)
        assert wait_for(lambda: "router: reloaded" in r.output(), 10)
        refused = client.post(url, json=MSG, headers=headers)  # the same keep-alive connection
    assert refused.status_code == 407 and refused.headers["connection"] == "close"
    assert refused.headers["proxy-authenticate"] == 'Basic realm="llmrouter"'
    assert refused.json()["error"]["type"] == "authentication_error"
    assert len(a.requests) == 1
    r.stop()
    flows = [f for f in r.flows() if f.request.path == "/v1/messages"]
    assert len(flows) == 2 and flows[0].client_conn.id == flows[1].client_conn.id


# -- budgets and rates ------------------------------------------------------------------------


def test_a_cent_budget_admits_exactly_three_in_sequence_and_survives_a_restart(
    fakes, origin, router
) -> None:
    a = fakes("a", default=CENT)
    r = router(team(a, alice={"limits": {"usd_per_month": 0.01}}))
    client = anthropic_client(r, origin, user=f"alice:{ALICE}")
    for _ in range(3):
        client.messages.create(**MSG)
    with pytest.raises(anthropic.RateLimitError) as exc:
        client.messages.create(**MSG)
    h = exc.value.response.headers
    assert 0 < int(h["retry-after"]) <= 31 * 86400 and h["x-router-limit"] == "usd_per_month"
    assert h["x-should-retry"] == "false"
    msg = error_of(exc.value)["message"]
    assert "usd_per_month budget $0.01 reached ($0.009 spent" in msg and "resets in" in msg
    lines = r.wait_lines(3)
    assert [(ln["user"], ln["cost_usd"]) for ln in lines] == [("alice", 0.003)] * 3
    assert len(a.requests) == 3
    report = subprocess.run([sys.executable, "-m", "llmrouter.report", str(r.jsonl_path)],
                            capture_output=True, text=True, timeout=60, check=True)  # fmt: skip
    assert re.search(r"^Users\n", report.stdout, re.M), report.stdout
    assert re.search(r"^alice\s+3\s+3\s+0\s+\S+\s+9,000\s+\$0\.0090$", report.stdout, re.M)
    # The spend is rebuilt from the journal: still spent after a restart.
    r.stop()
    r.start()
    with pytest.raises(anthropic.RateLimitError):
        anthropic_client(r, origin, user=f"alice:{ALICE}").messages.create(**MSG)
    assert len(a.requests) == 3
    out = subprocess.run(["curl", "-sS", "-u", f"alice:{ALICE}", r.proxy + "/status"],
                         capture_output=True, timeout=30, check=True)  # fmt: skip
    (alice,) = [u for u in json.loads(out.stdout)["users"] if u["name"] == "alice"]
    assert alice["month_usd"] == pytest.approx(0.009)
    assert alice["limits"]["usd_per_month"]["left_usd"] == pytest.approx(0.001)


def test_a_cent_budget_admits_exactly_three_of_ten_concurrent_clients(
    fakes, origin, router
) -> None:
    a = fakes("a", default=Behaviour(output_tokens=3000, delay=0.3))  # all ten in flight at once
    r = router(team(a, alice={"limits": {"usd_per_month": 0.01}}))

    async def one() -> int:
        client = anthropic_client(r, origin, user=f"alice:{ALICE}", aio=True)
        try:
            await client.messages.create(**MSG)
            return 200
        except anthropic.RateLimitError as e:
            assert int(e.response.headers["retry-after"]) > 0
            return 429
        finally:
            await client.close()

    async def ten() -> list[int]:
        return await asyncio.gather(*(one() for _ in range(10)))

    assert sorted(asyncio.run(ten())) == [200] * 3 + [429] * 7
    assert len(a.requests) == 3
    with pytest.raises(anthropic.RateLimitError) as exc:  # settled: now the budget is spent
        anthropic_client(r, origin, user=f"alice:{ALICE}").messages.create(**MSG)
    assert "reached" in error_of(exc.value)["message"]
    assert len(r.wait_lines(3)) == 3


def test_rpm_five_refuses_the_sixth_request_in_the_minute(fakes, origin, router) -> None:
    a = fakes("a")
    r = router(team(a, alice={"limits": {"rpm": 5}}))
    client = openai_client(r, origin, user=f"alice:{ALICE}")
    chat = {"model": "gpt-test", "messages": [{"role": "user", "content": "hi"}]}
    for _ in range(5):
        client.chat.completions.create(**chat)
    with pytest.raises(openai.RateLimitError) as exc:
        client.chat.completions.create(**chat)
    err = error_of(exc.value)
    assert err["code"] == "rate_limit_exceeded" and "rpm limit 5" in err["message"]
    h = exc.value.response.headers
    assert 0 < int(h["retry-after"]) <= 60 and h["x-should-retry"] == "true"
    assert h["x-router-limit"] == "rpm" and len(a.requests) == 5


# -- pages -------------------------------------------------------------------------------------


def test_healthz_is_open_and_status_needs_a_user(fakes, router) -> None:
    r = router(team(fakes("a")))

    def get(*args: str) -> tuple[int, bytes]:
        out = subprocess.run(["curl", "-sS", "-w", "\n%{http_code}", *args], capture_output=True,
                             timeout=30, check=False, env={"PATH": "/usr/bin:/bin"})  # fmt: skip
        body, _, code = out.stdout.rpartition(b"\n")
        return int(code), body

    assert get(r.proxy + "/healthz")[0] == 200  # a load balancer
    assert get("--proxy", r.proxy, "http://llmrouter.invalid/healthz")[0] == 200
    assert get(r.proxy + "/status")[0] == 401
    assert get(r.proxy + "/metrics")[0] == 401
    assert get("--proxy", r.proxy, "http://llmrouter.invalid/status")[0] == 407
    assert get("-u", f"bob:{BOB}", r.proxy + "/metrics")[0] == 200  # a scraper's basic_auth
    code, body = get("--proxy", f"http://bob:{BOB}@127.0.0.1:{r.port}",
                     "http://llmrouter.invalid/status")  # fmt: skip
    assert code == 200 and {u["name"] for u in json.loads(body)["users"]} == {"alice", "bob"}


# -- safe by default ---------------------------------------------------------------------------


def test_a_non_loopback_address_without_users_refuses_to_start(fakes, router) -> None:
    cfg = team(fakes("a"))
    del cfg["access"]
    # 192.0.2.1 (TEST-NET-1) is on no interface here: even a broken check could not expose it.
    r = router(cfg, "--listen-host", "192.0.2.1", wait=False)
    assert r.wait_exit() == 1
    out = r.output()
    assert "refusing to listen on '192.0.2.1' without `access` users" in out
    assert "python -m llmrouter.access add NAME --profiles" in out
    assert "proxy listening" not in out
