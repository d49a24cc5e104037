"""Shared state between router instances, against a real redis-server the tests start.

Two RedisBackends in one process stand for two router instances; they share nothing but Redis.
Waits are on conditions; the only time bounds asserted are the issue's (learn within 1 s).
"""

from __future__ import annotations

import asyncio
import json
import random
import time
from collections.abc import AsyncIterator

import pytest
from llmrouter.state.backends import status_line
from llmrouter.state.limits import Ledger
from llmrouter.state.limittypes import Denial, Grant
from llmrouter.state.redisbackend import RedisBackend
from llmrouter.wire.outcome import Failure
from redisproc import RedisProc
from sharedhelp import (
    P1,
    P2,
    PREFIX,
    Make,
    bind,
    bound,
    cluster_on,
    day,
    flushed,
    keys_without_ttl,
    raw,
    res,
    rpm,
    spent_key,
)
from sharedhelp import wait_for as until

pytestmark = pytest.mark.redis


@pytest.fixture
async def cluster(redis_server: RedisProc) -> AsyncIterator[Make]:
    """Router instances on the test's Redis; after the test, every key has a TTL."""
    async with cluster_on(redis_server.url, settle=True) as make:
        yield make


def cooling(b: RedisBackend, key: str) -> bool:
    return not b.health.available(key, time.monotonic())


# -- cooldowns ---------------------------------------------------------------------------------


async def test_a_cooldown_reaches_the_other_instance_within_1s_and_lasts(cluster: Make) -> None:
    a, b = await cluster(), await cluster()
    assert a.record(P1, time.monotonic(), Failure.RATE_LIMIT, retry_after=3.0) == 3.0
    await until(lambda: cooling(b, P1), within=1.0)
    # B holds it for the rest of A's deadline, not for a cooldown of its own making
    assert abs(b.health.until(P1) - a.health.until(P1)) < 0.05
    assert b.health.get(P1).last_error == "rate_limit"
    assert b.health.available(P2, time.monotonic())


async def test_the_periodic_read_alone_delivers_within_1s(cluster: Make) -> None:
    a, b = await cluster(), await cluster()
    for t in b.store._tasks:  # no pub/sub for B: only the backstop read is left
        if t.get_name().endswith("listener"):
            t.cancel()
    a.record(P1, time.monotonic(), Failure.SERVER, retry_after=3.0)
    await until(lambda: cooling(b, P1), within=1.0)
    assert abs(b.health.until(P1) - a.health.until(P1)) < 0.05


async def test_the_later_deadline_wins_whatever_the_order(cluster: Make, redis_server: RedisProc):
    a, b = await cluster(), await cluster()
    now = time.monotonic()
    a.record(P1, now, Failure.RATE_LIMIT, retry_after=20.0)
    await flushed(a)
    b.record(P1, time.monotonic(), Failure.RATE_LIMIT, retry_after=2.0)  # shorter: loses
    await flushed(b)
    await until(lambda: b.health.until(P1) > now + 19, within=1.0)
    deadline = int(await raw(redis_server.url, "HGET", f"{PREFIX}cool:{P1}", "d"))
    assert abs(b.store.to_mono(deadline) - (now + 20)) < 0.05
    ttl = await raw(redis_server.url, "PTTL", f"{PREFIX}cool:{P1}")
    assert 18_000 < ttl <= 20_000  # the key expires at the deadline

    b.record(P2, time.monotonic(), Failure.RATE_LIMIT, retry_after=2.0)
    await flushed(b)
    a.record(P2, time.monotonic(), Failure.RATE_LIMIT, retry_after=20.0)  # longer: wins
    await until(lambda: b.health.until(P2) > time.monotonic() + 15, within=1.0)


# -- the half-open probe -----------------------------------------------------------------------


async def _recovering(a: RedisBackend, b: RedisBackend, key: str) -> None:
    """Cool `key` briefly on A, let B hear of it, and wait for the cooldown to pass."""
    a.record(key, time.monotonic(), Failure.RATE_LIMIT, retry_after=0.3)
    await until(lambda: cooling(b, key), within=1.0)
    await until(lambda: not cooling(a, key) and not cooling(b, key), within=2.0)


