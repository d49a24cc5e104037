"""Redis killed, frozen, full or absent: requests keep flowing on local state, the breaker opens
once and says so once, budgets follow on_outage, and sharing resumes on its own.

The real redis-server is SIGKILLed, SIGSTOPped and SIGCONTed by its PID mid-load.
"""

from __future__ import annotations

import asyncio
import json
import logging
import statistics
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
from llmrouter.state.limittypes import Denial, Grant
from llmrouter.state.redisbackend import RedisBackend
from llmrouter.wire.outcome import Failure
from redisproc import RedisProc
from sharedhelp import (
    P1,
    PREFIX,
    Make,
    bind,
    cluster_on,
    day,
    flushed,
    instance,
    keys_without_ttl,
    raw,
    res,
    spent_key,
)
from sharedhelp import wait_for as until

pytestmark = pytest.mark.redis


@pytest.fixture
async def cluster(redis_server: RedisProc) -> AsyncIterator[Make]:
    async with cluster_on(redis_server.url, settle=False) as make:  # Redis may be broken
        yield make


class Load:
    """Ten clients, each a conversation with a budget, alternating between two instances."""

    def __init__(self, a: RedisBackend, b: RedisBackend, cost: int = 1_000) -> None:
        self.backends, self.cost = (a, b), cost
        self.durations: list[float] = []
        self.settled = 0  # micro-USD settled, by whichever backend granted it
        self.local = 0  # answers from local state
        self._stop = asyncio.Event()
        self._tasks = [asyncio.create_task(self._client(i)) for i in range(10)]

    async def _client(self, i: int) -> None:
        conv = f"{i:032x}"
        while not self._stop.is_set():
            me = self.backends[i % 2]
            t0 = time.monotonic()
            got = await me.begin((conv,), res("load", self.cost, day(10**12)), time.time())
            self.durations.append(time.monotonic() - t0)
            self.local += got.local
            assert isinstance(got.verdict, Grant)
            await asyncio.sleep(0.002)
            me.settle(got.verdict, self.cost, time.time())
            self.settled += self.cost
            bind(me, conv, "p1", 60)

    async def more(self, n: int, within: float = 20.0) -> None:
        target = len(self.durations) + n
        await until(lambda: len(self.durations) >= target, within)

    async def stop(self) -> None:
        self._stop.set()
        await asyncio.gather(*self._tasks)


def _warnings(caplog: pytest.LogCaptureFixture, text: str) -> int:
    return sum(text in r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING)


def _no_tracebacks(caplog: pytest.LogCaptureFixture) -> None:
    assert not [r for r in caplog.records if r.exc_info], "a traceback was logged"
    assert len([r for r in caplog.records if r.levelno >= logging.WARNING]) <= 4


async def _sharing_works(a: RedisBackend, b: RedisBackend) -> None:
    a.record(P1, time.monotonic(), Failure.RATE_LIMIT, retry_after=2.0)
    await until(lambda: not b.health.available(P1, time.monotonic()), within=1.0)


@pytest.mark.parametrize("fault", ["sigkill", "sigstop"])
async def test_redis_lost_mid_load(
    fault: str, cluster: Make, redis_server: RedisProc, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="llmrouter")
    a, b = await cluster(), await cluster()
    load = Load(a, b)
    await load.more(200)
    before = len(load.durations)

    if fault == "sigkill":
        redis_server.kill()
    else:
        redis_server.freeze()
    await until(lambda: not a.store.link.up and not b.store.link.up, within=5.0)
    opened_at = len(load.durations)
    calls = a.store.link.calls, b.store.link.calls
    await load.more(300)
    # While the breaker is open no request touches the network: local answers, at once.
    assert (a.store.link.calls, b.store.link.calls) == calls
    down = load.durations[opened_at:]
    assert statistics.median(down) < 0.005  # the bound on the p50 added
    assert load.local >= len(down)

    if fault == "sigkill":
        redis_server.start(redis_server.port)  # empty: a crash without persistence
    else:
        redis_server.thaw()
    await until(lambda: a.store.link.up and b.store.link.up, within=5.0)
    await load.more(100)
    await load.stop()
    # every call returned, bounded by the timeout (a hang would show here, not a 5 s stall)
    assert max(load.durations[before:]) < 1.0
    assert _warnings(caplog, "unreachable") == 2  # one per instance
    assert _warnings(caplog, "answers again after") == 2
    _no_tracebacks(caplog)
    await _sharing_works(a, b)
    await flushed(a, b)

    spent = int(await raw(redis_server.url, "HGET", spent_key("load", day(10**12)), "s") or 0)
    if fault == "sigstop":  # Redis kept everything: each settlement counted exactly once
        assert spent == load.settled
    else:  # what was settled after the crash, including the outage's own spend, is there
        assert 0 < spent <= load.settled
    assert a.store.outbox.dropped == b.store.outbox.dropped == 0
    assert await keys_without_ttl(redis_server.url) == []


