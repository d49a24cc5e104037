"""End to end, one test per strategy through the real mitmdump: round-robin, weighted,
least-latency and least-cost pick the provider the rules say, and the decision shows in the
JSONL (strategy, candidates, reason), the x-router-* headers and the flow's comment.
"""

from __future__ import annotations

import re
from collections import Counter
from typing import Any

import pytest
from llmrouter.tools.fakeprovider import Behaviour
from routerproc import RouterProc, anthropic_client, provider

pytestmark = pytest.mark.e2e

MSG: dict[str, Any] = {"model": "claude-test", "max_tokens": 50,
                       "messages": [{"role": "user", "content": "hi"}]}  # fmt: skip


def profile(strategy: str, *names: str, **extra: Any) -> dict[str, Any]:
    # Each request's own choice is under test: with affinity (on by default), the same "hi"
    # conversation would stay where it was first served (tests/test_e2e_affinity.py).
    return {"hosts": ["localhost"], "providers": list(names), "strategy": strategy,
            "affinity": False, **extra}  # fmt: skip


def ask(client: Any, profile_name: str | None = None, stream: bool = False) -> dict[str, str]:
    """One request; the x-router-* headers of its answer."""
    headers = {"X-Router-Profile": profile_name} if profile_name else {}
    if stream:
        with client.messages.stream(**MSG, extra_headers=headers) as s:
            s.get_final_message()
            return dict(s.response.headers)
    return dict(client.messages.with_raw_response.create(**MSG, extra_headers=headers).headers)


def comments(r: RouterProc) -> list[str]:
    r.stop()
    return [f.comment for f in r.flows() if f.comment]


def test_round_robin_spreads_12_requests_4_4_4(fakes, origin, router) -> None:
    fs = {n: fakes(n) for n in ("a", "b", "c")}
    r = router({"providers": {n: provider(f) for n, f in fs.items()},
                "profiles": {"default": profile("round-robin", "a", "b", "c")}})  # fmt: skip
    client = anthropic_client(r, origin)
    picks = []
    for _ in range(12):
        h = ask(client)
        assert h["x-router-strategy"] == "round-robin" and h["x-router-attempts"] == "1"
        picks.append(h["x-router-provider"])
    assert Counter(picks) == {"a": 4, "b": 4, "c": 4}
    assert picks[:3] == ["a", "b", "c"] and picks[3:6] == picks[:3]  # a rotation
    assert [len(f.requests) for f in fs.values()] == [4, 4, 4]
    lines = r.wait_lines(12)
    assert [x["reason"] for x in lines[:3]] == [f"round-robin: slot {i} of 3" for i in (1, 2, 3)]
    assert [x["candidates"] for x in lines[:3]] == [["a", "b", "c"], ["b", "c", "a"],
                                                    ["c", "a", "b"]]  # fmt: skip
    assert all(x["strategy"] == "round-robin" for x in lines)
    decisions = re.findall(r"router: \w+ default/round-robin -> (.*?) \| #1 ", r.output())
    assert decisions[:2] == [
        "a, b, c (round-robin: slot 1 of 3)",
        "b, c, a (round-robin: slot 2 of 3)",
    ]
    assert len(decisions) == 12  # one info line per decision
    assert all(re.fullmatch(r"[abc] 200 \d+ms · default/round-robin", c) for c in comments(r))


def test_weighted_3_to_1_comes_out_roughly_3_to_1(fakes, origin, router) -> None:
    a, b = fakes("a"), fakes("b")
    weighted = profile("weighted", "a", "b", weights={"a": 3, "b": 1})
    cfg = {"providers": {"a": provider(a), "b": provider(b, weight=5)},
           "profiles": {"default": weighted}}  # fmt: skip
    r = router(cfg)
    client = anthropic_client(r, origin)
    picks = Counter(ask(client)["x-router-provider"] for _ in range(40))
    # Binomial(40, 0.75): mean 30, sd 2.7. The profile's weights override b's own weight 5.
    assert 21 <= picks["a"] <= 38, picks
    lines = r.wait_lines(40)
    reasons = {x["provider"]: x["reason"] for x in lines}
    assert reasons["a"] == "weighted: 75% share of a" and reasons["b"] == "weighted: 25% share of b"
    assert all(x["candidates"] == [x["provider"], *({"a", "b"} - {x["provider"]})] for x in lines)
    assert all(c.endswith(" · default/weighted") for c in comments(r))


