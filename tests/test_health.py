"""Provider health: Retry-After parsing, cooldowns by failure class, half-open probes."""

from __future__ import annotations

from datetime import UTC, datetime
from email.utils import formatdate

import pytest
from llmrouter.state.health import HealthBook, HealthSettings, State, parse_retry_after
from llmrouter.wire.outcome import Failure

NOW_WALL = 1_750_000_000.0  # a fixed Unix time for header dates
K = "a https://a.example.com"


def http_date(ts: float) -> str:
    return formatdate(ts, usegmt=True)


def rfc3339(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat().replace("+00:00", "Z")


# -- Retry-After parsing ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("headers", "seconds"),
    [
        ({"retry-after-ms": "1500"}, 1.5),
        ({"retry-after-ms": "20"}, 0.02),
        ({"retry-after": "30"}, 30.0),
        ({"retry-after": "2.5"}, 2.5),
        ({"retry-after": " 7 "}, 7.0),
        ({"retry-after": "0"}, 0.0),
        ({"retry-after": "-5"}, 0.0),
        ({"retry-after": http_date(NOW_WALL + 120)}, 120.0),
        ({"retry-after": http_date(NOW_WALL - 60)}, 0.0),  # a date in the past: now
        # order: retry-after-ms, then retry-after, then the reset headers
        ({"retry-after-ms": "1500", "retry-after": "30"}, 1.5),
        ({"retry-after-ms": "junk", "retry-after": "30"}, 30.0),
        ({"retry-after": "30", "x-ratelimit-reset-requests": "5s"}, 30.0),
        ({"retry-after": "soon", "x-ratelimit-reset-requests": "5s"}, 5.0),
        # OpenAI reset durations
        ({"x-ratelimit-reset-requests": "1s"}, 1.0),
        ({"x-ratelimit-reset-requests": "20ms"}, 0.02),
        ({"x-ratelimit-reset-tokens": "6m0s"}, 360.0),
        ({"x-ratelimit-reset-tokens": "1h2m3.5s"}, 3723.5),
        ({"x-ratelimit-reset-tokens": "0.5"}, 0.5),
        # several limits: the soonest, unless one says it is exhausted
        ({"x-ratelimit-reset-requests": "1s", "x-ratelimit-reset-tokens": "6m0s"}, 1.0),
        (
            {
                "x-ratelimit-reset-requests": "1s",
                "x-ratelimit-reset-tokens": "6m0s",
                "x-ratelimit-remaining-requests": "10",
                "x-ratelimit-remaining-tokens": "0",
            },
            360.0,
        ),
        # Anthropic reset headers carry RFC 3339 times
        ({"anthropic-ratelimit-requests-reset": rfc3339(NOW_WALL + 20)}, 20.0),
        (
            {
                "anthropic-ratelimit-tokens-reset": datetime.fromtimestamp(
                    NOW_WALL + 90, UTC
                ).isoformat()
            },
            90.0,
        ),
        (
            {
                "anthropic-ratelimit-requests-reset": rfc3339(NOW_WALL + 50),
                "anthropic-ratelimit-requests-remaining": "3",
                "anthropic-ratelimit-output-tokens-reset": rfc3339(NOW_WALL + 5),
                "anthropic-ratelimit-input-tokens-reset": rfc3339(NOW_WALL + 40),
                "anthropic-ratelimit-input-tokens-remaining": "0",
            },
            40.0,
        ),
    ],
)
def test_parse_retry_after(headers: dict[str, str], seconds: float) -> None:
    assert parse_retry_after(headers, NOW_WALL) == pytest.approx(seconds)


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"content-type": "application/json"},
        {"retry-after": "tomorrow"},
        {"retry-after-ms": "x"},
        {"x-ratelimit-reset-requests": "soon"},
        {"anthropic-ratelimit-requests-reset": "not a date"},
        {"anthropic-ratelimit-requests-reset": "2025-06-15T15:07:00"},  # no zone: unusable
        {"x-ratelimit-limit-requests": "100"},
    ],
)
def test_parse_retry_after_unusable(headers: dict[str, str]) -> None:
    assert parse_retry_after(headers, NOW_WALL) is None


# -- cooldowns by failure class ---------------------------------------------------------------


def book(**kw: float) -> HealthBook:
    return HealthBook(HealthSettings(**kw))


def test_unknown_provider_is_healthy_and_not_created() -> None:
    hb = book()
    assert hb.available(K, 0.0)
    assert hb.until(K) == 0.0
    assert hb._providers == {}


def test_rate_limit_uses_retry_after_else_default() -> None:
    hb = book(rate_limit_cooldown=30)
    assert hb.record(K, 100.0, Failure.RATE_LIMIT, retry_after=2.0) == 2.0
    assert not hb.available(K, 101.9)
    assert hb.available(K, 102.0)
    hb2 = book(rate_limit_cooldown=30)
    assert hb2.record(K, 100.0, Failure.RATE_LIMIT) == 30.0
    assert hb2.until(K) == 130.0