async def test_one_probe_across_instances(cluster: Make) -> None:
    a, b = await cluster(), await cluster()
    await _recovering(a, b, P1)
    now = time.monotonic()
    claims = await asyncio.gather(*(x.acquire(P1, now) for x in (a, b) * 10))
    assert claims.count(True) == 1, claims
    prober, other = (a, b) if True in claims[0::2] else (b, a)
    assert await other.acquire(P1, time.monotonic()) is None  # still in flight elsewhere

    prober.record(P1, time.monotonic(), Failure.NONE, probe=True, started=now)
    await until(lambda: not other.health.get(P1).needs_probe, within=1.0)
    assert await other.acquire(P1, time.monotonic()) is False  # healthy: a normal attempt


async def test_a_failed_probe_cools_every_instance_again(cluster: Make) -> None:
    a, b = await cluster(), await cluster()
    await _recovering(a, b, P1)
    assert await b.acquire(P1, time.monotonic()) is True
    b.record(P1, time.monotonic(), Failure.SERVER, probe=True, retry_after=5.0)
    await until(lambda: cooling(a, P1), within=1.0)
    assert await a.acquire(P1, time.monotonic()) is None


async def test_a_probe_whose_client_left_frees_the_slot(cluster: Make) -> None:
    a, b = await cluster(), await cluster()
    await _recovering(a, b, P1)
    assert await a.acquire(P1, time.monotonic()) is True
    a.record(P1, time.monotonic(), Failure.NONE, probe=True, judged=False)
    await flushed(a)
    await until(lambda: b.health.available(P1, time.monotonic()), within=2.0)
    assert await b.acquire(P1, time.monotonic()) is True


# -- conversation bindings ---------------------------------------------------------------------


async def test_bindings_are_shared_with_their_ttl_and_read_expired_after_it(
    cluster: Make, redis_server: RedisProc
) -> None:
    a, b = await cluster(), await cluster()
    conv = "9f" * 16
    await b.begin((conv,), None, time.time())
    assert b.bindings.get(conv, time.monotonic()).state("p2") == "new"
    bind(a, conv, "p2", ttl=0.6)
    await flushed(a)
    got = await b.begin((conv,), None, time.time())
    assert bound(b, conv) == "p2" and not got.local
    assert b.bindings.get(conv, time.monotonic()).state("p2") == "bound"
    assert b.bindings.get(conv, time.monotonic()).state("p1") == "rebound"
    # The key outlives the binding, so its next turn reads `expired` (not `new`) everywhere.
    pttl = await raw(redis_server.url, "PTTL", f"{PREFIX}bind:{conv}")
    assert 3_600_000 < pttl <= 3_600_600
    sent = a.status()["sent"]
    bind(a, conv, "p2", ttl=0.6)  # the same binding at once (a parallel request): no write
    assert not a.store.outbox and a.status()["sent"] == sent
    bind(a, conv, "p1", ttl=0.6)  # rebound: written
    await flushed(a)
    await b.begin((conv,), None, time.time())
    assert bound(b, conv) == "p1"
    deadline = time.monotonic() + 0.6
    await until(lambda: time.monotonic() > deadline, within=2.0)
    await b.begin((conv,), None, time.time())
    lookup = b.bindings.get(conv, time.monotonic())
    assert lookup.bound is None and lookup.state("p1") == "expired"


async def test_a_binding_of_ours_not_yet_in_redis_is_not_undone_by_an_older_one(
    cluster: Make,
) -> None:
    a, b = await cluster(), await cluster()
    conv = "7e" * 16
    bind(a, conv, "p1", ttl=60)
    await flushed(a)
    b.store.link.breaker.failure(time.monotonic(), "test: hold b's writes")
    bind(b, conv, "p2", ttl=60)  # newer, still queued on b
    got = await a.store.begin((conv,), None, time.time())
    assert got is not None and json.loads(got[0][0])[0] == "p1"
    b.bindings.adopt(conv, got[0][0])  # what b reads while its own write waits
    assert bound(b, conv) == "p2"
    b.store.link.breaker.success(time.monotonic())
    b.store.kick()
    await flushed(b)
    await a.begin((conv,), None, time.time())
    assert bound(a, conv) == "p2"


