"""End to end, several routers, one view (issue 14): two real `mitmdump -s addon/router.py`
instances share a real `redis-server` (started by the test on a free port, stopped by PID),
driven with the anthropic SDK against fake providers.

- a 429 with `retry-after: 5` seen by A: B skips the provider within 1 s and for the rest of
  the 5 s, then tries it again;
- a recovering provider gets one probe across both instances;
- a conversation whose turns alternate between A and B stays on one provider, with the
  binding's states (new, bound, rebound, expired) as one router tells them;
- a budget holds across A and B under 20 concurrent clients;
- Redis SIGKILLed and SIGSTOPped mid-load: every request answered, no added latency once the
  breaker is open, one warning each way, no traceback, sharing back within 5 s;
- after each test, every key under the prefix has a TTL.

Waits are on conditions; the only time bounds asserted are the issue's own (1 s, 5 s, 5 ms),
with the margins the tests name.
"""

from __future__ import annotations

import asyncio
import json
import statistics
import subprocess
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import anthropic
import pytest
import redis
from llmrouter.access import hash_token, new_token
from llmrouter.tools.fakeprovider import Behaviour, FakeProvider
from redisproc import RedisProc
from routerproc import RouterProc, anthropic_client, free_port, provider, wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.redis]

MSG: dict[str, Any] = {"model": "claude-test", "max_tokens": 20,
                       "messages": [{"role": "user", "content": "hi"}]}  # fmt: skip
JOINED = "router: shared state: Redis at"  # the info line once the first resync closed the breaker


def duo(*fakes: FakeProvider, **extra: Any) -> dict[str, Any]:
    """One failover profile over the fakes, in order, on the TLS origin host `localhost`;
    affinity off unless the test turns it on (the SDK's requests are one conversation)."""
    names = [f.name for f in fakes]
    return {
        "providers": {f.name: provider(f) for f in fakes},
        "profiles": {"team": {"hosts": ["localhost"], "providers": names, "affinity": False,
                              "strategy": "failover", **extra.pop("profile", {})}},
        **extra,
    }  # fmt: skip


class Pair:
    """Routers A and B on one Redis; the keys they leave are checked when the test ends."""

    def __init__(self, router: Callable[..., RouterProc], redis_server: RedisProc) -> None:
        self.router, self.redis = router, redis_server
        self.routers: list[RouterProc] = []

    def start(self, cfg: dict[str, Any], *options: str) -> tuple[RouterProc, RouterProc]:
        if "shared" not in cfg:
            options = ("--set", f"router_redis={self.redis.url}", *options)
        a, b = self.router(cfg, *options), self.router(cfg, *options)
        for r in (a, b):  # serving starts before the store has joined: wait for it
            assert wait_for(lambda r=r: JOINED in r.output(), 10), r.output()
        self.routers += [a, b]
        return a, b

    def keys_without_ttl(self, prefix: str) -> list[bytes]:
        client = redis.Redis.from_url(self.redis.url)
        try:
            return [k for k in client.scan_iter(match=f"{prefix}*") if client.pttl(k) < 0]
        finally:
            client.close()


@pytest.fixture
def pair(router: Callable[..., RouterProc], redis_server: RedisProc) -> Iterator[Pair]:
    p = Pair(router, redis_server)
    yield p
    # No traceback while they ran (mitmproxy's own, of connections cut at exit, may follow).
    outputs = [r.output() for r in p.routers]
    for r in p.routers:  # `done` flushes the queued writes and leaves the instance set
        r.stop()
    for out in outputs:
        assert "Traceback" not in out, out
    if redis_server.proc is not None and not redis_server.frozen:
        for prefix in ("llmrouter:", "team:"):
            assert p.keys_without_ttl(prefix) == []


def served(client: anthropic.Anthropic, **kw: Any) -> str:
    raw = client.messages.with_raw_response.create(**{**MSG, **kw})
    return raw.headers["x-router-provider"]


def test_an_instance_that_cannot_reach_redis_starts_and_routes_on_local_state(
    fakes, origin, router
) -> None:
    x = fakes("x")
    closed = f"redis://:s3cret@127.0.0.1:{free_port()}/0"  # nothing listens there
    r = router(duo(x), "--set", f"router_redis={closed}")
    assert wait_for(lambda: "unreachable at start" in r.output(), 10)
    client = anthropic_client(r, origin)
    assert [served(client) for _ in range(5)] == ["x"] * 5
    out = r.output()
    assert out.count("unreachable at start") == 1 and "Traceback" not in out
    assert "s3cret" not in out


# -- cooldowns and probes ----------------------------------------------------------------------


