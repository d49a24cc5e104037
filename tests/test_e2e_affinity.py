"""End to end, conversation affinity (issue 11) through the real mitmdump with the anthropic SDK
and fake providers that simulate a prompt cache: round-robin keeps each conversation on the
provider holding its cache (and spreads conversations over all of them), `affinity: false` shows
what that saves, and a binding follows a failover and outlives the old provider's recovery
until it expires.
"""

from __future__ import annotations

import json
import time
import uuid
from collections import Counter, defaultdict
from itertools import pairwise
from typing import Any

import pytest
from llmrouter.tools._fakecache import PromptCache
from llmrouter.tools.fakeprovider import Behaviour
from routerproc import RouterProc, anthropic_client, provider, wait_for

pytestmark = pytest.mark.e2e

PRICE = {"input": 3.0, "output": 15.0, "cache_read": 0.3, "cache_write": 3.75}  # Sonnet's
# The system prompt a coding agent sends every turn, marked for caching: ~2k tokens.
SYSTEM = [{"type": "text", "text": "You are a careful coding assistant. " * 220,
           "cache_control": {"type": "ephemeral"}}]  # fmt: skip


def session(run: str, i: int) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"llmrouter-affinity-{run}-{i}"))


def turn_messages(t: int) -> list[dict[str, Any]]:
    """Turn t's history: the breakpoint moves to the newest user block, as Claude Code's does."""
    messages: list[dict[str, Any]] = []
    for k in range(1, t + 1):
        text = f"turn {k}: please look at this part of the code. " + "context " * 60
        messages.append({"role": "user", "content": [{"type": "text", "text": text}]})
        if k < t:
            messages.append({"role": "assistant", "content": f"noted, part {k}"})
    messages[-1]["content"][0]["cache_control"] = {"type": "ephemeral"}
    return messages


def ask(client: Any, sid: str, t: int, profile: str) -> dict[str, str]:
    user_id = json.dumps({"device_id": "d" * 64, "account_uuid": "", "session_id": sid})
    raw = client.messages.with_raw_response.create(
        model="claude-test", max_tokens=20, system=SYSTEM, messages=turn_messages(t),
        metadata={"user_id": user_id}, extra_headers={"X-Router-Profile": profile},
    )  # fmt: skip
    return dict(raw.headers)


