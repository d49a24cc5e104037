"""The pure parts of shared state, without Redis: breaker, background queue, outage budgets,
local bindings, merged latency, adopting remote health, the local backend, the `shared:` schema.
"""

from __future__ import annotations

import json
import re
import time
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from llmrouter.config import ConfigError, parse_config
from llmrouter.schema import Shared
from llmrouter.state.backends import (
    LocalBackend,
    LocalBindings,
    RedisBackend,
    make_backend,
    status_line,
)
from llmrouter.state.breaker import Breaker
from llmrouter.state.health import HealthBook
from llmrouter.state.latencyview import LatencyView
from llmrouter.state.limittypes import Denial, Grant, Reservation, Window, usd
from llmrouter.state.outage import MemoryLedger, OutageLimits
from llmrouter.state.outbox import Op, Outbox, add, later
from llmrouter.state.redislink import redact
from llmrouter.state.redisscripts import SCRIPTS, SHAS, Keys
from llmrouter.wire.outcome import Failure

NOW = 1_800_000_000.0


def day(limit: int, key: str = "day:1") -> Window:
    return Window("usd_per_day", key, limit, NOW + 3600)


def rpm(limit: int) -> Window:
    return Window("rpm", "rpm:1", limit, NOW + 60)


# -- breaker -----------------------------------------------------------------------------------


def test_the_breaker_opens_once_backs_off_and_closes_once() -> None:
    b = Breaker(retry_initial=0.25, retry_max=2.0, closed=True)
    assert b.failure(10.0, "TimeoutError") is True
    assert b.failure(10.01, "TimeoutError") is False  # the calls in flight: no second warning
    assert not b.closed and b.opened == 1 and not b.due(10.2) and b.due(10.25)
    waits = []
    for t in range(6):
        b.retry_failed(100.0 + t, "refused")
        waits.append(b.next_retry - (100.0 + t))
    assert waits == [0.5, 1.0, 2.0, 2.0, 2.0, 2.0]  # never longer than 2 s: back within 5 s
    assert b.success(200.0) is True and b.success(200.1) is False and b.closed


# -- the background queue ----------------------------------------------------------------------


def test_the_queue_coalesces_what_says_the_same_thing() -> None:
    q = Outbox(capacity=3)
    assert q.put(Op("cool", "p", {"until": 5.0}), later)
    assert q.put(Op("cool", "p", {"until": 3.0}), later)  # earlier: the later deadline stays
    assert q.put(Op("spend", "u", {"amount": 2}), add)
    assert q.put(Op("spend", "u", {"amount": 3}), add)
    assert q.put(Op("bind", "c", {"provider": "a"}))
    assert q.put(Op("bind", "c", {"provider": "b"}))  # newest binding wins
    assert len(q) == 3 and q.dropped == 0
    assert not q.put(Op("bind", "d", {"provider": "a"}))  # full: refused and counted
    assert q.dropped == 1
    batch = q.take(10)
    by_kind = {op.kind: op.data for op in batch}
    assert by_kind == {"cool": {"until": 5.0}, "spend": {"amount": 5}, "bind": {"provider": "b"}}


def test_a_batch_in_flight_is_sent_again_as_it_was_before_anything_newer() -> None:
    q = Outbox()
    q.put(Op("spend", "u", {"amount": 1}), add)
    first = q.take(10)
    first[0].seq = 7
    q.put(Op("spend", "u", {"amount": 4}), add)  # arrives while the first is on the wire
    assert q.has("spend", "u") and len(q) == 2
    assert q.take(10) is first and first[0].data == {"amount": 1} and first[0].seq == 7
    q.ack()
    again = q.take(10)
    assert [op.data for op in again] == [{"amount": 4}] and again[0].seq == 0
    q.ack()
    assert not q and q.sent == 2


def test_a_rewritten_fact_moves_behind_older_ones() -> None:
    q = Outbox()
    q.put(Op("ok", "p"))
    q.put(Op("cool", "p", {"until": 1.0}), later)
    q.put(Op("ok", "p"))  # the newest fact about p is sent last
    assert [op.kind for op in q.take(10)] == ["cool", "ok"]


# -- budgets on local state ----------------------------------------------------------------------


def test_the_memory_ledger_admits_while_under_the_limit() -> None:
    led = MemoryLedger()
    g1 = led.reserve("u", [day(1000)], 600, NOW)
    g2 = led.reserve("u", [day(1000)], 600, NOW)  # 600 < 1000: admitted, passes by < 600
    assert isinstance(g1, Grant) and isinstance(g2, Grant)
    d = led.reserve("u", [day(1000)], 1, NOW)
    assert isinstance(d, Denial) and "usd_per_day limit of $0.0010" in d.message
    assert d.retry_after == pytest.approx(3600)
    led.release(g2, NOW)
    led.settle(g1, 100, NOW)
    assert led.spent("u", day(1000)) == 100 and led.used("u", day(1000)) == 100
    led.settle(g1, 100, NOW)  # settled twice: counted once
    assert led.spent("u", day(1000)) == 100