def test_a_429_seen_by_a_cools_the_provider_on_b_within_1s_and_for_its_5s(
    fakes, origin, pair
) -> None:
    x, y = fakes("x"), fakes("y")
    x.push(Behaviour(kind="status", status=429, headers={"retry-after": "5"}))
    a, b = pair.start(duo(x, y))
    ca, cb = anthropic_client(a, origin), anthropic_client(b, origin)
    assert served(ca) == "y"  # x said 429: A failed over
    t429 = x.requests[0].t
    seen: list[tuple[float, str]] = []  # B's requests: when sent (from the 429), served by
    while time.monotonic() < t429 + 5.8 or seen[-1][0] < 5.3:
        seen.append((time.monotonic() - t429, served(cb)))
    to_x = [q.t - t429 for q in x.requests[1:]]
    # Learned within 1 s (by pub/sub it is at once; 1 s is the bound) and kept until
    # the deadline (the cooldown ends at A's 429 + 5 s, at or after x's arrival + 5 s).
    assert not [t for t in to_x if 1.0 <= t < 4.95], to_x
    during = [p for t, p in seen if 1.0 <= t < 4.95]
    assert len(during) >= 10 and set(during) == {"y"}, seen
    assert [p for t, p in seen if t >= 5.3][-1] == "x", seen  # and no longer than that
    cooling = [s for ln in b.wait_lines(len(seen)) for s in ln["skipped"]]
    assert cooling and {s["provider"] for s in cooling} == {"x"}
    assert all(s["reason"].startswith("cooling") for s in cooling)


def test_a_recovering_provider_gets_one_probe_across_both(fakes, origin, pair) -> None:
    x, y = fakes("x"), fakes("y")
    a, b = pair.start(duo(x, y, health={"backoff_initial": 1, "backoff_max": 1}))
    clients = [anthropic_client((a, b)[i % 2], origin) for i in range(12)]
    with ThreadPoolExecutor(12) as pool:  # their tunnels open now: the burst below is quick
        assert set(pool.map(served, clients)) == {"x"}
    # A 503 cools x for 1 s; the probe after it is slow, so every request of the burst is in
    # flight while it is.
    x.push(Behaviour(kind="status", status=503), Behaviour(delay=2.0))
    warm = len(x.requests)
    assert served(clients[0]) == "y"  # on A
    t503 = x.requests[warm].t
    assert wait_for(lambda: time.monotonic() > t503 + 1.3, 5)  # the cooldown is over
    with ThreadPoolExecutor(12) as pool:
        got = list(pool.map(served, clients))
    assert sorted(got) == ["x"] + ["y"] * 11, got  # one probe, by one instance
    assert len(x.requests) == warm + 2
    # The probe passed: both instances use x again, neither probes it.
    assert served(anthropic_client(b, origin)) == "x"
    assert served(anthropic_client(a, origin)) == "x"
    lines = a.wait_lines(15) + b.wait_lines(13)  # a request a line, and the 503
    probes = [ln for ln in lines if ln["provider"] == "x" and ln["probe"]]
    assert len(probes) == 1 and probes[0]["status"] == 200
    skips = [s for ln in lines for s in ln["skipped"] if s["provider"] == "x"]
    assert {s["reason"] for s in skips} == {"probe in flight"}


# -- conversation bindings ---------------------------------------------------------------------


def test_a_conversations_turns_alternating_between_a_and_b_stay_on_one_provider(
    fakes, origin, pair
) -> None:
    p, q, r = fakes("p"), fakes("q"), fakes("r")
    quick = {"backoff_initial": 0.5, "backoff_max": 0.5}
    cfg = duo(p, q, r, profile={"affinity": True, "affinity_ttl": 2.5}, health=quick)
    a, b = pair.start(cfg)
    ca, cb = anthropic_client(a, origin), anthropic_client(b, origin)
    session = {"X-Claude-Code-Session-Id": str(uuid.uuid4())}

    def turn(client: anthropic.Anthropic) -> str:
        return served(client, extra_headers=session)

    p.push(Behaviour(kind="status", status=429, headers={"retry-after": "1"}))
    assert turn(ca) == "q"  # p refused: the conversation is bound to q on A
    t429 = p.requests[0].t
    assert wait_for(lambda: time.monotonic() > t429 + 1.3, 5)  # p is back on both
    # Alone, B would send this turn to p (first in order and healthy): the binding says q.
    assert [turn(c) for c in (cb, ca, cb)] == ["q"] * 3
    q.push(Behaviour(kind="status", status=503))
    assert turn(ca) == "p"  # q failed on A: rebound to p (its probe)
    assert [turn(c) for c in (cb, ca)] == ["p", "p"]  # B reads the new binding
    last = time.monotonic()
    assert wait_for(lambda: time.monotonic() > last + 2.7, 5)  # past the binding's TTL
    assert turn(cb) == "p"  # expired: the strategy chose (p first)

    def affinity(r: RouterProc, n: int) -> list[tuple[str, str]]:
        lines = [ln for ln in r.wait_lines(n) if ln["outcome"] == "ok"]
        return [(ln["provider"], ln["affinity"]) for ln in lines]

    assert affinity(a, 6) == [("q", "new"), ("q", "bound"), ("p", "rebound"), ("p", "bound")]
    assert affinity(b, 4) == [("q", "bound"), ("q", "bound"), ("p", "bound"), ("p", "expired")]
    conversations = {ln["conversation"] for ln in a.lines() + b.lines()}
    assert len(conversations) == 1 and session["X-Claude-Code-Session-Id"] not in str(conversations)