def three(fakes: Any, **profile: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    fs = {n: fakes(n, prompt_cache=PromptCache()) for n in ("a", "b", "c")}
    common = {"hosts": ["localhost"], "providers": list(fs), "strategy": "round-robin"}
    cfg = {
        "providers": {n: provider(f, price=PRICE) for n, f in fs.items()},
        "profiles": {"aff": {**common, **profile}, "off": {**common, "affinity": False},
                     # one provider each: a request there tells whether it serves again
                     **{f"only-{n}": {"hosts": ["localhost"], "providers": [n]} for n in fs}},
        "health": {"backoff_initial": 0.2, "backoff_max": 0.2},
    }  # fmt: skip
    return cfg, fs


def cache_stats(lines: list[dict[str, Any]]) -> tuple[float, float, dict[str, list[str]]]:
    """(share of the repeated prefix read from cache, cost in USD, providers per conversation).

    A turn repeats the prefix its previous turn wrote up to its breakpoint (read + write)."""
    turns: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for x in lines:
        turns[x["conversation"]].append(x)
    repeated = read = 0
    for ts in turns.values():
        for prev, cur in pairwise(ts):
            repeated += prev["cache_read_tokens"] + prev["cache_write_tokens"]
            read += cur["cache_read_tokens"]
    cost = sum(x["cost_usd"] for x in lines)
    return read / repeated, cost, {k: [x["provider"] for x in v] for k, v in turns.items()}


def test_affinity_keeps_the_cache_and_spreads_conversations(fakes, origin, router) -> None:
    cfg, _ = three(fakes)
    r: RouterProc = router(cfg, "--set", "router_profile=aff")
    client = anthropic_client(r, origin)
    for run in ("aff", "off"):
        for t in range(1, 9):  # turn by turn, the 20 conversations interleaved
            for i in range(20):
                ask(client, session(run, i), t, run)
    lines = r.wait_lines(320, timeout=30)
    assert len(lines) == 320 and all(x["status"] == 200 and x["attempt"] == 1 for x in lines)
    on = [x for x in lines if x["profile"] == "aff"]
    off = [x for x in lines if x["profile"] == "off"]
    share_on, cost_on, where_on = cache_stats(on)
    share_off, cost_off, _ = cache_stats(off)
    print(f"\naffinity on:  {share_on:.1%} of the repeated prefix read from cache, ${cost_on:.4f}")
    print(f"affinity off: {share_off:.1%} of the repeated prefix read from cache, ${cost_off:.4f}")
    print(f"affinity saves {1 - cost_on / cost_off:.0%} of the cost")
    assert len(where_on) == 20 and all(len(set(ps)) == 1 for ps in where_on.values())
    assert share_on >= 0.9
    spread = Counter(ps[0] for ps in where_on.values())
    assert set(spread) == {"a", "b", "c"} and all(4 <= n <= 10 for n in spread.values()), spread
    # Without affinity, round-robin moves every turn: its prefix is written again (1.25x) where
    # a cache read (0.1x) would have done, and reads only what a turn three back left there.
    assert share_off < 0.8 and cost_on < 0.75 * cost_off
    states = Counter(x["affinity"] for x in on)
    assert states == {"new": 20, "bound": 140}
    assert all(x["affinity"] is None and x["conversation"] for x in off)


def test_a_binding_follows_failover_and_outlives_recovery(fakes, origin, router) -> None:
    ttl = 5.0
    cfg, fs = three(fakes, affinity_ttl=ttl)
    r: RouterProc = router(cfg, "--set", "router_profile=aff")
    client = anthropic_client(r, origin)
    sid = session("failover", 0)
    first = ask(client, sid, 1, "aff")["x-router-provider"]
    assert ask(client, sid, 2, "aff")["x-router-provider"] == first
    fs[first].set_default(Behaviour(kind="status", status=503))
    h = ask(client, sid, 3, "aff")  # fails over at once, in the same request
    moved = h["x-router-provider"]
    assert moved != first and h["x-router-attempts"] == "2"
    fs[first].set_default(Behaviour())

    def healthy_again() -> bool:  # `first` answers its own profile again
        probe = client.messages.with_raw_response.create(
            model="claude-test", max_tokens=5, messages=[{"role": "user", "content": "ping"}],
            extra_headers={"X-Router-Profile": f"only-{first}"},
        )  # fmt: skip
        return probe.headers["x-router-provider"] == first

    assert wait_for(healthy_again, 10)  # `first` cools for 0.2 s, then one probe passes
    for t in (4, 5):  # bound to `moved` now: `first` recovered, the conversation stays
        assert ask(client, sid, t, "aff")["x-router-provider"] == moved
    done = time.monotonic()  # the binding slid at turn 5's success, before this moment
    time.sleep(max(0.0, done + ttl + 0.05 - time.monotonic()))
    assert ask(client, sid, 6, "aff")["x-router-provider"] == first  # expired: the hash's pick
    assert ask(client, sid, 7, "aff")["x-router-provider"] == first
    lines = [x for x in r.wait_lines(10) if x["profile"] == "aff"]
    got = [(x["provider"], x["status"], x["affinity"]) for x in lines]
    assert got == [
        (first, 200, "new"), (first, 200, "bound"),
        (first, 503, "bound"), (moved, 200, "rebound"),
        (moved, 200, "bound"), (moved, 200, "bound"),
        (first, 200, "expired"), (first, 200, "bound"),
    ]  # fmt: skip
    assert len({x["conversation"] for x in lines}) == 1
    assert lines[4]["reason"].endswith(f"; bound to {moved}")
    # the cache followed the conversation: each provider's turns after its first read it
    assert lines[5]["cache_read_tokens"] > 0 and lines[7]["cache_read_tokens"] > 0
