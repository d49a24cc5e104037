"""End to end, hostile input and hostile upstreams: what a probe tried against the router, as
an attacker and as a careless user would. Real mitmdump, real SDKs and curl, misbehaving
servers on 127.0.0.1 (tests/hostile.py).
"""

from __future__ import annotations

import base64
import gzip
import json
import os
import re
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anthropic
import pytest
import yaml
from hostile import Hostile, anthropic_sse
from llmrouter.tools.fakeprovider import Behaviour
from routerproc import RouterProc, anthropic_client, curl, on_localhost, provider, wait_for

pytestmark = pytest.mark.e2e

MSG: dict[str, Any] = {"model": "claude-test", "max_tokens": 50,
                       "messages": [{"role": "user", "content": "hi"}]}  # fmt: skip


def config(providers: dict[str, Any], *order: str, **profile: Any) -> dict[str, Any]:
    prof = {"hosts": ["localhost"], "providers": list(order or providers), **profile}
    return {"providers": providers, "profiles": {"default": prof}}


@pytest.fixture
def hostile() -> Iterator[Any]:
    started: list[Hostile] = []

    def start(mode: str, **params: Any) -> Hostile:
        server = Hostile(mode, **params)
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


def before_stop(r: RouterProc) -> str:
    """The router's output until it was told to stop (asyncio may log a cancelled client
    connection's task while mitmproxy shuts down: not ours)."""
    return r.output().partition("router: stopping:")[0]


