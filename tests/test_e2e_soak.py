"""Soak (issue 4): 200 requests from 20 concurrent clients, through a real mitmdump, against
three fake providers that fail at random with a seeded fault mix, plus one that refuses every
connection. Loopback only, bounded in time.

Checked: every request succeeds unless it was cut after its commit point (the client's SDK
raises) or every candidate failed or was cooling; client-side errors and JSONL outcomes agree
one for one; nothing hangs; nothing is left open at the end (parked or relayed streams,
upstream connections), as the router reports when mitmdump stops.
"""

from __future__ import annotations

import random
import time
from collections import Counter, defaultdict
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import anthropic
import openai
import pytest
from llmrouter.tools.fakeprovider import Behaviour
from routerproc import environ, free_port, provider

pytestmark = pytest.mark.e2e

N, CONCURRENCY, SEED = 200, 20, 20240
# Stream-only faults (in-band error, cut) need enough weight that every run shows some: at
# 0.03, about 1 run in 40 had no cut at all and the soak would prove nothing about truncation.
FAULTS = {"503": 0.04, "429": 0.02, "drop": 0.03, "inband_error": 0.06, "cut": 0.06}
BEHAVIOUR = Behaviour(deltas=4, interval=0.01)  # a cut comes after 3 of the 4 deltas
TEXT = "Hello from {}. lorem"
INTERRUPTED = {
    "type": "error",
    "error": {"type": "api_error", "message": "upstream stream interrupted"},
}
MSGS = [{"role": "user", "content": "hi"}]
FAKES = ("p1", "p2", "p3")


def config(urls: dict[str, str]) -> dict[str, Any]:
    fast = {"connect_timeout": 1, "first_byte_timeout": 3, "first_token_timeout": 3,
            "idle_timeout": 3, "response_timeout": 5}  # fmt: skip
    providers = {"dead": provider(f"http://127.0.0.1:{free_port()}")}  # refuses every time
    for name in FAKES:
        providers[name] = provider(urls[name])
        providers[f"{name}o"] = provider(urls[name], "openai")
    return {
        "providers": providers,
        "defaults": {**fast, "deadline": 15},
        # Short cooldowns, so providers come back within the soak and get probed.
        "health": {"backoff_initial": 0.3, "backoff_max": 2, "rate_limit_cooldown": 1},
        "profiles": {"default": {"hosts": ["localhost"], "providers": list(providers)}},
    }


def one(i: int, kind: str, ac: anthropic.Anthropic, oc: openai.OpenAI) -> tuple[str, str]:
    """One request; ("ok", text) | ("truncated", why) | ("failed", status). Anything else
    (a connection error, a client timeout) raises and fails the soak."""
    try:
        if kind == "a-stream":
            with ac.messages.stream(model="claude-test", max_tokens=50, messages=MSGS) as s:
                return "ok", s.get_final_message().content[0].text
        if kind == "a-plain":
            msg = ac.messages.create(model="claude-test", max_tokens=50, messages=MSGS)
            return "ok", msg.content[0].text
        if kind == "o-stream":
            text = ""
            for chunk in oc.chat.completions.create(model="gpt-test", stream=True, messages=MSGS):
                text += (chunk.choices[0].delta.content or "") if chunk.choices else ""
            return "ok", text
        reply = oc.chat.completions.create(model="gpt-test", messages=MSGS)
        return "ok", reply.choices[0].message.content or ""
    except anthropic.APIStatusError as e:
        if e.status_code == 200:  # an error event inside a 200 stream
            assert e.body == INTERRUPTED, e.body
            return "truncated", str(e)
        return "failed", str(e.status_code)
    except openai.APIStatusError as e:
        return "failed", str(e.status_code)
    except openai.APIError as e:  # the data chunk with an error object
        assert "upstream stream interrupted" in str(e), e
        return "truncated", str(e)


