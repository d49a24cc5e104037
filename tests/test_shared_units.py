"""The pure parts of shared state, without Redis: breaker, background queue, outage budgets,
local bindings, merged latency, adopting remote health, the local backend, the `shared:` schema.
"""

from __future__ import annotations

import json
import logging
import re
import time
from dataclasses import replace
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from llmrouter.config import ConfigError, parse_config
from llmrouter.proxy.sharing import Sharing
from llmrouter.routing.affinity import BindingBook
from llmrouter.schema import Shared
from llmrouter.state.backends import LocalBackend, make_backend, status_line
from llmrouter.state.breaker import Breaker
from llmrouter.state.health import HealthBook
from llmrouter.state.latency import LatencyBook
from llmrouter.state.latencyview import LatencyView
from llmrouter.state.limits import Ledger
from llmrouter.state.limittypes import Denial, Grant, Reservation, Window, booked, refusal
from llmrouter.state.outage import OutageLimits
from llmrouter.state.outbox import Op, Outbox, add, later
from llmrouter.state.redisbackend import RedisBackend
from llmrouter.state.redislink import redact
from llmrouter.state.redisscripts import SCRIPTS, SHAS, Keys
from llmrouter.state.sharedbindings import SharedBindings
from llmrouter.wire.outcome import Failure
from mitmproxy import exceptions
from mitmproxy.test import taddons

NOW = 1_800_000_000.0


def day(limit: int) -> Window:
    return Window("usd_per_day", "day:2027-01-15", limit, NOW + 3600)


def rpm(limit: int) -> Window:
    return Window("rpm", "rpm", limit, NOW + 60)


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


@given(
    st.lists(st.tuples(st.integers(0, 3_000), st.integers(0, 3_000), st.booleans()), max_size=40),
    st.integers(1, 5_000),
)
@settings(max_examples=150, deadline=None)
def test_refusals_are_worded_as_the_ledger_words_them(
    steps: list[tuple[int, int, bool]], limit: int
) -> None:
    """The Redis backend words its script's refusals with `refusal`: for any state a local
    Ledger can be in, the same words, reason and retry."""
    led, grants = Ledger(), []
    w = day(limit)
    for amount, actual, done in steps:
        v = led.reserve("u", [w], amount, NOW)
        if isinstance(v, Denial):
            spent, held = led.spent("u", w), led.reserved("u", w)
            holds = len(grants)
            mine = refusal("u", w, amount, NOW, spent=spent, held=held, holds=holds)
            assert (mine.why, mine.message, mine.retry_after, mine.window) == (
                v.why, v.message, v.retry_after, v.window
            )  # fmt: skip
        else:
            grants.append(v)
        if done and grants:
            led.settle(grants.pop(0), actual, NOW)


def test_rpm_refusals_are_worded_as_the_ledger_words_them() -> None:
    led, w = Ledger(), rpm(2)
    for t in (NOW - 50, NOW - 10):
        assert isinstance(led.reserve("u", [w], 0, t), Grant)
    v = led.reserve("u", [w], 0, NOW)
    assert isinstance(v, Denial)
    assert refusal("u", w, 0, NOW, frees_in=10.0) == v
    zero = replace(w, limit=0)
    assert refusal("u", zero, 0, NOW) == led.reserve("u", [zero], 0, NOW)


def test_settlements_are_booked_in_the_day_and_month_of_the_reservation() -> None:
    at = 1_795_737_599.0  # 2026-11-26 23:59:59 UTC
    assert [w.key for w in booked(at, at + 0.5)] == ["day:2026-11-26", "month:2026-11"]
    assert [w.key for w in booked(at, at + 2)] == ["month:2026-11"]  # that day has ended


def test_an_outage_shares_what_is_left_between_live_instances() -> None:
    out = OutageLimits("local-share")
    out.new_outage(2)
    out.learned("u", day(10_000), 4_000)
    assert out.share("u", day(10_000), NOW).limit == 3_000
    assert out.share("v", day(10_000), NOW).limit == 5_000  # never heard of: half the limit
    assert out.share("u", day(10_000), NOW + 7200).limit == 5_000  # that window is over
    assert out.share("u", rpm(9), NOW).limit == 4
    g = out.reserve("u", (day(10_000),), 3_000, NOW, retry=1.0)
    assert isinstance(g, Grant) and g.windows == (day(10_000),)
    d = out.reserve("u", (day(10_000),), 1, NOW, retry=1.0)
    assert isinstance(d, Denial) and d.why == "busy" and "1/2 share" in d.message
    out.new_outage(2)  # a new outage: a fresh ledger, and ids that cannot collide
    g2 = out.reserve("u", (day(10_000),), 3_000, NOW, retry=1.0)
    assert isinstance(g2, Grant) and g2.id != g.id
    assert out.settle(g, 100, NOW) and not out.settle(g, 100, NOW)  # once
    assert out.release(g2, NOW) and not out.release(g2, NOW)
    assert not out.settle(Grant("r1-1", "u", 1, ()), 1, NOW)  # a Redis grant: not ours