def test_rpm_counts_at_reservation_and_resets_with_its_window() -> None:
    led = MemoryLedger()
    assert all(isinstance(led.reserve("u", [rpm(2)], 0, NOW), Grant) for _ in range(2))
    d = led.reserve("u", [rpm(2)], 0, NOW)
    assert isinstance(d, Denial) and "rpm limit of 2 requests" in d.message
    assert isinstance(led.reserve("u", [rpm(2)], 0, NOW + 61), Grant)  # the minute is over


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.integers(1, 500), st.integers(0, 500), st.booleans()), max_size=60))
def test_a_budget_is_passed_by_at_most_one_reservation(steps: list[tuple[int, int, bool]]) -> None:
    led, limit, grants = MemoryLedger(), 2_000, []
    for amount, actual, done in steps:
        g = led.reserve("u", [day(limit)], amount, NOW)
        if isinstance(g, Grant):
            grants.append((g, min(actual, amount)))
        if done and grants:
            g0, a0 = grants.pop(0)
            led.settle(g0, a0, NOW)
        assert led.used("u", day(limit)) < limit + 500


def test_an_outage_shares_what_is_left_between_live_instances() -> None:
    out = OutageLimits("local-share")
    out.instances = 2
    out.learned("u", day(10_000), 4_000)
    assert out.share("u", day(10_000), NOW).limit == 3_000
    assert out.share("v", day(10_000), NOW).limit == 5_000  # never heard of: half the limit
    assert out.share("u", day(10_000), NOW + 7200).limit == 5_000  # that window is over
    g = out.reserve("u", (day(10_000),), 3_000, NOW, retry=1.0)
    assert isinstance(g, Grant) and out.owns(g) and g.windows == (day(10_000),)
    d = out.reserve("u", (day(10_000),), 1, NOW, retry=1.0)
    assert isinstance(d, Denial) and "1/2 share" in d.message and d.window == day(10_000)
    out.new_outage()
    assert not out.owns(g)  # a new outage starts a fresh ledger


def test_deny_on_outage_names_the_limit_and_when_to_retry() -> None:
    d = OutageLimits("deny").reserve("u", (rpm(5), day(9)), 1, NOW, retry=2.0)
    assert isinstance(d, Denial) and d.retry_after == 2.0
    assert d.message.startswith("rpm: the shared budget store is unreachable")


def test_usd_formatting() -> None:
    assert (usd(12_345_678), usd(4_200), usd(0)) == ("$12.35", "$0.0042", "$0.0000")


# -- bindings, latency, health ---------------------------------------------------------------------


def test_local_bindings_expire_and_stay_bounded() -> None:
    b = LocalBindings(max_entries=2)
    b.set("c1", "a", 10, 0.0)
    assert b.get("c1", 9.9) == "a" and b.get("c1", 10.0) is None
    b.set("c1", "a", 10, 0.0)
    b.set("c2", "b", 10, 0.0)
    b.set("c3", "c", 10, 0.0)
    assert len(b) == 2 and b.get("c1", 1.0) is None and b.get("c3", 1.0) == "c"


def test_latency_merges_the_windows_other_instances_publish() -> None:
    mine, theirs = LatencyView(), LatencyView()
    for v in (100.0, 110.0, 120.0):
        theirs.record_ok("p", "m", True, NOW, ttft_ms=v)
    theirs.record_failure("q", None, False, NOW)
    blob = theirs.blob()
    assert blob is not None
    mine.remote({"i2": json.loads(blob), "bad": {"series": [["p", "m"]]}})
    s = mine.get("p", "m", True)
    assert s is not None and (s.p50, s.count) == (110.0, 3) and not s.warm(NOW, 5)
    mine.record_ok("p", "m", True, NOW + 1, ttft_ms=400.0)
    mine.record_ok("p", "m", True, NOW + 1, ttft_ms=500.0)
    s = mine.get("p", "m", True)
    assert s is not None and s.p50 == 120.0 and s.warm(NOW + 2, 5) and s.count == 5
    assert mine.get("p", "m", False) is None
    mine.retain({"q"})
    assert mine.get("p", "m", True) is None and mine.get("q", None, False) is not None
    assert LatencyView().blob() is None


def test_adopting_a_remote_cooldown_keeps_the_later_deadline() -> None:
    h = HealthBook()
    assert h.adopt("p", 50.0, 10.0, "rate_limit")
    assert not h.adopt("p", 40.0, 11.0, "server")  # earlier: ours stands
    assert not h.adopt("p", 9.0, 10.0, "server")  # already over
    assert h.until("p") == 50.0 and h.get("p").last_error == "rate_limit"
    assert h.acquire("p", 20.0) is None and h.acquire("p", 50.0) is True  # then a probe
    h.defer_probe("p", 0.0)
    h.defer_probe("p", 51.0)  # another instance probes until then
    assert h.acquire("p", 50.5) is None and h.acquire("p", 51.0) is True


# -- backends ----------------------------------------------------------------------------------