def test_least_latency_follows_the_faster_provider(fakes, origin, router) -> None:
    a = fakes("a", default=Behaviour(ttft=0.02))
    b = fakes("b", default=Behaviour(ttft=0.15))
    cfg = {
        "providers": {"a": provider(a), "b": provider(b)},
        "profiles": {
            # explore 0: no random cold picks, so the test is deterministic
            "default": profile("least-latency", "a", "b", explore=0, min_samples=3),
            "only-a": profile("failover", "a"),
            "only-b": profile("failover", "b"),
        },
    }
    r = router(cfg)
    client = anthropic_client(r, origin)
    # Cold: neither is taken for the fastest; the reason says it is exploring.
    h = ask(client, stream=True)
    assert "explor" in r.wait_lines(1)[0]["reason"]
    # Warm up both through other profiles: latency belongs to the provider, not the profile.
    for name in ("only-a", "only-b") * 3:
        ask(client, name, stream=True)
    h = ask(client, stream=True)
    assert h["x-router-provider"] == "a" and h["x-router-strategy"] == "least-latency"
    line = r.wait_lines(8)[-1]
    assert line["candidates"] == ["a", "b"]
    assert re.fullmatch(r"least-latency: ttft p50 \d+ ms over \d+ samples", line["reason"])

    a.set_default(Behaviour(ttft=0.4))  # a slows down: traffic moves to b

    def until(name: str, limit: int) -> int:
        for n in range(1, limit + 1):
            if ask(client, stream=True)["x-router-provider"] == name:
                return n
        raise AssertionError(f"traffic never moved to {name}")

    assert until("b", 8) > 1  # a's median turns slow after a few slow samples
    b.set_default(Behaviour(ttft=0.8))  # now b is the slow one: traffic moves back to a
    until("a", 10)
    line = r.wait_lines(lambda ls: ls[-1]["provider"] == "a")[-1]
    assert line["strategy"] == "least-latency" and line["candidates"] == ["a", "b"]


def test_least_cost_picks_the_cheaper_and_fails_over_to_the_dearer(fakes, origin, router) -> None:
    dear, cheap = fakes("dear"), fakes("cheap")
    cfg = {
        "providers": {
            "dear": provider(dear, models={"*": "big-model"}, price={"input": 15, "output": 75}),
            "cheap": provider(cheap, models={"claude-*": "small-model"},
                              price={"input": 1, "output": 5}),
        },
        "profiles": {"default": profile("least-cost", "dear", "cheap")},
    }  # fmt: skip
    r = router(cfg)
    client = anthropic_client(r, origin)
    h = ask(client)
    assert (h["x-router-provider"], h["x-router-strategy"]) == ("cheap", "least-cost")
    assert cheap.requests[0].json["model"] == "small-model"  # the mapped model is priced
    line = r.wait_lines(1)[0]
    assert line["candidates"] == ["cheap", "dear"] and line["model"] == "small-model"
    assert re.fullmatch(r"least-cost: \$[\d.]+/M blended", line["reason"]), line["reason"]
    assert line["cost_usd"] is not None and line["cost_usd"] > 0

    cheap.set_default(Behaviour(kind="status", status=503))
    h = ask(client, stream=True)
    assert (h["x-router-provider"], h["x-router-attempts"]) == ("dear", "2")
    assert dear.requests[0].json["model"] == "big-model"
    fail, ok = r.wait_lines(3)[1:]
    assert (fail["provider"], fail["status"], ok["provider"]) == ("cheap", 503, "dear")
    assert fail["candidates"] == ok["candidates"] == ["cheap", "dear"]
    cs = comments(r)
    assert re.fullmatch(r"cheap 503 \d+ms → dear 200 \d+ms · default/least-cost", cs[-1]), cs