def test_deny_on_outage_names_the_user_and_when_to_retry() -> None:
    d = OutageLimits("deny").reserve("u", (rpm(5), day(9)), 1, NOW, retry=2.0)
    assert isinstance(d, Denial) and d.retry_after == 2.0 and d.why == "busy"
    assert d.message.startswith("user u: the shared budget store is unreachable")
    assert d.message.endswith("retry in 2s")
    assert isinstance(OutageLimits("deny").reserve("u", (), 1, NOW, retry=2.0), Grant)


# -- bindings, latency, health ---------------------------------------------------------------------


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
    assert isinstance(s.bindings, BindingBook) and isinstance(s.latency, LatencyBook)
    assert s.offset == 0  # round-robin starts at the first candidate, as one router always did
    got = await s.begin(("c",), Reservation("u", (day(100),), 60), NOW)
    assert got.local and isinstance(got.verdict, Grant)
    busy = (await s.begin((), Reservation("u", (day(100),), 60), NOW)).verdict
    assert isinstance(busy, Denial) and busy.why == "busy"  # limits.Ledger's rule: it must fit
    s.limits.settle(got.verdict, 30, NOW)
    assert isinstance((await s.begin((), Reservation("u", (day(100),), 60), NOW)).verdict, Grant)
    assert (await s.begin(("c",), None, NOW)).verdict is None
    now = time.monotonic()
    assert s.record("p", now, Failure.RATE_LIMIT, retry_after=5.0) == 5.0
    assert await s.acquire("p", now) is None
    assert await s.acquire("p", now + 5) is True
    s.probe_passed("p", now + 5)
    assert await s.acquire("p", now + 5) is False
    s.latency.record_ok("p", "m", True, NOW, ttft_ms=5.0)
    assert s.latency.get("p", "m", True) is not None
    assert s.status() == {"backend": "local"}
    await s.start()
    await s.stop()


def test_shared_bindings_keep_the_planners_semantics_and_the_later_binding() -> None:
    writes: list[tuple[str, str, int]] = []
    offset = 1_000_000  # server ms = monotonic ms + offset
    b = SharedBindings(lambda *w: writes.append(w), lambda m: int(m * 1000) + offset,
                       lambda ms: (ms - offset) / 1000)  # fmt: skip
    assert b.get("c", 10.0).state("a") == "new"
    b.bind("c", "a", "work", 300.0, 10.0)
    assert writes == [("c", json.dumps(["a", "work", 1_010_000, 300_000]), 3_900_000)]
    b.bind("c", "a", "work", 300.0, 10.5)  # a parallel request of the conversation: no write
    assert len(writes) == 1
    b.bind("c", "b", "work", 300.0, 10.6)  # rebound: written
    assert len(writes) == 2 and b.get("c", 11.0).state("b") == "bound"
    older = json.dumps(["a", "work", 1_010_000, 300_000])
    assert b.adopt("c", older).provider == "b"  # ours is newer: it stands
    newer = json.dumps(["a", "work", 1_020_000, 300_000])  # another instance, at 20.0
    assert b.adopt("c", newer).provider == "a" and b.get("c", 21.0).state("a") == "bound"
    assert b.get("c", 320.0).state("a") == "expired"  # past its TTL: expired, not new
    assert b.adopt("c", None) is None and b.adopt("c", b"garbage") is None
    assert b.get("c", 21.0).bound == "a"  # Redis said nothing: the mirror stands


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
    assert line is not None and line.startswith("shared state: redis://:***@h:1/0 unreachable")
    assert "budgets local-share" in line
    assert status_line(LocalBackend().status()) is None  # router.status as ever


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


def test_router_redis_is_checked_unshown_and_changes_wait_for_a_restart(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="llmrouter")
    sharing = Sharing()
    with taddons.context(sharing) as tctx:
        with pytest.raises(exceptions.OptionsError) as bad:
            tctx.configure(sharing, router_redis="http://:s3cret@h:1/0")
        assert "router_redis: " in str(bad.value) and "s3cret" not in str(bad.value)
        tctx.configure(sharing, router_redis="redis://:s3cret@h:1/0")
        made = sharing.make(None)
        assert isinstance(made, RedisBackend) and made.store.link.url == "redis://:***@h:1/0"
        assert not caplog.records
        tctx.configure(sharing, router_redis="redis://h:2/0")
        sharing.reloaded(parse_config(BASE))  # no shared: block before or after: nothing to say
        assert [r.getMessage() for r in caplog.records] == [
            "router: router_redis changed: shared state changes take effect at restart; this "
            "run keeps its store"
        ]
        sharing.reloaded(parse_config({**BASE, "shared": {"redis": "redis://h:3/0"}}))
        assert "shared: changed in the config" in caplog.records[-1].getMessage()
    assert "s3cret" not in caplog.text