async def test_the_local_backend_answers_from_this_process() -> None:
    s = LocalBackend()
    s.watch(["p"])
    s.bind("c", "p", 60)
    got = await s.begin("c", Reservation("u", (day(100),), 60), NOW)
    assert got.binding == "p" and got.local and isinstance(got.verdict, Grant)
    assert isinstance((await s.begin(None, Reservation("u", (day(100),), 60), NOW)).verdict, Grant)
    assert isinstance((await s.begin(None, Reservation("u", (day(100),), 1), NOW)).verdict, Denial)
    now = time.monotonic()
    assert s.record("p", now, Failure.RATE_LIMIT, retry_after=5.0) == 5.0
    assert await s.acquire("p", now) is None
    assert await s.acquire("p", now + 5) is True
    s.probe_passed("p", now + 5)
    assert await s.acquire("p", now + 5) is False
    s.latency.record_ok("p", "m", True, NOW, ttft_ms=5.0)
    assert s.latency.get("p", "m", True) is not None
    assert s.status() == {"backend": "local", "bindings": 1}
    await s.start()
    await s.stop()


def test_the_backend_follows_the_config_and_the_option() -> None:
    assert type(make_backend(None)) is LocalBackend
    b = make_backend(None, "redis://127.0.0.1:1/0")  # router_redis alone turns sharing on
    assert isinstance(b, RedisBackend) and b.store.keys.prefix == "llmrouter:"
    shared = Shared.model_validate({"redis": "redis://:pw@h:1/0", "prefix": "x:"})
    b = make_backend(shared, "redis://other:2/0")  # the option overrides the URL
    assert isinstance(b, RedisBackend) and b.store.link.url == "redis://other:2/0"
    assert b.store.keys.prefix == "x:"
    assert "pw" not in repr(shared) and "pw" not in str(make_backend(shared).status())
    line = status_line(make_backend(shared).status())
    assert line.startswith("shared state: redis://:***@h:1/0 unreachable")
    assert "budgets local-share" in line
    assert status_line(LocalBackend().status()).startswith("shared state: local")


# -- config and key names ----------------------------------------------------------------------

BASE: dict[str, Any] = {
    "providers": {"a": {"base_url": "https://a.example.com", "api": "anthropic"}},
    "profiles": {"p": {"hosts": ["x.example.com"], "providers": ["a"]}},
}


def test_shared_config_takes_env_and_names_bad_fields() -> None:
    env = {"REDIS_URL": "redis://:s3cret@10.0.0.5:6380/2"}
    cfg = parse_config({**BASE, "shared": {"redis": "${REDIS_URL}"}}, env)
    assert cfg.shared is not None and cfg.shared.redis.get_secret_value() == env["REDIS_URL"]
    assert (cfg.shared.prefix, cfg.shared.on_outage, cfg.shared.timeout) == (
        "llmrouter:", "local-share", 0.05
    )  # fmt: skip
    assert parse_config(BASE).shared is None
    ok = ("redis://h", "rediss://h:6380/0", "unix:///run/redis.sock", "unix:///s?db=3")
    for url in ok:
        parse_config({**BASE, "shared": {"redis": url}})
    bad = {
        "http://h": "shared.redis: must be a redis://",
        "redis://:s3cret@h:99999": "shared.redis: has a bad port",
        "redis:///0": "shared.redis: must name a host",
        "redis://h/x": "shared.redis: database must be a number",
    }
    for url, msg in bad.items():
        with pytest.raises(ConfigError, match=re.escape(msg)) as e:
            parse_config({**BASE, "shared": {"redis": url}})
        assert "s3cret" not in str(e.value)
    with pytest.raises(ConfigError, match=re.escape("shared.on_outage")):
        parse_config({**BASE, "shared": {"redis": "redis://h", "on_outage": "panic"}})
    with pytest.raises(ConfigError, match=re.escape("shared.prefix: must not contain whitespace")):
        parse_config({**BASE, "shared": {"redis": "redis://h", "prefix": "a b"}})
    with pytest.raises(ConfigError, match=re.escape("shared.redis: environment variable NOPE")):
        parse_config({**BASE, "shared": {"redis": "${NOPE}"}}, {})


def test_passwords_never_reach_the_shown_url() -> None:
    assert redact("redis://:s3cret@h:6379/0") == "redis://:***@h:6379/0"
    assert redact("rediss://user:s3cret@h/1") == "rediss://user:***@h/1"
    assert redact("unix:///run/r.sock") == "unix:///run/r.sock"


def test_key_names_stay_under_the_prefix_and_users_cannot_collide() -> None:
    k = Keys("lr:")
    assert k.limit("e:day", "x") != k.limit("e", "day:x")
    assert k.limit("a%3Ab", "w") != k.limit("a:b", "w")
    names = [k.cool("p"), k.probe("p"), k.bind("c"), k.latency("i"), k.seq("i"), k.lease("u"),
             k.lease_expiry("u"), k.limit("u", "w"), k.instances]  # fmt: skip
    assert all(n.startswith("lr:") for n in names)
    assert k.limit("u", "w") == k.limit_stem("u") + "w"
    assert set(SHAS) == set(SCRIPTS) and all(len(s) == 40 for s in SHAS.values())
