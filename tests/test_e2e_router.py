"""End to end, the router's contract beyond one failover: all candidates failing, final answers,
pass-through, profile choice, key handling, the JSONL contract, start-up validation, concurrency
and what mitmweb shows. Real mitmdump, real SDKs and curl, fakes on 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import base64
import json
import re
import subprocess
import time
from datetime import UTC, datetime
from typing import Any

import anthropic
import openai
import pytest
from llmrouter.access import hash_token, new_token
from llmrouter.tools._fakepayloads import split_text
from llmrouter.tools.fakeprovider import Behaviour
from routerproc import (
    RouterProc,
    anthropic_client,
    curl,
    free_port,
    on_localhost,
    openai_client,
    provider,
)

pytestmark = pytest.mark.e2e

MSG: dict[str, Any] = {"model": "claude-test", "max_tokens": 50,
                       "messages": [{"role": "user", "content": "hi"}]}  # fmt: skip
CHAT: dict[str, Any] = {"model": "gpt-test", "messages": [{"role": "user", "content": "hi"}]}
FAST = {"first_byte_timeout": 1, "response_timeout": 1}


def refused_url() -> str:
    return f"http://127.0.0.1:{free_port()}"


def config(providers: dict[str, Any], *order: str, **profile: Any) -> dict[str, Any]:
    prof = {"hosts": ["localhost"], "providers": list(order or providers), **profile}
    return {"providers": providers, "profiles": {"default": prof}}


def error_json(e: anthropic.APIStatusError | openai.APIStatusError) -> Any:
    return json.loads(e.response.content)


# -- all candidates fail --------------------------------------------------------------------


def test_all_http_errors_give_the_last_answer(fakes, origin, router) -> None:
    first = fakes("first", default=Behaviour(kind="status", status=503))
    limited = Behaviour(kind="status", status=429, headers={"retry-after": "7", "x-fake": "2"})
    second = fakes("second", default=limited)
    r = router(config({"first": provider(first), "second": provider(second)}))
    with pytest.raises(anthropic.RateLimitError) as exc:
        anthropic_client(r, origin).messages.create(**MSG)
    e = exc.value
    assert e.status_code == 429
    assert e.response.headers["retry-after"] == "7" and e.response.headers["x-fake"] == "2"
    assert e.response.headers["x-router-attempts"] == "2"
    assert error_json(e) == {"type": "error", "error": {"type": "rate_limit_error",
                             "message": "Too Many Requests (fake provider second)"}}  # fmt: skip
    # a stream with the openai SDK; the last HTTP answer even when a refusal came after it
    oa = fakes("oa", default=Behaviour(kind="status", status=503))
    r2 = router(config({"oa": provider(oa, "openai"), "dead": provider(refused_url(), "openai")}))
    with pytest.raises(openai.InternalServerError) as exc2:
        openai_client(r2, origin).chat.completions.create(stream=True, **CHAT)
    assert exc2.value.status_code == 503 and "retry-after" in exc2.value.response.headers
    assert error_json(exc2.value)["error"]["message"] == "Service Unavailable (fake provider oa)"
    assert [x["outcome"] for x in r2.wait_lines(2)] == ["http_error", "connect_error"]
    assert not origin.requests


@pytest.mark.parametrize("api", ["anthropic", "openai"])
def test_no_http_answer_gives_502_or_504_in_api_format(api, fakes, origin, router) -> None:
    hang = fakes("hanger", default=Behaviour(kind="hang"))
    refused = refused_url()
    keyed = {"api_key": "${SECRET_KEY}", **FAST}
    providers = {"dead": provider(refused, api, **keyed), "slow": provider(hang, api, **keyed)}
    if api == "anthropic":  # refused + timed out -> 502
        r = router(config(providers), env={"SECRET_KEY": "sk-never-shown-1234"})
        with pytest.raises(anthropic.InternalServerError) as exc:
            anthropic_client(r, origin).messages.create(**MSG)
        body = error_json(exc.value)
        assert exc.value.status_code == 502
        assert set(body) == {"type", "error"} and body["type"] == "error"
        assert body["error"]["type"] == "api_error"
        msg = body["error"]["message"]
        assert re.search(r"dead connect_error \d+ms", msg), msg
        assert re.search(r"slow timeout \d+ms", msg), msg
    else:  # only timeouts -> 504
        providers["dead"] = provider(hang, api, **keyed)
        r = router(config(providers), env={"SECRET_KEY": "sk-never-shown-1234"})
        with pytest.raises(openai.InternalServerError) as exc2:
            openai_client(r, origin).chat.completions.create(**CHAT)
        body = error_json(exc2.value)
        assert exc2.value.status_code == 504
        assert {"message", "type", "code"} <= set(body["error"])
        msg = body["error"]["message"]
        assert re.search(r"dead timeout \d+ms", msg) and re.search(r"slow timeout \d+ms", msg)
    assert "sk-never-shown" not in json.dumps(body)
    lines = r.wait_lines(2)
    assert [(x["provider"], x["final"]) for x in lines] == [("dead", False), ("slow", False)]


def test_a_400_is_not_retried(fakes, origin, router) -> None:
    first = fakes("first", default=Behaviour(kind="status", status=400))
    second = fakes("second")
    r = router(config({"first": provider(first), "second": provider(second)}))
    with pytest.raises(anthropic.BadRequestError):
        anthropic_client(r, origin).messages.create(**MSG)
    lines = r.wait_lines(1)
    assert not second.requests and len(first.requests) == 1
    assert len(lines) == 1
    assert lines[0] | {"final": True, "status": 400, "outcome": "http_error"} == lines[0]


# -- pass-through ---------------------------------------------------------------------------


def test_non_inference_paths_reach_the_origin_untouched(fakes, origin, router) -> None:
    fake = fakes("prov")
    r = router(config({"p": provider(fake, api_key="${PK}")}), env={"PK": "sk-provider-pk"})
    base = on_localhost(origin)
    out = curl(r, base + "/v1/models?limit=2", "-H", "x-api-key: client-key")
    assert json.loads(out.stdout) == {"origin": "origin", "method": "GET",
                                      "path": "/v1/models?limit=2"}  # fmt: skip
    body = json.dumps({"model": "claude-test", "messages": []})
    out = curl(r, base + "/v1/messages/count_tokens", "-d", body, "-H", "x-api-key: client-key",
               "-H", "content-type: application/json")  # fmt: skip
    assert json.loads(out.stdout)["path"] == "/v1/messages/count_tokens"
    assert [q.path for q in origin.requests] == ["/v1/models?limit=2", "/v1/messages/count_tokens"]
    assert origin.requests[1].body == body.encode()
    assert all(q.headers["x-api-key"] == "client-key" for q in origin.requests)
    # proxy credentials never go upstream, over CONNECT or in a plain-HTTP request
    plain = fakes("plain")  # http://127.0.0.1:PORT, in no profile
    for url in (base + "/v1/models", plain.url + "/v1/models", on_localhost(plain) + "/x"):
        assert curl(r, url, user="nope:proxy-pass-SECRET").returncode == 0
    for q in origin.requests + plain.requests:
        assert "proxy-authorization" not in q.headers, q
    assert len(origin.requests) == 3 and len(plain.requests) == 2
    assert not fake.requests and r.lines() == []


def test_a_host_in_no_profile_is_not_intercepted(fakes, origin, router, test_ca) -> None:
    other = fakes("other", ssl_context=test_ca.server_context())  # https://127.0.0.1:PORT
    r = router(config({"p": provider(fakes("prov"))}))
    # Trusting only the origin's CA: a certificate re-signed by the router would fail here.
    out = curl(r, other.url + "/hello", "-w", "\n%{http_connect}", cacert=test_ca.ca_pem)
    assert out.returncode == 0, out.stderr
    body, connect = out.stdout.rsplit(b"\n", 1)
    assert connect == b"200", "curl did not go through the proxy"
    assert json.loads(body)["path"] == "/hello"
    r.stop()
    assert not [f for f in r.flows() if getattr(f, "request", None)
                and f.request.port == other.port]  # fmt: skip


# -- which profile ----------------------------------------------------------------------------


def test_profile_by_user_header_and_host(fakes, origin, router) -> None:
    a, b, c = fakes("a"), fakes("b"), fakes("c")
    cfg = {
        "providers": {"a": provider(a), "b": provider(b), "c": provider(c)},
        "profiles": {
            "default": {"hosts": ["localhost"], "providers": ["a"]},
            "work": {"hosts": ["localhost"], "providers": ["b"]},
            "ip": {"hosts": [f"127.0.0.1:{origin.port}"], "providers": ["c"]},
        },
    }
    r = router(cfg)

    def served(client: Any, **extra: Any) -> tuple[str, str]:
        raw = client.messages.with_raw_response.create(**MSG, **extra)
        return raw.headers["x-router-profile"], raw.headers["x-router-provider"]

    assert served(anthropic_client(r, origin)) == ("default", "a")
    assert served(anthropic_client(r, origin, user="work:hunter2")) == ("work", "b")
    work = {"extra_headers": {"X-Router-Profile": "work"}}
    assert served(anthropic_client(r, origin), **work) == ("work", "b")
    other = {"extra_headers": {"X-Router-Profile": "default"}}
    assert served(anthropic_client(r, origin, user="work"), **other) == ("work", "b")
    ip = anthropic_client(r, origin, base_url=origin.url)  # the host 127.0.0.1 -> profile ip
    assert served(ip) == ("ip", "c")
    # a named profile that does not serve the host: host rules choose, the comment says so
    assert served(anthropic_client(r, origin), extra_headers={"X-Router-Profile": "ip"}) == (
        "default",
        "a",
    )
    for q in a.requests + b.requests + c.requests:
        assert "x-router-profile" not in q.headers and "proxy-authorization" not in q.headers
        assert "hunter2" not in json.dumps(q.headers)
    # an unknown profile is an error in the API's format that lists the known ones
    with pytest.raises(anthropic.BadRequestError) as exc:
        anthropic_client(r, origin).messages.create(
            **MSG, extra_headers={"X-Router-Profile": "nope"}
        )
    msg = error_json(exc.value)["error"]["message"]
    assert "'nope'" in msg and "default, work, ip" in msg
    with pytest.raises(openai.BadRequestError) as exc2:
        openai_client(r, origin, user="nope").chat.completions.create(**CHAT)
    assert "default, work, ip" in error_json(exc2.value)["error"]["message"]
    r.stop()
    assert "hunter2" not in r.flows_path.read_bytes().decode(errors="replace")
    comments = [f.comment for f in r.flows()]
    assert any("does not serve localhost" in c and "'ip'" in c for c in comments), comments


# -- keys -------------------------------------------------------------------------------------

KEYS = {"KEY_A": "sk-prov-a-0000SECRET", "KEY_B": "sk-prov-b-1111SECRET",
        "KEY_O": "sk-prov-o-2222SECRET"}  # fmt: skip


def test_keys_are_replaced_and_never_shown(fakes, origin, router) -> None:
    a = fakes("a", default=Behaviour(kind="status", status=503))
    b, o, p = fakes("b"), fakes("o"), fakes("p")
    cfg = {
        "providers": {
            "a": provider(a, api_key="${KEY_A}"),
            "b": provider(b, api_key="${KEY_B}"),
            "o": provider(o, "openai", api_key="${KEY_O}"),
            "p": provider(p),  # no key: the client's credentials pass through
        },
        "profiles": {
            # affinity off: the same "hi" would otherwise stay on b, which served it; translate
            # off: each client's own API's providers (this test is about keys, per API)
            "default": {
                "hosts": ["localhost"],
                "providers": ["a", "b", "o"],
                "affinity": False,
                "translate": False,
            },
            "plain": {"hosts": ["localhost"], "providers": ["p"]},
        },
        "health": {"backoff_initial": 0.01, "backoff_max": 0.01},  # a is tried every time
    }
    r = router(cfg, "--set", "flow_detail=4", env=KEYS)  # mitmdump prints everything it has
    user = "default:proxy-pass-SECRET"
    body = json.dumps({**MSG, "stream": True})
    out = curl(
        r, on_localhost(origin) + "/v1/messages", "-d", body, "-H", "x-api-key: client-key-SECRET"
    )
    assert b"Hello" in out.stdout and b" from" in out.stdout and b"message_stop" in out.stdout
    bearer = anthropic_client(r, origin, api_key="client-tok-SECRET")  # sends Authorization
    assert bearer.messages.with_raw_response.create(**MSG).headers["x-router-provider"] == "b"
    oai = openai_client(r, origin, api_key="client-key-SECRET")
    assert "Hello from o." in oai.chat.completions.create(**CHAT).choices[0].message.content
    plain = anthropic_client(r, origin, user="plain:proxy-pass-SECRET", api_key="client-key-p")
    assert plain.messages.create(**MSG).content[0].text.startswith("Hello from p.")
    a.set_default(Behaviour(kind="status", status=401))  # all keyed candidates fail
    b.set_default(Behaviour(kind="status", status=403))
    with pytest.raises(anthropic.PermissionDeniedError) as exc:
        anthropic_client(r, origin, user=user, api_key="client-key-SECRET").messages.create(**MSG)

    for fake, key in ((a, KEYS["KEY_A"]), (b, KEYS["KEY_B"])):
        curl_req, sdk_req = fake.requests[:2]
        assert curl_req.headers["x-api-key"] == key and "authorization" not in curl_req.headers
        assert sdk_req.headers["authorization"] == f"Bearer {key}"
        assert "x-api-key" not in sdk_req.headers
    assert o.requests[0].headers["authorization"] == f"Bearer {KEYS['KEY_O']}"
    assert p.requests[0].headers["authorization"] == "Bearer client-key-p"  # untouched
    for q in a.requests + b.requests + o.requests + p.requests:
        seen = json.dumps(q.headers)
        assert "client-key-SECRET" not in seen and "client-tok" not in seen
        assert "proxy-pass" not in seen and "proxy-authorization" not in q.headers
    assert len(r.wait_lines(8)) == 8
    r.stop()
    assert_never_shown(r, [*KEYS.values(), "proxy-pass-SECRET"], exc.value.response.text)


def assert_never_shown(r: RouterProc, secrets: list[str], *bodies: str) -> None:
    """No secret in the JSONL, mitmproxy's output (flow_detail 4 prints everything), the flows
    saved with -w, their comments, or the error bodies the clients got."""
    shown = {
        "error bodies": "\n".join(bodies),
        "jsonl": r.jsonl_path.read_text(),
        "mitmproxy output": r.output(),
        "saved flows": r.flows_path.read_bytes().decode(errors="replace"),
        "comments": " ".join(f.comment for f in r.flows()),
    }
    for where, text in shown.items():
        for secret in secrets:
            assert secret not in text, f"{secret} appears in the {where}"


def test_access_tokens_are_never_shown(fakes, origin, router) -> None:
    """The same for a team's proxy users: no token, no hash of one, no Proxy-Authorization or
    Authorization value, whatever the router answers (served, 407, 403, 429, its pages)."""
    a, w = fakes("a", default=Behaviour(output_tokens=3000)), fakes("w")
    token, wrong = new_token(), "wrong-token-SECRET"
    price = {"input": 0, "output": 1}
    cfg = {
        "providers": {"a": provider(a, api_key="${KEY_A}", price=price), "w": provider(w)},
        "profiles": {"default": {"hosts": ["localhost"], "providers": ["a"]},
                     "work": {"hosts": ["localhost"], "providers": ["w"]}},
        "access": {"users": {"alice": {"token_sha256": hash_token(token), "profiles": ["default"],
                                       "limits": {"usd_per_month": 0.004}}}},
    }  # fmt: skip
    r = router(cfg, "--set", "flow_detail=4", env=KEYS)
    alice = f"alice:{token}"
    body = json.dumps({**MSG, "max_tokens": 3000, "stream": True})
    out = curl(r, on_localhost(origin) + "/v1/messages", "-d", body, "-H", "x-api-key: k",
               user=alice)  # fmt: skip
    assert b"message_stop" in out.stdout
    bodies = []
    with pytest.raises(anthropic.RateLimitError) as e429:  # the $0.004 budget is spent
        anthropic_client(r, origin, user=alice).messages.create(**{**MSG, "max_tokens": 3000})
    with pytest.raises(anthropic.PermissionDeniedError) as e403:
        anthropic_client(r, origin, user=f"alice+work:{token}").messages.create(**MSG)
    bodies += [e429.value.response.text, e403.value.response.text]
    proxy = f"http://alice:{wrong}@127.0.0.1:{r.port}"  # plain HTTP: the 407 has a body
    bodies.append(curl(r, a.url + "/x", "-i", "--proxy", proxy).stdout.decode())
    assert bodies[-1].startswith("HTTP/1.1 407")
    for page, auth in (("/status", ["-u", alice]), ("/metrics", ["-H", f"authorization: Basic "
                                                                 f"{b64(alice)}"])):  # fmt: skip
        got = subprocess.run(["curl", "-sS", *auth, r.proxy + page], capture_output=True,
                             timeout=30, check=True)  # fmt: skip
        bodies.append(got.stdout.decode())
    assert '"name": "alice"' in bodies[-2]  # /status shows the user, not the token
    assert len(r.wait_lines(1)) == 1
    r.stop()
    secrets = [token, wrong, hash_token(token), b64(alice), b64(f"alice+work:{token}"),
               b64(f"alice:{wrong}"), *KEYS.values()]  # fmt: skip
    assert_never_shown(r, secrets, *bodies)
    for q in a.requests + w.requests:
        assert not {"proxy-authorization", "authorization"} & set(q.headers)


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


# -- the JSONL contract -----------------------------------------------------------------------

FIELDS: dict[str, type | tuple[type, ...]] = {
    "ts": str, "request_id": str, "profile": str, "strategy": str, "candidates": list,
    "reason": str, "attempt": int, "provider": str, "api": str, "translated": bool, "model": str,
    "stream": bool,
    "status": (int, type(None)), "outcome": str, "error": (str, type(None)),
    "ttfb_ms": (int, float, type(None)), "ttft_ms": (int, float, type(None)),
    "total_ms": (int, float), "input_tokens": (int, type(None)),
    "output_tokens": (int, type(None)), "cache_read_tokens": (int, type(None)),
    "cache_write_tokens": (int, type(None)), "skipped": list,
    "cooldown_s": (int, float, type(None)), "cost_usd": (int, float, type(None)),
}  # fmt: skip
TOKENS = Behaviour(input_tokens=11, output_tokens=7, cache_read_tokens=3, cache_write_tokens=2)


def test_jsonl_lines_match_the_contract(fakes, origin, router) -> None:
    first = fakes("first", default=Behaviour(kind="status", status=503))
    second = fakes("second", default=TOKENS)
    oa = fakes("oa", default=TOKENS)
    price = {"input": 1.0, "output": 2.0}
    r = router(config({"first": provider(first), "second": provider(second, price=price),
                       "oa": provider(oa, "openai")}))  # fmt: skip
    client = anthropic_client(r, origin)
    client.messages.create(**MSG)  # first 503 -> second
    with client.messages.stream(**MSG) as s:
        s.get_final_message()
    oai = openai_client(r, origin)
    list(oai.chat.completions.create(stream=True, stream_options={"include_usage": True}, **CHAT))
    oai.chat.completions.create(**CHAT)
    lines = r.wait_lines(5)
    assert len(lines) == 5
    for line in lines:
        for name, kind in FIELDS.items():
            assert isinstance(line[name], kind), (name, line)
        ts = datetime.fromisoformat(line["ts"].replace("Z", "+00:00"))
        assert line["ts"].endswith("Z") and ts.utcoffset() is not None
        assert abs((datetime.now(UTC) - ts).total_seconds()) < 60
        assert line["strategy"] == "failover" and line["reason"].startswith("failover")
        assert line["outcome"] in ("ok", "http_error", "connect_error", "timeout", "client_closed")
        assert line["ttfb_ms"] <= line["total_ms"]
    fail, ok, stream, ostream, oplain = lines
    assert fail | {"attempt": 1, "provider": "first", "status": 503, "outcome": "http_error",
                   "ttft_ms": None, "input_tokens": None} == fail  # fmt: skip
    assert fail["error"] and fail["cooldown_s"] > 0 and fail["request_id"] == ok["request_id"]
    # openai's oa has no key of its own: the client's is Anthropic's, so it is no candidate;
    # a provider that could never serve the request is no news on each line (explain says it)
    assert fail["candidates"] == ["first", "second"]
    assert fail["skipped"] == [] and not any(x["translated"] for x in lines)
    assert ok | {"attempt": 2, "provider": "second", "status": 200, "stream": False} == ok
    assert stream["skipped"] == [{"provider": "first", "reason": stream["skipped"][0]["reason"]}]
    assert stream["skipped"][0]["reason"].startswith("cooling")
    assert ostream["skipped"] == []  # first and second (anthropic, no key) could never serve it
    tokens = ("input_tokens", "output_tokens", "cache_read_tokens", "cache_write_tokens")
    for line in (ok, stream):  # anthropic: input_tokens includes the cached input
        assert [line[k] for k in tokens] == [16, 7, 3, 2]
        assert line["cost_usd"] == pytest.approx((16 * 1.0 + 7 * 2.0) / 1e6)
    for line in (ostream, oplain):
        assert [line[k] for k in tokens] == [11, 7, 3, None] and line["api"] == "openai"
    assert ok["ttft_ms"] is None and oplain["ttft_ms"] is None
    for line in (stream, ostream):
        assert line["stream"] is True and 0 < line["ttft_ms"] <= line["total_ms"]


# -- start-up validation ----------------------------------------------------------------------


def _bad(mutate: Any) -> dict[str, Any]:
    cfg = config({"a": provider("http://127.0.0.1:9"), "b": provider("http://127.0.0.1:9")})
    mutate(cfg)
    return cfg


BAD_CONFIGS = {
    "profiles.default.strategy": lambda c: c["profiles"]["default"].update(strategy="fastest"),
    "profiles.default.providers[2]": lambda c: c["profiles"]["default"]["providers"].append("zz"),
    "providers.b.weight": lambda c: c["providers"]["b"].update(weight=-1),
    "providers.a.api_key": lambda c: c["providers"]["a"].update(api_key="${UNSET_ROUTER_KEY}"),
    "providers.a.base_url": lambda c: c["providers"]["a"].update(base_url="ftp://x"),
}


@pytest.mark.parametrize("path", [*BAD_CONFIGS, "missing"])
def test_a_bad_config_stops_start_up_naming_the_field(path, tmp_path, test_ca) -> None:
    r = RouterProc(tmp_path, _bad(BAD_CONFIGS.get(path, lambda c: None)), test_ca)
    if path == "missing":
        r.config_path.unlink()
        path = f"{r.config_path}: file not found"
    try:
        r.start(wait=False)
        assert r.wait_exit(30) != 0
        assert path in r.output(), r.output()
    finally:
        r.stop()


# -- concurrency ------------------------------------------------------------------------------

N, DELTAS = 50, 8


def test_50_concurrent_streams_half_failing_over(fakes, origin, router) -> None:
    # Every other request to `first` fails; all 50 reach it before the first failure answers
    # (delay), so its cooldown cannot hide the failovers.
    ok = Behaviour(delay=2.0, deltas=DELTAS, interval=0.02)
    first = fakes("first")
    first.push(*[Behaviour(kind="status", status=503, delay=2.0) if i % 2 else ok
                 for i in range(N)])  # fmt: skip
    second = fakes("second", default=Behaviour(deltas=DELTAS, interval=0.02))
    r = router(config({"first": provider(first), "second": provider(second)}))
    client = anthropic_client(r, origin, aio=True)

    async def one(i: int) -> tuple[str, str, int, str]:
        async with client.messages.stream(**MSG, metadata={"user_id": f"u{i}"}) as s:
            deltas = [e async for e in s if e.type == "content_block_delta"]
            text = (await s.get_final_message()).content[0].text
            h = s.response.headers
            return h["x-router-provider"], h["x-router-attempts"], len(deltas), text

    async def main() -> list[tuple[str, str, int, str]]:
        return await asyncio.gather(*(one(i) for i in range(N)))

    results = asyncio.run(main())
    assert len(first.requests) == N, "not every request reached the first provider"
    for name, attempts, count, text in results:
        assert count == DELTAS and text == "".join(split_text(name, DELTAS))
        assert attempts == {"first": "1", "second": "2"}[name]
    assert sorted(x[0] for x in results) == ["first"] * (N // 2) + ["second"] * (N // 2)
    lines = r.wait_lines(N + N // 2)
    assert len(lines) == N + N // 2 and all(line["outcome"] != "client_closed" for line in lines)
    assert sum(line["final"] for line in lines) == N


# -- what mitmweb shows -----------------------------------------------------------------------


def test_headers_comment_mark_and_real_url(fakes, origin, router) -> None:
    first = fakes("first", default=Behaviour(kind="status", status=503))
    second = fakes("second")
    # affinity off: each request starts at `first` (the same "hi" would stay on `second`)
    cfg = config({"first": provider(first), "second": provider(second)}, affinity=False)
    cfg["health"] = {"backoff_initial": 0.01, "backoff_max": 0.01}
    r = router(cfg)
    client = anthropic_client(r, origin)
    raw = client.messages.with_raw_response.create(**MSG)
    # Each failure cools `first` for 0.01 s, and that cooldown began before the client had its
    # answer: 0.05 s later it has surely ended, so the next request tries `first` again.
    time.sleep(0.05)
    with client.messages.stream(**MSG) as s:
        s.get_final_message()
        stream_headers = s.response.headers
    first.set_default(Behaviour())
    time.sleep(0.05)
    direct = client.messages.with_raw_response.create(**MSG)
    for h in (raw.headers, stream_headers):
        assert (h["x-router-profile"], h["x-router-provider"], h["x-router-attempts"]) == (
            "default", "second", "2")  # fmt: skip
        assert h["x-router-strategy"] == "failover"
    assert direct.headers["x-router-provider"] == "first"
    r.wait_lines(5)
    r.stop()
    flows = [f for f in r.flows() if f.comment]
    assert len(flows) == 3
    for f in flows[:2]:
        assert re.fullmatch(r"first 503 \d+ms → second 200 \d+ms · default/failover", f.comment)
        assert f.marked == ":arrow_right_hook:"
        assert f.request.url == second.url + "/v1/messages"  # not the handoff address
        assert "x-router-handoff" not in f.request.headers
        assert f.response.status_code == 200
    assert re.fullmatch(r"first 200 \d+ms · default/failover", flows[2].comment)
    assert not flows[2].marked and flows[2].request.url == first.url + "/v1/messages"