def _status_of(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise AssertionError(field)


# -- request bodies ---------------------------------------------------------------------------


def test_a_gzip_bomb_gets_a_413_and_is_never_inflated(fakes, origin, router, tmp_path) -> None:
    fake = fakes("p")
    r = router(config({"p": provider(fake)}))
    assert r.proc is not None
    body = json.dumps({**MSG, "pad": ""}).encode()[:-2] + b" " * 200_000_000 + b'"}'
    bomb = tmp_path / "bomb.gz"
    bomb.write_bytes(gzip.compress(body, 9))
    assert bomb.stat().st_size < 1_000_000
    before = _status_of(r.proc.pid, "VmRSS")
    out = curl(r, on_localhost(origin) + "/v1/messages", "--data-binary", f"@{bomb}",
               "-H", "content-encoding: gzip", "-H", "content-type: application/json",
               "-H", "x-api-key: client-key", "-w", "\n%{http_code}")  # fmt: skip
    text, code = out.stdout.rsplit(b"\n", 1)
    assert code == b"413", out
    err = json.loads(text)
    assert err["type"] == "error" and err["error"]["type"] == "request_too_large"
    assert "max_request_mb (32 MB)" in err["error"]["message"]
    # Decoded up to the cap and no further: far from the 200 MB it inflates to.
    assert _status_of(r.proc.pid, "VmHWM") - before < 150 * 1024
    assert not fake.requests and not origin.requests
    assert r.lines() == []


def test_max_request_mb_caps_a_plain_body_too(fakes, origin, router, tmp_path) -> None:
    fake = fakes("p")
    r = router(config({"p": provider(fake)}), "--set", "max_request_mb=1")
    big = tmp_path / "big.json"
    big.write_bytes(json.dumps({**MSG, "pad": "x" * 1_500_000}).encode())
    client = anthropic_client(r, origin)
    with pytest.raises(anthropic.APIStatusError) as exc:
        client.messages.create(**MSG, extra_body={"pad": "x" * 1_500_000})
    assert exc.value.status_code == 413
    assert exc.value.body["error"]["type"] == "request_too_large"  # type: ignore[index]
    assert client.messages.create(**MSG).content[0].text.startswith("Hello from p.")
    assert len(fake.requests) == 1


def test_a_gzip_body_within_the_cap_is_decoded_and_routed(fakes, origin, router, tmp_path):
    fake = fakes("p")
    r = router(config({"p": provider(fake)}))
    gz = tmp_path / "msg.gz"
    gz.write_bytes(gzip.compress(json.dumps(MSG).encode()))
    out = curl(r, on_localhost(origin) + "/v1/messages", "--data-binary", f"@{gz}",
               "-H", "content-encoding: gzip", "-H", "x-api-key: k")  # fmt: skip
    assert b"Hello from p." in out.stdout
    (sent,) = fake.requests
    assert sent.json == MSG and "content-encoding" not in sent.headers


# -- lone surrogates, long and forged model names ---------------------------------------------


@pytest.mark.parametrize("stream", [False, True])
def test_a_lone_surrogate_in_the_model_is_routed_and_logged(stream, fakes, origin, router):
    fake = fakes("p")
    r = router(config({"p": provider(fake)}))
    body = json.dumps({**MSG, "stream": stream}).replace('"claude-test"', '"claude-\\ud800"')
    out = curl(r, on_localhost(origin) + "/v1/messages", "-d", body, "-H", "x-api-key: k",
               "-w", "\n%{http_code}")  # fmt: skip
    assert out.returncode == 0, out.stderr  # a stream cut by INTERNAL_ERROR fails curl
    text, code = out.stdout.rsplit(b"\n", 1)
    assert code == b"200" and b"Hello" in text
    if stream:
        assert b"message_stop" in text
    (line,) = r.wait_lines(1)
    assert line["outcome"] == "ok" and line["model"] == "claude-\ud800"  # escaped in the file
    assert "\\ud800" in r.jsonl_path.read_text()
    r.stop()
    out = before_stop(r)
    assert "Traceback" not in out and "Logging error" not in out, out
    (f,) = [f for f in r.flows() if f.comment]
    assert f.comment.startswith("p 200 ") and f.comment.endswith(" · default/failover")


def test_long_and_forged_model_names_are_capped_and_escaped(fakes, origin, router) -> None:
    fake = fakes("p")
    r = router(config({"p": provider(fake)}))
    client = anthropic_client(r, origin)
    long = "claude-" + "x" * 100_000
    forged = "claude\r\nrouter: 00000000 FORGED \u202eline"
    for model in (long, forged):
        client.messages.create(**{**MSG, "model": model})
    assert fake.requests[0].json["model"] == long  # the provider gets the model unchanged
    lines = r.wait_lines(2)
    assert len(lines[0]["model"]) < 250 and lines[0]["model"].startswith("claude-xxx")
    assert lines[0]["requested_model"] == lines[0]["model"]
    assert len(r.jsonl_path.read_text().splitlines()[0]) < 4000
    assert lines[1]["model"] == forged  # the JSONL keeps it (escaped by JSON)
    r.stop()
    out = r.output()
    assert "\nrouter: 00000000 FORGED" not in out and "\u202e" not in out
    assert "claude\\r\\nrouter: 00000000 FORGED \\u202eline" in out  # the line, escaped


# -- hostile upstreams ------------------------------------------------------------------------


def test_a_redirect_fails_over_and_its_location_never_reaches_the_client(fakes, origin, router):
    evil = fakes("evil")
    moved = Behaviour(kind="status", status=307, headers={"location": evil.url + "/v1/messages"})
    first, second = fakes("first", default=moved), fakes("second")
    r = router(config({"first": provider(first), "second": provider(second)}))
    raw = anthropic_client(r, origin).messages.with_raw_response.create(**MSG)
    assert raw.headers["x-router-provider"] == "second" and "location" not in raw.headers
    fail, ok = r.wait_lines(2)
    assert fail["outcome"] == "http_error" and fail["status"] == 307
    assert fail["error"] == "HTTP 307 (redirect, not followed)" and fail["cooldown_s"]
    assert ok["outcome"] == "ok"
    # Every candidate redirects: a 502 of the router's own, no Location, nothing followed.
    second.set_default(moved)
    with pytest.raises(anthropic.APIStatusError) as exc:
        anthropic_client(r, origin).messages.create(**MSG)
    assert exc.value.status_code == 502 and "location" not in exc.value.response.headers
    assert "307" in exc.value.message
    assert not evil.requests and not origin.requests


KEY = "sk-hostile-provider-key-0123456789"


def test_a_key_echoed_by_an_upstream_never_reaches_the_client(hostile, origin, router) -> None:
    echo = hostile("echo", status=401)
    r = router(config({"e": provider(echo.url, api_key="${EKEY}")}), "--set", "flow_detail=4",
               env={"EKEY": KEY})  # fmt: skip
    with pytest.raises(anthropic.AuthenticationError) as exc:
        anthropic_client(r, origin).messages.create(**MSG)
    sent = echo.requests[0]["headers"]
    assert KEY in sent.get("x-api-key", sent.get("authorization", ""))  # sent, and echoed
    e = exc.value
    assert "[redacted]" in e.response.text and "[redacted]" in e.response.headers["x-echo"]
    echo.params["status"] = 400  # a final answer, passed on as the provider gave it
    with pytest.raises(anthropic.BadRequestError) as exc2:
        anthropic_client(r, origin).messages.create(**MSG)
    echo.mode = "echo"
    r.wait_lines(2)
    r.stop()
    shown = {
        "401 body": e.response.text,
        "401 headers": json.dumps(dict(e.response.headers)),
        "400 body": exc2.value.response.text,
        "400 headers": json.dumps(dict(exc2.value.response.headers)),
        "mitmdump output (flow_detail=4)": r.output(),
        "saved flows": r.flows_path.read_bytes().decode(errors="replace"),
        "jsonl": r.jsonl_path.read_text(),
    }
    for where, text in shown.items():
        assert KEY not in text, f"the key appears in the {where}"


def test_response_timeout_bounds_a_slow_or_silent_body(hostile, fakes, origin, router) -> None:
    trickle, silent = hostile("trickle", interval=1.0), hostile("trickle", interval=0)
    second = fakes("second")
    r = router(config({"trickle": provider(trickle.url, response_timeout=1.5),
                       "silent": provider(silent.url, response_timeout=1.5),
                       "second": provider(second)}))  # fmt: skip
    raw = anthropic_client(r, origin).messages.with_raw_response.create(**MSG)
    assert raw.headers["x-router-provider"] == "second"
    lines = r.wait_lines(3)
    assert [x["outcome"] for x in lines] == ["timeout", "timeout", "ok"]
    for line in lines[:2]:
        assert line["status"] == 200 and 1400 <= line["total_ms"] < 5000, line
        assert "response body not complete within" in line["error"]
    r.stop()
    comment = next(f.comment for f in r.flows() if f.comment)
    assert re.match(r"trickle 200 timeout \d+ms \(response body", comment)


def test_size_caps_on_answers_fail_over(hostile, fakes, origin, router) -> None:
    huge, flood = hostile("huge", size=3 * 2**20), hostile("ping_flood")
    second = fakes("second")
    # Each kind of request gets its own provider entries: health is per provider.
    names = {f"{n}_{kind}": provider(s.url if kind != "ok" else s)
             for n, s in (("huge", huge), ("flood", flood), ("second", second))
             for kind in ("plain", "stream")}  # fmt: skip
    cfg = {"providers": names, "profiles": {
        "default": {"hosts": ["localhost"], "providers": ["huge_plain", "flood_plain",
                                                          "second_plain"]},
        "streams": {"hosts": ["localhost"], "providers": ["huge_stream", "flood_stream",
                                                          "second_stream"]}}}  # fmt: skip
    r = router(cfg, "--set", "max_response_mb=2")
    client = anthropic_client(r, origin)
    raw = client.messages.with_raw_response.create(**MSG)
    assert raw.headers["x-router-provider"] == "second_plain"
    with client.messages.stream(**MSG, extra_headers={"x-router-profile": "streams"}) as s:
        assert s.get_final_message().content[0].text.startswith("Hello from second.")
    by = {x["provider"]: x for x in r.wait_lines(6)}
    for name in ("huge_plain", "flood_plain", "huge_stream"):  # read whole, capped
        assert by[name]["error"] == "answer over max_response_mb (2 MB)", by[name]
        assert by[name]["outcome"] == "connect_error" and by[name]["status"] == 200
    # A stream's bytes before its first token are held, and capped.
    assert by["flood_stream"]["outcome"] == "inband_error"
    assert by["flood_stream"]["error"] == "over 2 MB before the first token"
    assert by["second_plain"]["outcome"] == by["second_stream"]["outcome"] == "ok"
    assert flood.closed.wait(5)


def test_an_sse_error_answering_a_plain_request_fails_over(hostile, fakes, origin, router):
    inband, second = hostile("sse_error"), fakes("second")
    r = router(config({"inband": provider(inband.url), "second": provider(second)}))
    raw = anthropic_client(r, origin).messages.with_raw_response.create(**MSG)
    assert raw.headers["x-router-provider"] == "second"
    first, _ = r.wait_lines(2)
    assert first["outcome"] == "inband_error" and first["error"] == "in-band overloaded_error"


def test_cr_only_line_endings_stream_fine(hostile, origin, router) -> None:
    cr = hostile("cr_stream")
    r = router(config({"cr": provider(cr.url)}))
    with anthropic_client(r, origin).messages.stream(**MSG) as s:
        assert s.get_final_message().content[0].text == "Hello from hostile."
    (line,) = r.wait_lines(1)
    assert line["outcome"] == "ok" and line["content_events"] == 1 and line["output_tokens"] == 4
    assert line["bytes"] == len(anthropic_sse(eol=b"\r"))


def test_x_router_headers_of_an_upstream_are_not_passed_on(fakes, origin, router) -> None:
    theirs = {"x-router-provider": "evil", "X-Router-Attempts": "99", "x-other": "1"}
    fake = fakes("p", default=Behaviour(headers=theirs))
    r = router(config({"p": provider(fake)}))
    client = anthropic_client(r, origin)
    for raw in (
        client.messages.with_raw_response.create(**MSG),
        client.messages.with_raw_response.create(**MSG, stream=True),
    ):
        assert raw.headers.get_list("x-router-provider") == ["p"]
        assert raw.headers.get_list("x-router-attempts") == ["1"] and raw.headers["x-other"]


@pytest.mark.parametrize("value", ['"true"', "1", '"yes"', "{}"])
def test_a_stream_flag_that_is_not_a_boolean_gets_a_400(value, fakes, origin, router) -> None:
    fake = fakes("p")
    r = router(config({"p": provider(fake)}))
    body = json.dumps(MSG)[:-1] + f', "stream": {value}}}'
    out = curl(r, on_localhost(origin) + "/v1/messages", "-d", body, "-H", "x-api-key: k",
               "-w", "\n%{http_code}")  # fmt: skip
    text, code = out.stdout.rsplit(b"\n", 1)
    assert code == b"400"
    err = json.loads(text)["error"]
    assert (
        err["type"] == "invalid_request_error" and "stream must be true or false" in err["message"]
    )
    assert not fake.requests and r.lines() == []


# -- configuration ----------------------------------------------------------------------------


@pytest.mark.parametrize("key", ["", "${EMPTY_KEY}", "${UNSET_KEY:-}"])
def test_an_empty_api_key_stops_start_up_naming_it(key, tmp_path, test_ca) -> None:
    r = RouterProc(tmp_path, config({"a": provider("http://127.0.0.1:9", api_key=key)}), test_ca)
    try:
        r.start(wait=False, env={"EMPTY_KEY": ""})
        assert r.wait_exit(30) != 0
        assert "providers.a.api_key: is empty" in r.output(), r.output()
    finally:
        r.stop()


def test_no_profile_named_default_is_fine_and_a_bad_file_is_one_clean_line(
    fakes, origin, router, tmp_path, test_ca
) -> None:
    fake = fakes("p")
    cfg = {"providers": {"p": provider(fake)},
           "profiles": {"main": {"hosts": ["localhost"], "providers": ["p"]}}}  # fmt: skip
    r = router(cfg)
    raw = anthropic_client(r, origin).messages.with_raw_response.create(**MSG)
    assert raw.headers["x-router-profile"] == "main"
    # An explicitly named profile that does not exist is an error, at start-up...
    bad = RouterProc(tmp_path / "bad", cfg, test_ca)
    try:
        bad.start("--set", "router_profile=nope", wait=False)
        assert bad.wait_exit(30) != 0
        assert "router_profile: no profile 'nope'; known: main" in bad.output()
    finally:
        bad.stop()
    # ... and a file that is not UTF-8 is one clean error, no traceback.
    latin = RouterProc(tmp_path / "latin", "providers: {}\n# caf\xe9\n", test_ca)
    latin.config_path.write_bytes(b"providers: {}\n# caf\xe9\n")
    try:
        latin.start(wait=False)
        assert latin.wait_exit(30) != 0
        out = latin.output()
        assert "not valid UTF-8 (byte 0xe9 at line 2, column 6)" in out and "Traceback" not in out
    finally:
        latin.stop()


def test_the_jsonl_is_private(fakes, origin, router) -> None:
    fake = fakes("p")
    r = router(config({"p": provider(fake)}))
    anthropic_client(r, origin).messages.create(**MSG)
    r.wait_lines(1)
    assert stat.S_IMODE(os.stat(r.jsonl_path).st_mode) == 0o600


def test_bad_edits_of_every_kind_keep_the_watcher_alive(fakes, origin, router) -> None:
    a, b = fakes("a"), fakes("b")

    def cfg(first: str, **profiles: Any) -> dict[str, Any]:
        return {"providers": {"a": provider(a), "b": provider(b)},
                "profiles": {"default": {"hosts": ["localhost"], "providers": [first]},
                             **profiles}}  # fmt: skip

    r = router(cfg("a"), "--set", "router_profile=default")
    client = anthropic_client(r, origin)

    def served() -> str:
        return client.messages.with_raw_response.create(**MSG).headers["x-router-provider"]

    def refused(text: str, data: bytes | None = None) -> None:
        before = r.output().count("config not reloaded")
        if data is None:
            r.write_config(text)
        else:
            r.config_path.write_bytes(data)
        assert wait_for(lambda: r.output().count("config not reloaded") > before, 5), r.output()
        assert text in r.output()
        assert served() == "a"

    good = yaml.safe_dump(cfg("b"))
    refused("not valid UTF-8 (byte 0xff", good.encode() + b"# \xff\n")
    dup = good.replace("profiles:", "profiles:\n  default: {hosts: [x], providers: [a]}", 1)
    refused("profiles: duplicate key 'default'", dup.encode())
    laughs = "x: &a [1,1,1,1,1,1,1,1,1,1]\n" + "".join(
        f"{c}: &{c} [" + ",".join([f"*{p}"] * 10) + "]\n"
        for p, c in zip("abcdef", "bcdefg", strict=True)
    )
    refused("aliases nested too deep", laughs.encode())
    # The explicitly set router_profile must exist in the new file, as at start-up.
    refused(
        "router_profile: no profile 'default'",
        yaml.safe_dump(
            {
                "providers": {"a": provider(a)},
                "profiles": {"main": {"hosts": ["localhost"], "providers": ["a"]}},
            }
        ).encode(),
    )
    # The watcher is alive: a good edit still applies.
    before = r.output().count("router: reloaded")
    r.write_config(good)
    assert wait_for(lambda: r.output().count("router: reloaded") > before, 5)
    assert served() == "b"
    r.stop()
    assert "router: stopping:" in r.output()  # the shutdown ran its clean-up
    assert "Traceback" not in before_stop(r), r.output()


# -- proxy users ------------------------------------------------------------------------------


def _basic(user: bytes) -> str:
    return "Proxy-Authorization: Basic " + base64.b64encode(user + b":pw").decode()


def test_proxy_users_invalid_utf8_is_unknown_and_the_connect_user_wins(fakes, origin, router):
    a, b = fakes("a"), fakes("b")
    r = router({"providers": {"a": provider(a), "b": provider(b)},
                "profiles": {"default": {"hosts": ["localhost"], "providers": ["a"]},
                             "work": {"hosts": ["localhost"], "providers": ["b"]}}})  # fmt: skip
    url, body = on_localhost(origin) + "/v1/messages", json.dumps(MSG)
    # A user name that is not UTF-8 is an unknown profile, like any other: a 400.
    out = curl(r, url, "-d", body, "--proxy-header", _basic(b"w\xf6rk"), "-i")
    assert b"HTTP/2 400" in out.stdout, out.stdout
    message = json.loads(out.stdout.split(b"\r\n\r\n")[-1])["error"]["message"]
    assert message.startswith("router: unknown profile 'w\\\\xf6rk' (from the proxy user)")
    # The CONNECT's user names the tunnel: a Proxy-Authorization inside it does not override
    # it (and never goes upstream).
    out = curl(r, url, "-d", body, "-H", _basic(b"default"), "-i", user="work:x")
    assert b"x-router-profile: work" in out.stdout, out.stdout
    # With no user on the CONNECT, the one inside the tunnel chooses.
    out = curl(r, url, "-d", body, "-H", _basic(b"work"), "-i")
    assert b"x-router-profile: work" in out.stdout
    for q in a.requests + b.requests:
        assert "proxy-authorization" not in q.headers
    assert len(b.requests) == 2 and not a.requests