def by_request(lines: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for line in lines:
        out[line["request_id"]].append(line)
    return out


def verdict(lines: list[dict[str, Any]]) -> str:
    """What the client must have seen, from the router's own record of the request."""
    final = [ln for ln in lines if ln["final"]]
    assert len(final) <= 1, lines
    if not final:
        # All failed: only after every candidate was tried or was skipped (cooling or probed).
        tried = {ln["provider"] for ln in lines}
        skipped = {s["provider"] for ln in lines for s in ln["skipped"]}
        untried = set(lines[0]["candidates"]) - tried - skipped
        assert not untried, f"all-failed with untried candidates {untried}: {lines}"
        assert all(ln["outcome"] != "ok" for ln in lines), lines
        return "failed"
    assert all(not ln["final"] for ln in lines if ln is not final[0])
    if final[0]["outcome"] == "ok":
        return "ok"
    assert final[0]["outcome"] == "truncated" and final[0]["stream"], final[0]
    return "truncated"


def test_soak(fakes, origin, router) -> None:
    rng = random.Random(SEED)
    pool = {n: fakes(n, default=BEHAVIOUR, faults=FAULTS, seed=rng.randrange(2**32)) for n in FAKES}
    r = router(config({n: f.url for n, f in pool.items()}))
    base = origin.url.replace("127.0.0.1", "localhost")
    with environ(r.env()):
        ac = anthropic.Anthropic(base_url=base, api_key="k", max_retries=0, timeout=20)
        oc = openai.OpenAI(base_url=base + "/v1", api_key="k", max_retries=0, timeout=20)
    kinds = ["a-stream"] * 4 + ["a-plain"] * 3 + ["o-stream"] * 2 + ["o-plain"]
    plan = [rng.choice(kinds) for _ in range(N)]

    started = time.monotonic()
    with ThreadPoolExecutor(CONCURRENCY) as ex:
        futures = [ex.submit(one, i, kind, ac, oc) for i, kind in enumerate(plan)]
        results = [f.result(timeout=max(1.0, started + 60 - time.monotonic())) for f in futures]
    elapsed = time.monotonic() - started
    assert elapsed < 45, f"soak took {elapsed:.1f}s"

    client = Counter(status for status, _ in results)
    for (status, text), kind in zip(results, plan, strict=True):
        if status == "ok":  # intact, from one provider, never a mix or a cut
            assert text in {TEXT.format(n) for n in FAKES}, (kind, text)
        if status == "truncated":
            assert kind.endswith("stream"), "only a committed stream can be cut"

    lines = r.wait_lines(lambda ls: len(by_request(ls)) >= N and sum(ln["final"] for ln in ls)
                         >= client["ok"] + client["truncated"], timeout=15)  # fmt: skip
    requests = by_request(lines)
    assert len(requests) == N, "a request without any attempt line was refused untried"
    router_side = Counter(verdict(ls) for ls in requests.values())
    assert router_side == client, (router_side, client)
    # The faults really happened, and most requests still succeeded.
    outcomes = Counter(ln["outcome"] for ln in lines)
    for outcome in ("http_error", "connect_error", "inband_error", "truncated"):
        assert outcomes[outcome] > 0, outcomes
    assert any(ln["probe"] for ln in lines) and any(ln["skipped"] for ln in lines)
    assert client["ok"] >= 0.6 * N, client

    # No leaks: every upstream response was released (the fakes see no open request) ...
    end = time.monotonic() + 5
    while any(f.open_connections for f in pool.values()) and time.monotonic() < end:
        time.sleep(0.05)
    assert {n: f.open_connections for n, f in pool.items()} == dict.fromkeys(FAKES, 0)
    before_stop = r.output()
    assert "Traceback" not in before_stop and "internal error" not in before_stop
    # ... and nothing is parked or relayed, and no upstream connection is held, at the end.
    r.stop()
    assert "router: stopping: handoff pending=0 upstream in use=0" in r.output()
    print(f"soak: {elapsed:.1f}s client {dict(client)} attempts {dict(outcomes)}")