# -- budgets -----------------------------------------------------------------------------------

ALICE = new_token()


def test_a_budget_holds_across_a_and_b_under_20_concurrent_clients(
    fakes, origin, pair, redis_server
) -> None:
    # $1 per million output tokens: each request reserves and costs $0.003; $0.03 is ten.
    x = fakes("x", default=Behaviour(output_tokens=3000, delay=0.05))
    cfg = duo(x)
    cfg["providers"]["x"]["price"] = {"input": 0, "output": 1}
    cfg["access"] = {"users": {"alice": {"token_sha256": hash_token(ALICE), "profiles": ["team"],
                                         "limits": {"usd_per_month": 0.03}}}}  # fmt: skip
    cfg["shared"] = {"redis": redis_server.url, "prefix": "team:"}  # the config's block
    a, b = pair.start(cfg)
    big = {**MSG, "max_tokens": 3000}

    async def client(i: int) -> int:
        c = anthropic_client((a, b)[i % 2], origin, user=f"alice:{ALICE}", aio=True)
        served = 0
        try:
            while True:
                try:
                    await c.messages.create(**big)
                    served += 1
                except anthropic.RateLimitError as e:
                    if e.response.headers["x-should-retry"] == "false":
                        return served  # exhausted: the budget is spent
                    await asyncio.sleep(0.02)  # only requests in flight are in the way
        finally:
            await c.close()

    async def twenty() -> list[int]:
        return await asyncio.gather(*(client(i) for i in range(20)))

    counts = asyncio.run(twenty())
    assert sum(counts) == 10, counts  # not 10 per instance
    assert len(x.requests) == 10
    assert wait_for(lambda: len(a.lines()) + len(b.lines()) == 10)
    lines = a.lines() + b.lines()
    spent = sum(ln["charged_usd"] or ln["cost_usd"] for ln in lines)
    assert spent <= 0.03 + 0.003 + 1e-9  # overspend <= one request's reservation
    assert {ln["user"] for ln in lines} == {"alice"}  # (every client, of A or B, ended refused)
    month = time.strftime("%Y-%m", time.gmtime())
    key = f"team:lim:alice:month:{month}"
    with redis.Redis.from_url(redis_server.url) as db:  # micro-USD spent, held
        assert wait_for(lambda: db.hmget(key, "s", "h") == [b"30000", b"0"])
    for r in (a, b):  # each instance's /status shows the team's spend, not its own share
        assert wait_for(lambda r=r: month_usd(r, f"alice:{ALICE}") == pytest.approx(0.03), 10)
        shared = json.loads(page(r, f"alice:{ALICE}", "/status"))["shared"]
        assert (shared["backend"], shared["state"], shared["instances"]) == (
            "redis",
            "connected",
            2,
        )
        assert shared["prefix"] == "team:" and shared["dropped"] == 0
        metrics = page(r, f"alice:{ALICE}", "/metrics").decode()
        assert 'llmrouter_shared_state{what="connected"} 1.0' in metrics
    # A restart counts nothing twice: the team's spend is in Redis, not rebuilt from A's
    # journal (which holds A's part of it).
    a.stop()
    a.start()
    assert wait_for(lambda: JOINED in a.output(), 10)
    assert wait_for(lambda: month_usd(a, f"alice:{ALICE}") == pytest.approx(0.03), 10)
    with redis.Redis.from_url(redis_server.url) as db:
        assert db.hget(key, "s") == b"30000"
    # A change to `shared:` waits for a restart, and the log says so.
    cfg["shared"]["prefix"] = "team2:"
    b.write_config(cfg)
    assert wait_for(lambda: "shared: changed in the config" in b.output(), 10)
    assert "take effect at restart" in b.output()


def page(r: RouterProc, credentials: str, path: str) -> bytes:
    out = subprocess.run(["curl", "-sS", "-u", credentials, r.proxy + path],
                         capture_output=True, timeout=30, check=True)  # fmt: skip
    return out.stdout


def month_usd(r: RouterProc, credentials: str) -> float:
    status = json.loads(page(r, credentials, "/status"))
    (alice,) = [u for u in status["users"] if u["name"] == "alice"]
    return alice["month_usd"]