def test_later_deadline_wins() -> None:
    hb = book()
    hb.record(K, 0.0, Failure.RATE_LIMIT, retry_after=60.0)
    hb.record(K, 1.0, Failure.RATE_LIMIT, retry_after=5.0)  # shorter: the earlier one stands
    assert hb.until(K) == 60.0
    hb.record(K, 2.0, Failure.RATE_LIMIT, retry_after=100.0)  # longer: extends
    assert hb.until(K) == 102.0


def test_max_cooldown_caps_retry_after() -> None:
    hb = book(max_cooldown=600)
    assert hb.record(K, 0.0, Failure.RATE_LIMIT, retry_after=1e9) == 600.0
    assert hb.until(K) == 600.0


def test_backoff_doubles_to_max_and_resets_on_success() -> None:
    hb = book(backoff_initial=10, backoff_max=300)
    cools = [hb.record(K, float(t), Failure.SERVER) for t in range(8)]
    assert cools == [10, 20, 40, 80, 160, 300, 300, 300]
    hb.record(K, 1000.0, Failure.NONE)
    assert hb.available(K, 1000.0)
    assert hb.get(K).failures == 0
    assert hb.record(K, 1001.0, Failure.SERVER) == 10


def test_backoff_honours_a_longer_retry_after_on_5xx() -> None:
    hb = book(backoff_initial=10)
    assert hb.record(K, 0.0, Failure.SERVER, retry_after=45.0) == 45.0
    assert hb.record(K, 100.0, Failure.SERVER, retry_after=1.0) == 20.0


def test_auth_long_cooldown() -> None:
    hb = book(auth_cooldown=1800)
    assert hb.record(K, 0.0, Failure.AUTH) == 1800
    h = hb.get(K)
    assert h.last_error == "auth"
    assert h.state(1799.0) is State.COOLING
    assert hb.available(K, 1800.0)


def test_final_4xx_no_penalty() -> None:
    hb = book()
    assert hb.record(K, 0.0, Failure.NONE) is None
    assert hb.available(K, 0.0)
    assert hb.get(K).last_error is None
    assert hb.get(K).recent(0.0) == (1, 0)


def test_cooldown_is_returned_and_recorded() -> None:
    hb = book()
    assert hb.record(K, 5.0, Failure.SERVER) == 10.0
    h = hb.get(K)
    assert h.last_error == "server" and h.last_error_at == 5.0
    assert h.state(6.0) is State.COOLING


# -- half-open recovery -----------------------------------------------------------------------


def test_exactly_one_probe_after_cooldown() -> None:
    hb = book(backoff_initial=10)
    assert hb.acquire(K, 0.0) is False  # healthy: a normal attempt
    hb.record(K, 0.0, Failure.SERVER)
    assert hb.acquire(K, 5.0) is None  # cooling: skipped
    assert hb.acquire(K, 10.0) is True  # cooldown over: this request probes
    assert hb.get(K).state(10.0) is State.PROBING
    assert not hb.available(K, 10.5)
    assert hb.acquire(K, 10.5) is None  # a second request keeps avoiding it
    assert hb.acquire(K, 11.0) is None
    hb.record(K, 12.0, Failure.NONE, probe=True)  # the probe succeeded
    assert hb.available(K, 12.0)
    assert hb.acquire(K, 12.0) is False  # and it is healthy again: no more probes
    assert hb.acquire(K, 12.0) is False
    assert hb.get(K).state(12.0) is State.HEALTHY


def test_probe_failure_recools_longer() -> None:
    hb = book(backoff_initial=10, backoff_max=300)
    hb.record(K, 0.0, Failure.SERVER)  # 10 s
    assert hb.acquire(K, 10.0) is True
    assert hb.record(K, 11.0, Failure.SERVER, probe=True) == 20.0
    assert hb.until(K) == 31.0
    assert hb.acquire(K, 30.0) is None
    assert hb.acquire(K, 31.0) is True  # the next single probe
    assert hb.acquire(K, 31.0) is None


def test_probe_of_rate_limited_provider() -> None:
    hb = book()
    hb.record(K, 0.0, Failure.RATE_LIMIT, retry_after=2.0)
    assert hb.acquire(K, 1.0) is None
    assert hb.acquire(K, 2.0) is True
    assert hb.acquire(K, 2.1) is None


def test_unjudged_probe_frees_the_slot_without_a_verdict() -> None:
    hb = book()
    hb.record(K, 0.0, Failure.SERVER)
    assert hb.acquire(K, 10.0) is True
    assert hb.record(K, 10.5, Failure.NONE, probe=True, judged=False) is None
    assert hb.acquire(K, 11.0) is True  # still unproven: the next request probes


def test_probe_lease_expires() -> None:
    hb = book(probe_lease=60)
    hb.record(K, 0.0, Failure.SERVER)
    assert hb.acquire(K, 10.0) is True
    assert hb.acquire(K, 69.0) is None
    assert hb.acquire(K, 70.0) is True  # the probe's owner vanished