# -- latency -----------------------------------------------------------------------------------


async def test_least_latency_ranks_on_the_merged_view(cluster: Make) -> None:
    a, b = await cluster(), await cluster()
    for _ in range(5):
        a.latency.record_ok(P1, "m", True, time.time(), ttft_ms=100.0)
    await until(lambda: getattr(b.latency.get(P1, "m", True), "n", 0) == 5, within=5.0)
    merged = b.latency.get(P1, "m", True)
    assert merged is not None and merged.p50 == 100.0 and merged.warm(time.time(), 5)
    for _ in range(7):
        b.latency.record_ok(P1, "m", True, time.time(), ttft_ms=300.0)
    merged = b.latency.get(P1, "m", True)
    assert merged is not None and merged.p50 == 300.0 and merged.count == 12
    assert b.latency.get(P2, "m", True) is None


# -- budgets and rpm ---------------------------------------------------------------------------


async def test_a_budget_holds_across_instances_under_20_concurrent_reservers(
    cluster: Make, redis_server: RedisProc
) -> None:
    a, b = await cluster(), await cluster()
    limit, reservation = 10_000_000, 700_000  # $10, $0.70 held per request
    grants: list[Grant] = []
    busy = 0

    async def client(i: int) -> None:
        nonlocal busy
        rng = random.Random(i)
        me = (a, b)[i % 2]
        while True:
            got = (await me.begin((), res("alice", reservation, day(limit)), time.time())).verdict
            if isinstance(got, Denial):
                assert "usd_per_day budget $10.00" in got.message and got.retry_after > 0
                if got.why == "exhausted":
                    return
                assert got.why == "busy"  # only requests in flight in the way: try again soon
                busy += 1
                await asyncio.sleep(0.005)
                continue
            assert isinstance(got, Grant)
            grants.append(got)
            await asyncio.sleep(rng.random() * 0.003)
            # what it really cost: at most its reservation, so the budget is never passed
            me.settle(got, rng.randrange(reservation // 2, reservation + 1), time.time())

    await asyncio.gather(*(client(i) for i in range(20)))
    await flushed(a, b)
    spent = int(await raw(redis_server.url, "HGET", spent_key("alice", day(limit)), "s"))
    assert limit - reservation < spent <= limit  # used up, never passed (<= one reservation)
    assert busy > 0  # concurrent holds were in the way at times
    assert {g.id.split("-")[0] for g in grants} == {f"r{a.store.instance}", f"r{b.store.instance}"}


async def test_rpm_is_a_sliding_minute_across_instances(cluster: Make) -> None:
    a, b = await cluster(), await cluster()
    verdicts = await asyncio.gather(
        *((a, b)[i % 2].begin((), res("bob", 0, rpm(30)), time.time()) for i in range(50))
    )
    granted = [v.verdict for v in verdicts if isinstance(v.verdict, Grant)]
    assert len(granted) == 30
    denied = [v.verdict for v in verdicts if isinstance(v.verdict, Denial)]
    assert all("rpm limit 30 requests per minute reached" in d.message for d in denied)
    assert all(d.why == "rpm" and 58 < d.retry_after <= 60 for d in denied)
    for g in granted:  # a failed request keeps its count: it used the router all the same
        assert isinstance(g, Grant)
        (a, b)[granted.index(g) % 2].release(g, time.time())
    await flushed(a, b)
    assert isinstance((await a.begin((), res("bob", 0, rpm(30)), time.time())).verdict, Denial)


async def test_a_crashed_instance_holds_expire_with_their_lease(
    cluster: Make, redis_server: RedisProc
) -> None:
    a, b = await cluster(lease=1.0), await cluster(lease=1.0)
    held = (await a.begin((), res("carol", 5_000_000, day(5_000_000)), time.time())).verdict
    assert isinstance(held, Grant)
    # A is alive: it renews its lease, so the hold outlasts the 1 s lease
    await asyncio.sleep(1.5)
    assert isinstance((await b.begin((), res("carol", 1, day(5_000_000)), time.time())).verdict,
                      Denial)  # fmt: skip
    # A crashes: no settle, no release, no renewal
    for t in a.store._tasks:
        t.cancel()
    await a.store.link.aclose()
    deadline = time.monotonic() + 5
    while True:
        v = (await b.begin((), res("carol", 1, day(5_000_000)), time.time())).verdict
        if isinstance(v, Grant):
            break
        assert time.monotonic() < deadline, "the crashed instance's hold never expired"
        await asyncio.sleep(0.1)
    a.store.outbox.ack()  # its writes died with it
    assert await keys_without_ttl(redis_server.url) == []


async def test_a_release_gives_the_hold_back(cluster: Make, redis_server: RedisProc) -> None:
    a, b = await cluster(), await cluster()
    g = (await a.begin((), res("dan", 1_000, day(1_000)), time.time())).verdict
    assert isinstance(g, Grant)
    assert isinstance((await b.begin((), res("dan", 1, day(1_000)), time.time())).verdict, Denial)
    a.release(g, time.time())
    await flushed(a)
    assert isinstance((await b.begin((), res("dan", 1, day(1_000)), time.time())).verdict, Grant)
    assert await raw(redis_server.url, "HGET", spent_key("dan", day(1_000)), "s") is None


async def test_user_names_cannot_collide_in_key_names(cluster: Make) -> None:
    a = await cluster()
    w = day(5)
    assert isinstance((await a.begin((), res("e:day", 5, w), time.time())).verdict, Grant)
    # "e" with a window keyed "day:<date>" would be "e:day" + ":<date>" without the escaping
    assert isinstance((await a.begin((), res("e", 5, w), time.time())).verdict, Grant)


async def test_one_round_trip_on_the_hot_path(cluster: Make) -> None:
    a = await cluster()
    before = a.store.link.calls
    got = await a.begin(("ab" * 16,), res("erin", 10, day(100), rpm(10)), time.time())
    assert isinstance(got.verdict, Grant) and bound(a, "ab" * 16) is None
    assert a.store.link.calls == before + 1
    assert (await a.begin((), None, time.time())).verdict is None
    assert a.store.link.calls == before + 1  # nothing asked: nothing sent
    assert " connected for " in status_line(a.status())


@pytest.mark.parametrize("limits", [(60_000, 1000), (10**9, 30)])
async def test_the_shared_ledger_decides_as_the_local_one(
    cluster: Make, limits: tuple[int, int]
) -> None:
    """The same verdicts, worded the same, as limits.Ledger over a random run of reserves,
    settles and releases."""
    a, local, rng = await cluster(), Ledger(), random.Random(14)
    held_r: list[Grant] = []
    held_l: list[Grant] = []
    seen: set[str] = set()
    for _ in range(150):
        windows = (day(limits[0]), rpm(limits[1]))
        if held_r and rng.random() < 0.45:
            i = rng.randrange(len(held_r))
            gr, gl = held_r.pop(i), held_l.pop(i)
            if rng.random() < 0.8:
                actual = rng.randrange(gr.amount + 1)
                a.settle(gr, actual, time.time())
                local.settle(gl, actual, time.time())
            else:
                a.release(gr, time.time())
                local.release(gl, time.time())
            await flushed(a)
            continue
        amount = rng.randrange(1, 8_000)
        vr = (await a.begin((), res("ivy", amount, *windows), time.time())).verdict
        vl = local.reserve("ivy", windows, amount, time.time())
        assert type(vr) is type(vl)
        if isinstance(vr, Denial) and isinstance(vl, Denial):
            assert (vr.why, vr.window.name) == (vl.why, vl.window.name)
            assert vr.message.split(";")[0] == vl.message.split(";")[0]
            assert abs(vr.retry_after - vl.retry_after) < 1.0
            seen.add(vr.why)
        elif isinstance(vr, Grant) and isinstance(vl, Grant):
            held_r.append(vr)
            held_l.append(vl)
            seen.add("granted")
    assert "granted" in seen and len(seen) >= 2, seen