# -- Redis killed or frozen --------------------------------------------------------------------

BOB = new_token()
OPENED = "router: shared state: Redis at"  # ... unreachable (...); routing on local state
CLOSED = "answers again after"


class Load:
    """Six clients, each its own conversation, alternating between A and B: every request
    reads its binding and reserves bob's budget (one round trip while Redis answers)."""

    def __init__(self, a: RouterProc, b: RouterProc, origin: FakeProvider) -> None:
        self.done: list[tuple[float, float, int]] = []  # (started, seconds, status)
        self._stop = threading.Event()
        # Made here: a client reads the proxy settings from os.environ, which is not per thread.
        pairs = [[anthropic_client(r, origin, user=f"bob:{BOB}") for r in (a, b)] for _ in range(6)]
        self._threads = [threading.Thread(target=self._client, args=(i, c))
                         for i, c in enumerate(pairs)]  # fmt: skip
        for t in self._threads:
            t.start()

    def _client(self, i: int, clients: list[anthropic.Anthropic]) -> None:
        msg = {**MSG, "messages": [{"role": "user", "content": f"client {i} asks"}]}
        n = 0
        while not self._stop.is_set():
            t0 = time.monotonic()
            try:
                status = clients[n % 2].messages.with_raw_response.create(**msg).status_code
            except anthropic.APIStatusError as e:
                status = e.status_code
            except anthropic.APIConnectionError:
                status = 0
            self.done.append((t0, time.monotonic() - t0, status))
            n += 1

    def count_since(self, t: float) -> int:
        return sum(1 for t0, _, _ in self.done if t0 >= t)

    def p50_ms(self, since: float, until: float) -> float:
        return 1000 * statistics.median(s for t0, s, _ in self.done if since <= t0 < until)

    def stop(self) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(30)


def lines_with(r: RouterProc, text: str) -> int:
    return sum(text in line for line in r.output().splitlines())


@pytest.mark.parametrize("fault", ["sigkill", "sigstop"])
def test_redis_killed_or_frozen_mid_load(fault, fakes, origin, pair, redis_server) -> None:
    x, y = fakes("x"), fakes("y")
    cfg = duo(x, y, profile={"affinity": True})
    cfg["profiles"]["check"] = {"hosts": ["localhost"], "providers": ["x", "y"],
                                "affinity": False}  # fmt: skip
    for f in ("x", "y"):
        cfg["providers"][f]["price"] = {"input": 1, "output": 1}
    bob = {"token_sha256": hash_token(BOB), "profiles": ["team", "check"],
           "limits": {"usd_per_month": 1000}}  # fmt: skip
    cfg["access"] = {"users": {"bob": bob}}
    a, b = pair.start(cfg)
    load = Load(a, b, origin)
    try:
        t_up = time.monotonic()
        assert wait_for(lambda: load.count_since(t_up) >= 120, 60)
        t_fault = time.monotonic()
        redis_server.kill() if fault == "sigkill" else redis_server.freeze()
        assert wait_for(lambda: all(lines_with(r, " unreachable (") for r in (a, b)), 10)
        t_open = time.monotonic()  # both breakers are open: local state from here
        assert wait_for(lambda: load.count_since(t_open) >= 120, 60)
        t_back = time.monotonic()
        redis_server.start(redis_server.port) if fault == "sigkill" else redis_server.thaw()
        # Sharing resumes within 5 s of Redis being back (the bound).
        assert wait_for(lambda: all(lines_with(r, CLOSED) for r in (a, b)), 5), b.output()
        t_shared = time.monotonic()
        assert wait_for(lambda: load.count_since(t_shared) >= 30, 60)
    finally:
        load.stop()
    assert {s for _, _, s in load.done} == {200}, "every request answered"
    up, down = load.p50_ms(t_up, t_fault), load.p50_ms(t_open, t_back)
    assert down - up <= 5.0, (up, down)  # nothing added once the breaker is open
    for r in (a, b):  # one warning each way, no traceback, nothing per request
        assert lines_with(r, " unreachable (") == 1 and lines_with(r, CLOSED) == 1, r.output()
        assert "Traceback" not in r.output()
    # Sharing works again: a 429 on A cools x on B within 1 s.
    x.push(Behaviour(kind="status", status=429, headers={"retry-after": "3"}))
    check = {"extra_headers": {"X-Router-Profile": "check"}}
    assert served(anthropic_client(a, origin, user=f"bob:{BOB}"), **check) == "y"
    t429, cb = x.requests[-1].t, anthropic_client(b, origin, user=f"bob:{BOB}")
    while served(cb, **check) == "x":
        assert time.monotonic() - t429 < 1.0
    print(f"p50 with Redis {up:.2f} ms, Redis down after the breaker opened {down:.2f} ms")