async def test_local_share_splits_what_is_left_between_live_instances(
    cluster: Make, redis_server: RedisProc
) -> None:
    a, b = await cluster(), await cluster()
    await until(lambda: len(a.store.live) == 2 and len(b.store.live) == 2, within=5.0)
    limit, cost = 10_000_000, 1_000_000
    for me in (a, a, b):  # the cluster used $3 before the outage; A last heard $2, B $3
        g = (await me.begin((), res("frank", cost, day(limit)), time.time())).verdict
        assert isinstance(g, Grant)
        me.settle(g, cost, time.time())
        await flushed(me)
    redis_server.kill()
    await until(lambda: not a.store.link.up and not b.store.link.up, within=5.0)

    async def grants(me: RedisBackend) -> tuple[int, Denial]:
        n = 0
        while True:
            v = (await me.begin((), res("frank", cost, day(limit)), time.time())).verdict
            if isinstance(v, Denial):
                return n, v
            me.settle(v, cost, time.time())
            n += 1

    (na, da), (nb, db) = await grants(a), await grants(b)
    assert (na, nb) == (4, 3)  # A: ($10 - $2) / 2 = $4; B: ($10 - $3) / 2 = $3.50
    assert da.why == db.why == "exhausted"
    assert "usd_per_day budget $4.00 reached" in da.message and "1/2 share" in da.message
    assert 3 * cost + (na + nb) * cost <= limit  # the cluster stayed within the budget

    redis_server.start(redis_server.port)  # empty: the outage's spend is all it gets back
    await until(lambda: a.store.link.up and b.store.link.up, within=5.0)
    await flushed(a, b)
    spent = await raw(redis_server.url, "HGET", spent_key("frank", day(limit)), "s")
    assert int(spent) == (na + nb) * cost


async def test_deny_on_outage_refuses_only_users_with_limits(
    cluster: Make, redis_server: RedisProc
) -> None:
    a = await cluster(on_outage="deny")
    redis_server.kill()
    got = await a.begin(("c" * 32,), res("gina", 1, day(100)), time.time())
    if not got.local:  # the first call may be the one that finds Redis gone
        got = await a.begin(("c" * 32,), res("gina", 1, day(100)), time.time())
    assert got.local and isinstance(got.verdict, Denial)
    assert "unreachable" in got.verdict.message and got.verdict.retry_after >= 1
    assert (await a.begin(("c" * 32,), None, time.time())).verdict is None


async def test_a_full_queue_counts_and_shows_what_it_drops(
    cluster: Make, redis_server: RedisProc, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="llmrouter")
    a = await cluster(queue_max=100)
    redis_server.kill()
    a.store.link.failed(ConnectionError("killed"))  # no call needed to notice it
    for i in range(150):
        bind(a, f"{i:032x}", "p1", 60)
    for i in range(100):
        bind(a, f"{i:032x}", "p2", 60)  # the queued conversations again: coalesced, not dropped
    status = a.status()
    assert (status["queue"], status["dropped"], status["state"]) == (100, 50, "unreachable")
    assert _warnings(caplog, "queue full") == 1
    redis_server.start(redis_server.port)
    await until(lambda: a.store.link.up, within=5.0)
    await flushed(a)
    assert json.loads(await raw(redis_server.url, "GET", f"{PREFIX}bind:{0:032x}"))[0] == "p2"
    assert a.status()["sent"] >= 100


async def test_unreachable_at_start_then_found(
    tmp_path: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="llmrouter")
    proc = RedisProc(tmp_path / "late")
    proc.port = 0
    from redisproc import _free_port

    port = _free_port()
    a = await instance(f"redis://127.0.0.1:{port}/0")
    try:
        assert not a.store.link.up
        got = await a.begin(("d" * 32,), res("hal", 5, day(100)), time.time())
        assert got.local and isinstance(got.verdict, Grant)
        assert _warnings(caplog, "unreachable at start") == 1
        proc.start(port)
        await until(lambda: a.store.link.up, within=5.0)
        assert not (await a.begin(("d" * 32,), res("hal", 5, day(100)), time.time())).local
    finally:
        await a.stop()
        proc.stop()


async def test_a_late_reply_is_not_an_outage(
    cluster: Make, redis_server: RedisProc, caplog: pytest.LogCaptureFixture
) -> None:
    """A reply past the 50 ms bound but within the grace (a busy event loop, a slow Redis)
    sends requests local while it is late, without opening the breaker: no warning, no resync,
    no budget shares. Redis frozen past the grace is an outage (test_redis_lost_mid_load)."""
    caplog.set_level(logging.INFO, logger="llmrouter")
    a = await cluster()
    link = a.store.link
    redis_server.freeze()
    try:
        t0 = time.monotonic()
        first = await a.begin(("e" * 32,), res("late", 5, day(100)), time.time())
        assert first.local and isinstance(first.verdict, Grant)
        calls = link.calls
        # While the batch is late, later requests go local at once, without touching Redis.
        during = await a.begin(("f" * 32,), res("late", 5, day(100)), time.time())
        assert during.local and link.calls == calls
        assert time.monotonic() - t0 < link.grace / 2  # still within the grace: thaw now
    finally:
        redis_server.thaw()
    await until(lambda: link.late == 1, within=5.0)
    assert link.up and a.status()["outages"] == 0
    assert not (await a.begin(("e" * 32,), res("late", 5, day(100)), time.time())).local
    assert _warnings(caplog, "unreachable") == 0
    _no_tracebacks(caplog)
