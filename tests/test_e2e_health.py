"""End to end: provider health, the streaming commit point and deadlines (issue 4), through a
real mitmdump with the anthropic and openai SDKs; fake providers on 127.0.0.1. Plus
router.status, run in-process with mitmproxy's test helpers (mitmdump has no command channel).
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path
from typing import Any

import anthropic
import openai
import pytest
import yaml
from addonctx import router_taddons
from llmrouter.proxy.addon import Router
from llmrouter.proxy.dispatch import Request
from llmrouter.tools.fakeprovider import Behaviour, FakeProvider
from routerproc import RouterProc, environ, provider

pytestmark = pytest.mark.e2e
INTERRUPTED = {
    "type": "error",
    "error": {"type": "api_error", "message": "upstream stream interrupted"},
}
MSGS = [{"role": "user", "content": "hi"}]


def two(first: FakeProvider, second: FakeProvider, api: str = "anthropic", *,
        first_opts: dict[str, Any] | None = None, health: dict[str, Any] | None = None,
        deadline: float | None = None) -> dict[str, Any]:  # fmt: skip
    # Health decides each request's order here: affinity (on by default) would keep the same
    # "hi" conversation on the provider that served it, whatever first's health.
    profile: dict[str, Any] = {"hosts": ["localhost"], "providers": ["first", "second"],
                               "affinity": False}  # fmt: skip
    if deadline is not None:
        profile["deadline"] = deadline
    config: dict[str, Any] = {
        "providers": {
            "first": provider(first, api, **(first_opts or {})),
            "second": provider(second, api),
        },
        "profiles": {"default": profile},
    }
    if health:
        config["health"] = health
    return config


def anthropic_client(r: RouterProc, origin: FakeProvider, user: str | None = None):
    with environ(r.env(user)):
        return anthropic.Anthropic(base_url=origin.url.replace("127.0.0.1", "localhost"),
                                   api_key="client-key", max_retries=0, timeout=20)  # fmt: skip


def openai_client(r: RouterProc, origin: FakeProvider):
    with environ(r.env()):
        return openai.OpenAI(base_url=origin.url.replace("127.0.0.1", "localhost") + "/v1",
                             api_key="client-key", max_retries=0, timeout=20)  # fmt: skip


def ask(client: anthropic.Anthropic) -> Any:
    """A non-streamed request; the raw response (headers) of a success."""
    return client.messages.with_raw_response.create(model="claude-test", max_tokens=50,
                                                    messages=MSGS)  # fmt: skip


def ts(line: dict[str, Any]) -> float:
    return datetime.fromisoformat(line["ts"].replace("Z", "+00:00")).timestamp()


# -- cooldowns and half-open recovery ---------------------------------------------------------


def test_429_retry_after_cools_then_exactly_one_probe(fakes, origin, router) -> None:
    first, second = fakes("first"), fakes("second")
    first.push(Behaviour(kind="status", status=429, headers={"retry-after": "2"}))
    r = router(two(first, second))
    client = anthropic_client(r, origin)
    assert ask(client).headers["x-router-provider"] == "second"
    lines = r.wait_lines(2)
    assert (lines[0]["provider"], lines[0]["status"]) == ("first", 429)
    assert lines[0]["cooldown_s"] == pytest.approx(2, abs=0.01)
    cooled_at = ts(lines[0]) + lines[0]["total_ms"] / 1000  # wall clock, from the router

    n = 0  # while it cools, requests go straight to second, and say why
    while time.time() < cooled_at + 1.4:
        assert ask(client).headers["x-router-attempts"] == "1"
        n += 1
        time.sleep(0.2)
    assert n >= 3 and len(first.requests) == 1
    skipped = r.wait_lines(2 + n)[2:]
    for line in skipped:
        assert (line["provider"], line["attempt"], line["outcome"]) == ("second", 1, "ok")
        [skip] = line["skipped"]
        assert skip["provider"] == "first" and re.fullmatch(r"cooling [12]s", skip["reason"])
    assert ts(skipped[-1]) > cooled_at + 1.2  # still avoided after 1.2 s of the 2

    # The cooldown is over: the probe answers slowly, and requests that come meanwhile keep
    # avoiding first. Exactly one goes back to it.
    time.sleep(max(0.0, cooled_at + 2.2 - time.time()))
    first.push(Behaviour(delay=1.5))
    with ThreadPoolExecutor(4) as pool:
        futures = []
        for _ in range(4):
            futures.append(pool.submit(ask, client))
            time.sleep(0.15)
        served = sorted(f.result().headers["x-router-provider"] for f in futures)
    assert served == ["first", "second", "second", "second"]
    lines = r.wait_lines(2 + n + 4)[2 + n :]
    [probe] = [line for line in lines if line["provider"] == "first"]
    assert probe["probe"] is True and probe["outcome"] == "ok" and probe["skipped"] == []
    for line in lines:
        if line["provider"] == "second":
            assert line["skipped"] == [{"provider": "first", "reason": "probe in flight"}]
    # The probe succeeded: first is healthy again, first in line, and no longer a probe.
    assert ask(client).headers["x-router-provider"] == "first"
    last = r.wait_lines(2 + n + 5)[-1]
    assert (last["provider"], last["probe"], last["skipped"]) == ("first", False, [])


def test_auth_failure_fails_over_and_cools_long(fakes, origin, router) -> None:
    first = fakes("first", default=Behaviour(kind="status", status=401))
    # The provider's own key is refused (with pass-through auth a 401 is the client's).
    r = router(two(first, fakes("second"), first_opts={"api_key": "sk-first-revoked"}))
    client = anthropic_client(r, origin)
    assert ask(client).headers["x-router-provider"] == "second"
    assert ask(client).headers["x-router-attempts"] == "1"  # skipped: the key is bad
    lines = r.wait_lines(3)
    assert (lines[0]["status"], lines[0]["outcome"]) == (401, "http_error")
    assert lines[0]["cooldown_s"] == 1800  # the documented auth_cooldown default
    assert "auth" in lines[0]["error"]
    assert lines[2]["skipped"] == [{"provider": "first", "reason": "cooling 1800s"}]
    assert len(first.requests) == 1
    [logged] = [ln for ln in r.output().splitlines() if "#1 first" in ln and "401" in ln]
    assert "auth" in logged and "cooldown=1800s" in logged


def test_all_cooling_tries_earliest_recovery_and_says_when(fakes, origin, router) -> None:
    first, second = fakes("first"), fakes("second")
    first.push(Behaviour(kind="status", status=429, headers={"retry-after": "5"}))
    second.push(Behaviour(kind="status", status=503),
                Behaviour(kind="status", status=429, headers={"retry-after": "30"}))  # fmt: skip
    r = router(two(first, second, health={"backoff_initial": 3}))
    client = anthropic_client(r, origin)
    with pytest.raises(anthropic.InternalServerError) as e1:
        ask(client)  # first: 429, cools 5 s; second: 503, cools 3 s
    assert e1.value.status_code == 503
    assert e1.value.response.headers["retry-after"] == "3"  # second recovers first
    # Both cool. Nothing is refused untried: second, whose cooldown ends first, gets it even
    # though first comes first in the configured order.
    with pytest.raises(anthropic.RateLimitError) as e2:
        ask(client)
    assert e2.value.response.headers["x-router-attempts"] == "1"
    # second now cools 30 s; first recovers in about 5 s: that is when to come back.
    assert e2.value.response.headers["retry-after"] in ("4", "5")
    lines = r.wait_lines(3)
    assert [(ln["provider"], ln["status"]) for ln in lines] == [
        ("first", 429), ("second", 503), ("second", 429)]  # fmt: skip
    [skip] = lines[2]["skipped"]
    assert skip["provider"] == "first" and skip["reason"] in ("cooling 4s", "cooling 5s")
    assert lines[2]["final"] is False and lines[2]["cooldown_s"] == 30


def test_health_is_shared_across_profiles(fakes, origin, router) -> None:
    shared, a, b = fakes("shared"), fakes("other_a"), fakes("other_b")
    shared.push(Behaviour(kind="status", status=429, headers={"retry-after": "30"}))
    config = {
        "providers": {"shared": provider(shared), "other_a": provider(a), "other_b": provider(b)},
        "profiles": {
            "default": {"hosts": ["localhost"], "providers": ["shared", "other_a"]},
            "work": {"hosts": ["localhost"], "providers": ["shared", "other_b"]},
        },
    }
    r = router(config)
    assert ask(anthropic_client(r, origin)).headers["x-router-provider"] == "other_a"
    work = ask(anthropic_client(r, origin, user="work"))  # profile by proxy user
    assert work.headers["x-router-profile"] == "work"
    assert (work.headers["x-router-provider"], work.headers["x-router-attempts"]) == (
        "other_b",
        "1",
    )
    lines = r.wait_lines(3)
    assert (lines[2]["profile"], lines[2]["provider"]) == ("work", "other_b")
    assert lines[2]["skipped"] == [{"provider": "shared", "reason": "cooling 30s"}]
    assert len(shared.requests) == 1


def test_no_backoff_sleep_while_an_untried_candidate_remains(fakes, origin, router) -> None:
    first = fakes("first", default=Behaviour(kind="status", status=503))
    r = router(two(first, fakes("second")))
    client = anthropic_client(r, origin)
    started = time.monotonic()
    assert ask(client).headers["x-router-attempts"] == "2"
    assert time.monotonic() - started < 1.0
    one, two_ = r.wait_lines(2)
    assert one["cooldown_s"] == 10  # first is cooled by the backoff, but nobody waits for it
    gap = ts(two_) - (ts(one) + one["total_ms"] / 1000)
    assert gap < 0.1, f"{gap:.3f}s between the 503 and the next attempt"


# -- the streaming commit point ---------------------------------------------------------------


def test_anthropic_inband_error_before_commit_fails_over_cleanly(fakes, origin, router) -> None:
    first = fakes("first", default=Behaviour(kind="inband_error"))
    second = fakes("second", default=Behaviour(deltas=5, interval=0.02))
    r = router(two(first, second))
    client = anthropic_client(r, origin)
    types: list[str] = []
    with client.messages.stream(model="claude-test", max_tokens=50, messages=MSGS) as stream:
        for event in stream:
            types.append(event.type)
        message = stream.get_final_message()
    assert types.count("message_start") == 1 and "error" not in types
    assert message.id.startswith("msg_fakesecond")
    assert message.content[0].text == "Hello from second. lorem ipsum"
    assert len(first.requests) == 1
    lines = r.wait_lines(2)
    assert [(ln["provider"], ln["outcome"]) for ln in lines] == [
        ("first", "inband_error"), ("second", "ok")]  # fmt: skip
    assert "overloaded" in lines[0]["error"].lower()


def test_openai_error_chunk_before_first_content_fails_over(fakes, origin, router) -> None:
    first = fakes("first", default=Behaviour(kind="inband_error"))
    r = router(two(first, fakes("second"), "openai"))
    chunks = list(openai_client(r, origin).chat.completions.create(
        model="gpt-test", stream=True, messages=MSGS))  # fmt: skip
    assert {c.id for c in chunks} == {chunks[0].id} and "fakesecond" in chunks[0].id
    roles = [c for c in chunks if c.choices and c.choices[0].delta.role]
    assert len(roles) == 1  # one opening: nothing of first's stream reached the client
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "Hello from second."
    lines = r.wait_lines(2)
    assert [(ln["provider"], ln["outcome"]) for ln in lines] == [
        ("first", "inband_error"), ("second", "ok")]  # fmt: skip


CUT = Behaviour(kind="cut", after_deltas=3, deltas=6, interval=0.05)


def check_truncated(r: RouterProc, second: FakeProvider) -> dict[str, Any]:
    [line] = r.wait_lines(1)
    time.sleep(0.3)  # no second attempt follows
    assert len(r.lines()) == 1 and not second.requests
    assert (line["provider"], line["outcome"], line["final"]) == ("first", "truncated", True)
    assert line["bytes"] > 0 and line["content_events"] == 3
    return line


def test_anthropic_cut_after_commit_raises_not_truncates(fakes, origin, router) -> None:
    first, second = fakes("first", default=CUT), fakes("second")
    r = router(two(first, second))
    text = ""
    client = anthropic_client(r, origin)
    with (
        pytest.raises(anthropic.APIError) as e,
        client.messages.stream(model="claude-test", max_tokens=50, messages=MSGS) as stream,
    ):
        for event in stream:
            if event.type == "content_block_delta":
                text += event.delta.text
    assert text == "Hello from first."  # the 3 deltas arrived, then the error
    assert e.value.body == INTERRUPTED
    line = check_truncated(r, second)
    assert line["output_tokens"] is not None and line["input_tokens"] is not None


def test_openai_cut_after_commit_raises_not_truncates(fakes, origin, router) -> None:
    first, second = fakes("first", default=CUT), fakes("second")
    r = router(two(first, second, "openai"))
    text = ""
    with pytest.raises(openai.APIError) as e:
        for chunk in openai_client(r, origin).chat.completions.create(
            model="gpt-test", stream=True, messages=MSGS
        ):
            text += chunk.choices[0].delta.content or ""
    assert text == "Hello from first."
    assert "upstream stream interrupted" in str(e.value)
    check_truncated(r, second)


def test_stall_before_first_token_fails_over(fakes, origin, router) -> None:
    first = fakes("first", default=Behaviour(kind="stall_before_token"))
    r = router(two(first, fakes("second"), first_opts={"first_token_timeout": 1}))
    started = time.monotonic()
    with anthropic_client(r, origin).messages.stream(
        model="claude-test", max_tokens=50, messages=MSGS
    ) as stream:
        message = stream.get_final_message()
    elapsed = time.monotonic() - started
    assert message.content[0].text == "Hello from second."
    assert 1.0 <= elapsed < 2.0
    lines = r.wait_lines(2)
    assert [(ln["provider"], ln["outcome"]) for ln in lines] == [
        ("first", "timeout"), ("second", "ok")]  # fmt: skip
    assert lines[0]["error"] == "no content within 1s"


def test_stall_after_commit_ends_with_terminal_error_event(fakes, origin, router) -> None:
    first = fakes("first", default=Behaviour(kind="stall_after", after_deltas=2, deltas=5))
    second = fakes("second")
    r = router(two(first, second, first_opts={"idle_timeout": 1}))
    text, started = "", time.monotonic()
    client = anthropic_client(r, origin)
    with (
        pytest.raises(anthropic.APIStatusError) as e,
        client.messages.stream(model="claude-test", max_tokens=50, messages=MSGS) as stream,
    ):
        for event in stream:
            if event.type == "content_block_delta":
                text += event.delta.text
    assert 1.0 <= time.monotonic() - started < 3.0
    assert text == "Hello from first."[: len("Hello from")]
    assert e.value.body == INTERRUPTED  # Anthropic's own `event: error` shape
    [line] = r.wait_lines(1)
    assert (line["outcome"], line["error"], line["content_events"]) == (
        "truncated", "stalled over 1s", 2)  # fmt: skip
    assert not second.requests


# -- deadlines --------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["hang", "stall_before_token"])
def test_deadline_bounds_the_whole_request(kind, fakes, origin, router) -> None:
    first = fakes("first", default=Behaviour(kind=kind))
    second = fakes("second", default=Behaviour(kind=kind))
    slow = {"first_byte_timeout": 1.5, "response_timeout": 1.5, "first_token_timeout": 1.5}
    config = two(first, second, first_opts=slow, deadline=2)
    config["defaults"] = {"first_byte_timeout": 30, "response_timeout": 30,
                          "first_token_timeout": 30}  # fmt: skip
    r = router(config)
    client, started = anthropic_client(r, origin), time.monotonic()
    with pytest.raises(anthropic.APIStatusError) as e:
        if kind == "hang":
            ask(client)
        else:
            with client.messages.stream(model="claude-test", max_tokens=50, messages=MSGS) as s:
                s.get_final_message()
    elapsed = time.monotonic() - started
    assert e.value.status_code == 504 and 1.9 <= elapsed < 3.0
    assert e.value.body["type"] == "error"  # Anthropic's error format
    assert e.value.body["error"]["type"] in ("api_error", "timeout_error")
    assert "deadline" in e.value.body["error"]["message"]
    lines = r.wait_lines(2)  # first timed out on its own bound, second on what was left
    assert [(ln["provider"], ln["outcome"]) for ln in lines] == [
        ("first", "timeout"), ("second", "timeout")]  # fmt: skip
    assert lines[1]["total_ms"] < 800


# -- router.status ----------------------------------------------------------------------------


def _request(n: int) -> Request:
    body = b'{"model":"claude-test","max_tokens":5,"messages":[{"role":"user","content":"hi"}]}'
    return Request(f"status-{n}", "POST", "/v1/messages", [("content-type", "application/json")],
                   body, {"model": "claude-test"}, "anthropic", "anthropic")  # fmt: skip


async def test_router_status_command(fakes: Callable[..., FakeProvider], tmp_path: Path) -> None:
    limited = fakes("limited", default=Behaviour(kind="status", status=429,
                                                 headers={"retry-after": "30"}))  # fmt: skip
    bad = fakes("bad", default=Behaviour(kind="status", status=401))
    good = fakes("good")
    config = {
        "providers": {
            "limited": provider(limited),
            "bad": provider(bad, api_key="sk-bad-revoked"),  # its own key is refused
            "good": provider(good),
            "idle": provider(good),  # never used: no traffic, no latency
        },
        "profiles": {"default": {"hosts": ["localhost"], "providers": ["limited", "bad", "good"]}},
    }
    (tmp_path / "profiles.yaml").write_text(yaml.safe_dump(config))
    router = Router()
    with router_taddons(router) as tctx:
        tctx.configure(router, confdir=str(tmp_path), router_config=str(tmp_path / "profiles.yaml"))
        await router.running()
        try:
            assert router.engine is not None and router.config is not None
            for n in range(3):
                answer = await router.engine.route(router.config, "default", _request(n))
                assert answer.status == 200 and answer.served_by.provider == "good"
            text = tctx.master.commands.call("router.status")
        finally:
            await router.done()
    rows = {ln.split()[0]: ln for ln in text.splitlines()}
    head = rows["provider"].split()
    assert head[:4] == ["provider", "api", "state", "cooldown"] and "5m" in rows["provider"]
    assert re.search(r"limited\s+anthropic\s+cooling\s+(29|30)s\s+rate_limit\s+1\s+1\s", text)
    assert re.search(r"bad\s+anthropic\s+cooling\s+1800s\s+auth \(check the key\)\s+1\s+1\s", text)
    good_row = re.search(r"good\s+anthropic\s+healthy\s+-\s+-\s+3\s+0\s+(.+)$", rows["good"])
    assert good_row and "claude-test" in good_row.group(1)  # latency p50 per model
    assert re.search(r"idle\s+anthropic\s+healthy\s+-\s+-\s+0\s+0\s+-$", rows["idle"])
    assert "relayed: 0" in text and "upstream connections in use: 0" in text
