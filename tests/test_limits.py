"""Budgets and request rates: windows, the ledger's one-step reservations, rebuild, estimates."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest
from llmrouter.state import limits
from llmrouter.state.limits import (
    RPM_SPAN,
    Denial,
    Grant,
    Ledger,
    Window,
    usd_to_micro,
    windows_for,
)


@dataclass
class L:  # the shape of schema.UserLimits
    usd_per_day: float | None = None
    usd_per_month: float | None = None
    rpm: int | None = None


def at(*args: int) -> float:
    return datetime(*args, tzinfo=UTC).timestamp()  # type: ignore[misc]


NOW = at(2026, 11, 26, 20, 48)  # 3h12m before the day resets


def grant(r: Grant | Denial) -> Grant:
    assert isinstance(r, Grant), r
    return r


def denial(r: Grant | Denial) -> Denial:
    assert isinstance(r, Denial), r
    return r


# -- windows ---------------------------------------------------------------------------------


def test_no_limits_no_windows() -> None:
    assert windows_for(None, NOW) == []
    assert windows_for(L(), NOW) == []


def test_windows_for_each_limit() -> None:
    day, month, rpm = windows_for(L(5, 60, 30), NOW)
    assert day == Window("usd_per_day", "day:2026-11-26", 5_000_000, at(2026, 11, 27))
    assert month == Window("usd_per_month", "month:2026-11", 60_000_000, at(2026, 12, 1))
    assert rpm == Window("rpm", "rpm", 30, NOW + RPM_SPAN)
    assert [w.name for w in windows_for(L(rpm=0), NOW)] == ["rpm"]


def test_windows_at_the_edges_of_days_months_and_years() -> None:
    day, month = windows_for(L(1, 1), at(2026, 12, 31, 23, 59, 59))
    assert (day.key, day.reset_at) == ("day:2026-12-31", at(2027, 1, 1))
    assert (month.key, month.reset_at) == ("month:2026-12", at(2027, 1, 1))
    day, month = windows_for(L(1, 1), at(2027, 1, 1))
    assert (day.key, month.key) == ("day:2027-01-01", "month:2027-01")
    day, month = windows_for(L(1, 1), at(2028, 2, 29, 12))
    assert (day.reset_at, month.reset_at) == (at(2028, 3, 1), at(2028, 3, 1))


def test_usd_to_micro() -> None:
    assert usd_to_micro(5) == 5_000_000
    assert usd_to_micro(0.01) == 10_000
    assert usd_to_micro(0.003) == 3_000
    assert usd_to_micro(0.1 + 0.2) == 300_000  # no float drift in the ledger


# -- reserve, settle, release --------------------------------------------------------------


def test_reserve_settle_release() -> None:
    led = Ledger()
    ws = windows_for(L(usd_per_day=1), NOW)
    g = grant(led.reserve("alice", ws, 300_000, NOW))
    assert (g.user, g.amount, g.windows, g.at) == ("alice", 300_000, tuple(ws), NOW)
    assert (led.spent("alice", ws[0]), led.reserved("alice", ws[0]), led.in_flight) == (
        0,
        300_000,
        1,
    )
    led.settle(g, 120_000, NOW + 5)
    assert (led.spent("alice", ws[0]), led.reserved("alice", ws[0]), led.in_flight) == (
        120_000,
        0,
        0,
    )
    g2 = grant(led.reserve("alice", ws, 300_000, NOW + 6))
    led.release(g2, NOW + 7)
    assert (led.spent("alice", ws[0]), led.reserved("alice", ws[0])) == (120_000, 0)


def test_finishing_a_grant_twice_is_a_no_op() -> None:
    led = Ledger()
    ws = windows_for(L(usd_per_day=1), NOW)
    g = grant(led.reserve("alice", ws, 300_000, NOW))
    led.settle(g, 100_000, NOW)
    led.settle(g, 100_000, NOW)
    led.release(g, NOW)
    assert (led.spent("alice", ws[0]), led.reserved("alice", ws[0])) == (100_000, 0)
    g = grant(led.reserve("alice", ws, 300_000, NOW))
    led.release(g, NOW)
    led.settle(g, 100_000, NOW)  # after a release: nothing to settle
    assert (led.spent("alice", ws[0]), led.reserved("alice", ws[0])) == (100_000, 0)


def test_users_are_separate() -> None:
    led = Ledger()
    ws = windows_for(L(usd_per_day=1), NOW)
    led.settle(grant(led.reserve("alice", ws, 1_000_000, NOW)), 1_000_000, NOW)
    assert isinstance(led.reserve("alice", ws, 1, NOW), Denial)
    assert isinstance(led.reserve("bob", ws, 1_000_000, NOW), Grant)


def test_the_budget_exactly_fits() -> None:
    led = Ledger()
    ws = windows_for(L(usd_per_day=1), NOW)
    grant(led.reserve("alice", ws, 600_000, NOW))
    grant(led.reserve("alice", ws, 400_000, NOW))  # 1.000000 of 1.000000
    assert denial(led.reserve("alice", ws, 1, NOW)).why == "busy"


def test_a_cent_budget_admits_exactly_three_three_tenth_cent_requests_in_sequence() -> None:
    led = Ledger()
    ws = windows_for(L(usd_per_day=0.01), NOW)
    ok = 0
    for i in range(10):
        r = led.reserve("alice", ws, 3_000, NOW + i)
        if isinstance(r, Grant):
            ok += 1
            led.settle(r, 3_000, NOW + i)
    assert ok == 3
    assert led.spent("alice", ws[0]) == 9_000


def test_a_cent_budget_admits_exactly_three_of_ten_concurrent_requests() -> None:
    led = Ledger()
    ws = windows_for(L(usd_per_day=0.01), NOW)
    results = [led.reserve("alice", ws, 3_000, NOW) for _ in range(10)]  # none settled yet
    grants = [r for r in results if isinstance(r, Grant)]
    assert len(grants) == 3
    assert {r.why for r in results if isinstance(r, Denial)} == {"busy"}
    for g in grants:
        led.settle(g, 3_000, NOW + 1)
    d = denial(led.reserve("alice", ws, 3_000, NOW + 2))
    assert d.why == "exhausted" and d.retry_after == at(2026, 11, 27) - (NOW + 2)


def test_exhausted_message_and_retry_after() -> None:
    led = Ledger()
    ws = windows_for(L(usd_per_day=5), NOW)
    led.settle(grant(led.reserve("alice", ws, 4_998_000, NOW)), 4_998_000, NOW)
    grant(led.reserve("alice", ws, 1_000, NOW))
    d = denial(led.reserve("alice", ws, 10_000, NOW))
    assert d.why == "exhausted"
    assert d.window == ws[0]
    assert d.retry_after == 3 * 3600 + 12 * 60
    assert d.message == (
        "user alice: usd_per_day budget $5.00 reached ($4.998 spent, $0.001 reserved; "
        "this request needs up to $0.01); resets in 3h12m"
    )


def test_busy_when_only_requests_in_flight_are_in_the_way() -> None:
    led = Ledger(busy_retry=5.0)
    ws = windows_for(L(usd_per_day=1), NOW)
    grant(led.reserve("alice", ws, 500_000, NOW))
    grant(led.reserve("alice", ws, 400_000, NOW))
    d = denial(led.reserve("alice", ws, 200_000, NOW))
    assert (d.why, d.retry_after, d.window.reset_at) == ("busy", 5.0, NOW + 5.0)
    assert d.message == (
        "user alice: usd_per_day budget $1.00 is held by 2 requests in flight ($0.00 spent, "
        "$0.90 reserved; this one needs up to $0.20); retry in 5s"
    )


def test_busy_retry_never_passes_the_reset() -> None:
    led = Ledger(busy_retry=5.0)
    now = at(2026, 11, 26, 23, 59, 58)
    ws = windows_for(L(usd_per_day=1), now)
    grant(led.reserve("alice", ws, 900_000, now))
    assert denial(led.reserve("alice", ws, 200_000, now)).retry_after == 2.0


def test_a_request_larger_than_the_whole_budget() -> None:
    led = Ledger()
    ws = windows_for(L(usd_per_day=1), NOW)
    d = denial(led.reserve("alice", ws, 2_400_000, NOW))
    assert d.why == "too_large"
    assert d.message == (
        "user alice: this request may cost up to $2.40, more than the whole usd_per_day budget "
        "$1.00; lower max_tokens or ask for a larger budget"
    )
    assert d.retry_after == at(2026, 11, 27) - NOW


def test_zero_budget_blocks_priced_requests_but_not_free_ones() -> None:
    led = Ledger()
    ws = windows_for(L(usd_per_day=0), NOW)
    assert isinstance(led.reserve("alice", ws, 1, NOW), Denial)
    assert isinstance(led.reserve("alice", ws, 0, NOW), Grant)


def test_the_latest_retry_is_reported_when_several_limits_deny() -> None:
    led = Ledger()
    ws = windows_for(L(usd_per_day=1, usd_per_month=1), NOW)
    led.settle(grant(led.reserve("alice", ws, 1_000_000, NOW)), 1_000_000, NOW)
    d = denial(led.reserve("alice", ws, 1, NOW))
    assert d.window.name == "usd_per_month"  # waiting for the day's reset would not help
    assert d.retry_after == at(2026, 12, 1) - NOW
    assert d.message.endswith("resets in 4d3h")


def test_a_denial_reserves_nothing_anywhere() -> None:
    led = Ledger()
    ws = windows_for(L(usd_per_day=1, usd_per_month=100, rpm=2), NOW)
    led.settle(grant(led.reserve("alice", ws, 900_000, NOW)), 900_000, NOW)
    denial(led.reserve("alice", ws, 200_000, NOW))
    month, rpm = ws[1], ws[2]
    assert led.reserved("alice", month) == 0
    assert led.spent("alice", rpm) == 1  # the denied request was not counted
    grant(led.reserve("alice", ws, 100_000, NOW))  # the second request of the minute


def test_a_lower_limit_after_a_reload_applies_to_the_next_request() -> None:
    led = Ledger()
    before = windows_for(L(usd_per_day=10), NOW)
    led.settle(grant(led.reserve("alice", before, 3_000_000, NOW)), 3_000_000, NOW)
    after = windows_for(L(usd_per_day=2), NOW + 1)
    d = denial(led.reserve("alice", after, 1, NOW + 1))
    assert "budget $2.00 reached ($3.00 spent" in d.message


def test_a_limit_added_later_sees_the_days_spend() -> None:
    led = Ledger()
    led.settle(grant(led.reserve("alice", [], 0, NOW)), 3_000_000, NOW)
    assert led.spending("alice", NOW) == (3_000_000, 3_000_000)
    d = denial(led.reserve("alice", windows_for(L(usd_per_day=2), NOW), 1, NOW))
    assert d.why == "exhausted"


def test_negative_amounts_are_clamped() -> None:
    led = Ledger()
    ws = windows_for(L(usd_per_day=1), NOW)
    g = grant(led.reserve("alice", ws, -5, NOW))
    assert g.amount == 0
    led.settle(g, -100, NOW)
    assert led.spent("alice", ws[0]) == 0


# -- rpm -----------------------------------------------------------------------------------


def test_rpm_is_a_sliding_minute() -> None:
    led = Ledger()
    times = [NOW, NOW + 10, NOW + 20, NOW + 30, NOW + 40]
    for t in times:
        grant(led.reserve("alice", windows_for(L(rpm=5), t), 0, t))
    t = NOW + 50
    d = denial(led.reserve("alice", windows_for(L(rpm=5), t), 0, t))
    assert (d.why, d.window.name, d.retry_after, d.window.reset_at) == (
        "rpm",
        "rpm",
        10.0,
        NOW + 60,
    )
    assert d.message == "user alice: rpm limit 5 requests per minute reached; retry in 10s"
    t = NOW + 60  # the first request leaves the window
    grant(led.reserve("alice", windows_for(L(rpm=5), t), 0, t))
    assert led.spent("alice", windows_for(L(rpm=5), t)[0]) == 5


def test_rpm_lets_no_burst_through_at_a_minute_boundary() -> None:
    led = Ledger()
    for i in range(5):  # 20:48:55 .. 20:48:59
        t = NOW + 55 + i
        grant(led.reserve("alice", windows_for(L(rpm=5), t), 0, t))
    t = at(2026, 11, 26, 20, 49, 0) + 0.5  # a fixed minute would start afresh here
    assert denial(led.reserve("alice", windows_for(L(rpm=5), t), 0, t)).retry_after == 54.5


def test_rpm_counts_when_reserved_and_a_release_does_not_give_it_back() -> None:
    led = Ledger()
    ws = windows_for(L(rpm=2), NOW)
    for _ in range(2):
        led.release(grant(led.reserve("alice", ws, 0, NOW)), NOW)
    assert denial(led.reserve("alice", ws, 0, NOW)).why == "rpm"


def test_rpm_lowered_by_a_reload_waits_for_enough_requests_to_leave() -> None:
    led = Ledger()
    for i in range(10):
        t = NOW + i
        grant(led.reserve("alice", windows_for(L(rpm=10), t), 0, t))
    t = NOW + 10
    d = denial(led.reserve("alice", windows_for(L(rpm=3), t), 0, t))
    assert d.retry_after == NOW + 7 + RPM_SPAN - t  # when only 2 of the 10 are left


def test_rpm_zero_blocks() -> None:
    d = denial(Ledger().reserve("alice", windows_for(L(rpm=0), NOW), 0, NOW))
    assert d.message.startswith("user alice: rpm limit is 0, no requests allowed")


def test_rpm_and_money_together_deny_with_the_latest_retry() -> None:
    led = Ledger()
    ws = windows_for(L(usd_per_day=1, rpm=1), NOW)
    led.settle(grant(led.reserve("alice", ws, 1_000_000, NOW)), 1_000_000, NOW)
    assert denial(led.reserve("alice", ws, 1, NOW + 1)).window.name == "usd_per_day"


# -- windows roll over, memory stays bounded -----------------------------------------------


def test_day_rolls_over_month_does_not() -> None:
    led = Ledger()
    ws = windows_for(L(usd_per_day=1, usd_per_month=10), NOW)
    led.settle(grant(led.reserve("alice", ws, 1_000_000, NOW)), 1_000_000, NOW)
    assert isinstance(led.reserve("alice", ws, 1, NOW), Denial)
    tomorrow = at(2026, 11, 27, 0, 0, 1)
    ws2 = windows_for(L(usd_per_day=1, usd_per_month=10), tomorrow)
    g = grant(led.reserve("alice", ws2, 1_000_000, tomorrow))
    assert led.spent("alice", ws2[0]) == 0
    assert led.spent("alice", ws2[1]) == 1_000_000
    led.settle(g, 500_000, tomorrow)
    assert led.spending("alice", tomorrow) == (500_000, 1_500_000)


def test_a_request_across_midnight_is_booked_in_the_day_it_started() -> None:
    led = Ledger()
    start, end = at(2026, 11, 26, 23, 59, 50), at(2026, 11, 27, 0, 0, 30)
    g = grant(led.reserve("alice", windows_for(L(1, 10), start), 800_000, start))
    led.settle(g, 700_000, end)
    day, month = windows_for(L(1, 10), end)
    assert (led.spent("alice", day), led.reserved("alice", day)) == (0, 0)
    assert led.spent("alice", month) == 700_000  # same month: it counts there


def test_settled_after_the_month_ended_books_nothing_stale() -> None:
    led = Ledger()
    start, end = at(2026, 11, 30, 23, 59, 50), at(2026, 12, 1, 0, 0, 30)
    led.settle(grant(led.reserve("alice", windows_for(L(1, 10), start), 1, start)), 5, end)
    assert led.spending("alice", end) == (0, 0)
    led.prune(end)
    assert led._buckets == {}  # nothing of November is kept


def test_memory_is_bounded_over_many_days() -> None:
    led = Ledger()
    for day in range(400):
        t = NOW + day * 86400
        ws = windows_for(L(1, 100, 5), t)
        for i in range(20):
            r = led.reserve(f"user{i % 3}", ws, 1_000, t + i)
            if isinstance(r, Grant):
                led.settle(r, 1_000, t + i)
        for buckets in led._buckets.values():
            assert len(buckets) <= 2  # today and this month
        for recent in led._recent.values():
            assert len(recent) <= 5
    assert led.in_flight == 0


def test_a_hold_across_the_reset_is_kept_until_finished() -> None:
    led = Ledger()
    start = at(2026, 11, 26, 23, 59, 59)
    g = grant(led.reserve("alice", windows_for(L(1), start), 500_000, start))
    led.prune(start + 3600)
    assert led.in_flight == 1
    led.release(g, start + 3600)
    led.prune(start + 3600)
    assert led._buckets == {}


# -- rebuild from the journal --------------------------------------------------------------


def rec(user: Any, cost: Any, ts: Any, **extra: Any) -> dict[str, Any]:
    return {"user": user, "cost_usd": cost, "ts": ts, **extra}


def test_rebuild_current_windows_from_journal_lines() -> None:
    now = at(2026, 11, 26, 12)
    led = Ledger()
    led.rebuild(
        [
            rec("alice", 0.5, "2026-11-26T08:00:00.000Z"),
            rec("alice", 0.25, "2026-11-26T11:59:59.999Z", attempt=2),
            rec("alice", 1.0, "2026-11-25T23:59:59.000Z"),  # yesterday: month only
            rec("alice", 7.0, "2026-10-31T12:00:00.000Z"),  # last month: nothing
            rec("bob", 0.003, at(2026, 11, 26, 1)),  # Unix seconds are read too
            rec("alice", None, "2026-11-26T09:00:00Z"),  # unpriced
            rec("alice", True, "2026-11-26T09:00:00Z"),
            rec("alice", -1, "2026-11-26T09:00:00Z"),
            rec("alice", "0.5", "2026-11-26T09:00:00Z"),
            rec(None, 9.0, "2026-11-26T09:00:00Z"),  # no user: a router without access
            rec("", 9.0, "2026-11-26T09:00:00Z"),
            rec("alice", 9.0, "yesterday"),
            rec("alice", 9.0, None),
            {"ts": "2026-11-26T09:00:00Z"},
        ],
        now,
    )
    day, month = windows_for(L(100, 100), now)
    assert (led.spent("alice", day), led.spent("alice", month)) == (750_000, 1_750_000)
    assert led.spending("bob", now) == (3_000, 3_000)
    assert led.spending("carol", now) == (0, 0)


def test_rebuild_prefers_what_was_charged() -> None:
    now = at(2026, 11, 26, 12)
    led = Ledger()
    led.rebuild(
        [
            rec("alice", 0.001, now - 9, charged_usd=0.05),  # a stream cut before its usage
            rec("alice", None, now - 8, charged_usd=0.02),
            rec("alice", 0.004, now - 7, charged_usd=None),
        ],
        now,
    )
    assert led.spending("alice", now) == (74_000, 74_000)


def test_rebuild_then_the_budget_holds_across_a_restart() -> None:
    now = at(2026, 11, 26, 12)
    journal = [rec("alice", 0.003, now - 60 * i) for i in range(1, 4)]
    led = Ledger()
    led.rebuild(journal, now)
    ws = windows_for(L(usd_per_day=0.01), now)
    assert denial(led.reserve("alice", ws, 3_000, now)).why == "exhausted"
    assert isinstance(led.reserve("alice", ws, 1_000, now), Grant)


def test_rebuild_restores_the_last_minutes_requests_for_rpm() -> None:
    now = at(2026, 11, 26, 12)
    led = Ledger()
    led.rebuild(
        [
            rec("alice", None, now - 70),  # left the window
            rec("alice", None, now - 30, attempt=1),
            rec("alice", None, now - 29, attempt=2),  # a failover attempt: same request
            rec("alice", None, now - 10),
            rec("alice", None, now + 30),  # from the future (a clock step): not counted
        ],
        now,
    )
    ws = windows_for(L(rpm=3), now)
    assert led.spent("alice", ws[0]) == 2
    grant(led.reserve("alice", ws, 0, now))
    d = denial(led.reserve("alice", ws, 0, now))
    assert d.retry_after == 30.0


def test_rebuild_replaces_spend_and_keeps_holds() -> None:
    now = at(2026, 11, 26, 12)
    led = Ledger()
    ws = windows_for(L(usd_per_day=1), now)
    led.settle(grant(led.reserve("alice", ws, 1, now)), 400_000, now)
    g = grant(led.reserve("alice", ws, 300_000, now))
    led.rebuild([rec("alice", 0.1, now - 1)], now)
    assert (led.spent("alice", ws[0]), led.reserved("alice", ws[0])) == (100_000, 300_000)
    led.settle(g, 200_000, now)
    assert led.spent("alice", ws[0]) == 300_000


def test_rebuild_later_drops_ended_windows() -> None:
    led = Ledger()
    old = at(2026, 9, 3, 12)
    led.settle(grant(led.reserve("alice", windows_for(L(1, 1, 5), old), 1, old)), 5, old)
    led.settle(grant(led.reserve("bob", windows_for(L(1, 1, 5), NOW), 1, NOW)), 7, NOW)
    led.rebuild([rec("bob", 0.000002, NOW), "not a record", None], NOW)  # type: ignore[list-item]
    assert set(led._buckets) == {"bob"}
    assert led.spending("bob", NOW) == (2, 2)
    assert led.spending("alice", old) == (0, 0)


def test_rebuild_reads_the_journals_own_lines() -> None:
    """The JSONL line the engine writes (Attempt.record) is what rebuild reads."""
    from llmrouter.proxy.attempt import Attempt, Ctx

    ctx = Ctx("rid", "default", "failover", "anthropic", "m", False, 0.0)
    att = Attempt(ctx, 1, "a", "a https://a", False, wall=NOW - 5)
    att.cost = 0.0042
    line = {**att.record(), "user": "alice"}
    led = Ledger()
    led.rebuild([line], NOW)
    assert led.spending("alice", NOW) == (4_200, 4_200)


# -- formatting ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("micro", "text"),
    [(5_000_000, "$5.00"), (4_998_000, "$4.998"), (10_000, "$0.01"), (3_000, "$0.003"),
     (123, "$0.000123"), (0, "$0.00"), (1_234_567_890, "$1234.56789")],
)  # fmt: skip
def test_usd(micro: int, text: str) -> None:
    assert limits.format_usd(micro) == text


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(0, "0s"), (0.2, "1s"), (45, "45s"), (60, "1m"), (125, "2m5s"), (3 * 3600 + 12 * 60, "3h12m"),
     (3 * 3600 + 12 * 60 + 40, "3h12m"), (7200, "2h"), (4 * 86400 + 3 * 3600 + 5, "4d3h")],
)  # fmt: skip
def test_duration(seconds: float, text: str) -> None:
    assert limits.format_duration(seconds) == text