def test_success_started_before_the_failure_does_not_lift_it() -> None:
    hb = book()
    hb.record(K, 5.0, Failure.SERVER)
    hb.record(K, 6.0, Failure.NONE, started=1.0)  # a slow attempt that began earlier
    assert not hb.available(K, 6.0)
    hb.record(K, 7.0, Failure.NONE, started=6.5)
    assert hb.available(K, 7.0)


def test_force_claims_a_cooling_provider() -> None:
    hb = book()
    hb.record(K, 0.0, Failure.SERVER)
    assert hb.acquire(K, 1.0) is None
    assert hb.acquire(K, 1.0, force=True) is True


# -- all cooling, windows, reload, sharing ----------------------------------------------------


def test_all_cooling_earliest_recovery() -> None:
    hb = book(backoff_initial=10)
    hb.record("a", 0.0, Failure.SERVER)  # until 10
    hb.record("b", 0.0, Failure.RATE_LIMIT, retry_after=4.0)  # until 4
    hb.record("c", 0.0, Failure.AUTH)  # until 1800
    assert hb.earliest_recovery(["a", "b", "c"], 1.0) == pytest.approx(3.0)
    assert min(["a", "b", "c"], key=hb.until) == "b"  # the one to force
    assert hb.earliest_recovery(["a", "c"], 1.0) == pytest.approx(9.0)
    # one ready: nothing to wait for
    assert hb.earliest_recovery(["a", "b", "never-failed"], 1.0) is None
    assert hb.earliest_recovery(["a", "b"], 20.0) is None
    assert hb.earliest_recovery([], 0.0) is None


def test_windowed_counts() -> None:
    hb = book()
    hb.record(K, 0.0, Failure.SERVER)
    hb.record(K, 5.0, Failure.NONE)
    hb.record(K, 100.0, Failure.RATE_LIMIT)
    hb.record(K, 101.0, Failure.NONE, probe=True, judged=False)  # not counted
    h = hb.get(K)
    assert h.recent(100.0) == (3, 2)
    assert h.recent(299.0) == (3, 2)
    assert h.recent(305.0) == (1, 1)  # the first bucket left the five-minute window
    assert h.recent(1000.0) == (0, 0)
    assert len(h.window) == 0


def test_window_is_bounded() -> None:
    hb = book()
    for t in range(0, 100_000, 3):
        hb.record(K, float(t), Failure.NONE)
    assert len(hb.get(K).window) <= 31


def test_retain_keeps_survivors_across_reload() -> None:
    hb = book()
    hb.record("keep", 0.0, Failure.SERVER)
    hb.record("gone", 0.0, Failure.SERVER)
    hb.retain(["keep", "new"])
    assert not hb.available("keep", 1.0)
    assert hb.available("gone", 1.0)
    assert "gone" not in hb._providers


def test_health_is_shared_by_every_profile_listing_the_provider() -> None:
    hb = book()
    key = "shared https://s.example.com"  # the glue keys by provider, not by profile
    # profile "work" sees the failure...
    hb.record(key, 0.0, Failure.SERVER)
    # ...and so does profile "default", which lists the same provider
    assert not hb.available(key, 1.0)
    assert hb.acquire(key, 1.0) is None
    assert hb.acquire(key, 10.0) is True  # one probe across all profiles
    assert hb.acquire(key, 10.0) is None


def test_settings_can_be_replaced_on_reload() -> None:
    hb = book(backoff_initial=10)
    hb.settings = HealthSettings(backoff_initial=1, backoff_max=2)
    assert hb.record(K, 0.0, Failure.SERVER) == 1
    assert hb.record(K, 0.0, Failure.SERVER) == 2
    assert hb.record(K, 0.0, Failure.SERVER) == 2


def test_a_burst_of_concurrent_failures_is_one_backoff_step() -> None:
    hb = book()
    # Eight attempts started together at t=0; they fail one after another.
    cools = [hb.record("a", 1.0 + i / 100, Failure.SERVER, started=0.0) for i in range(8)]
    assert cools[0] == 10.0
    assert all(c == 10.0 for c in cools)  # not 20, 40, ... 300
    # A new attempt, started after those failures, fails: that is the next step.
    assert hb.record("a", 12.0, Failure.SERVER, started=11.5) == 20.0


def test_a_new_key_lifts_an_auth_cooldown_but_not_others() -> None:
    hb = book()
    hb.record("a", 0.0, Failure.AUTH)
    hb.record("b", 0.0, Failure.SERVER)
    hb.forgive_auth("a")
    hb.forgive_auth("b")
    assert hb.available("a", 1.0)
    assert not hb.available("b", 1.0)


def test_a_committed_streamed_probe_makes_the_provider_healthy_at_once() -> None:
    hb = book()
    hb.record("a", 0.0, Failure.SERVER)  # cools 10 s
    assert hb.acquire("a", 11.0) is True  # this request probes
    assert hb.acquire("a", 11.1) is None  # others keep avoiding it
    hb.probe_passed("a")  # its stream committed; the stream itself goes on
    assert hb.acquire("a", 11.2) is False  # a normal attempt again, not a probe
    assert hb.get("a").state(11.2) is State.HEALTHY
