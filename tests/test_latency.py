"""Latency learned from the router's own attempts: per provider, model and request kind."""

from __future__ import annotations

from llmrouter.state.latency import STALE_AFTER, WINDOW, Figures, LatencyBook


def test_stream_records_ttft() -> None:
    lb = LatencyBook()
    lb.record_ok("a", "m", True, 0.0, ttft_ms=412.0, total_ms=9999.0, output_tokens=10)
    s = lb.get("a", "m", True)
    assert s is not None and s.p50 == 412.0 and s.count == 1
    assert lb.get("a", "m", False) is None  # kept separately


def test_non_stream_records_ms_per_output_token() -> None:
    lb = LatencyBook()
    lb.record_ok("a", "m", False, 0.0, ttft_ms=5.0, total_ms=2000.0, output_tokens=100)
    s = lb.get("a", "m", False)
    assert s is not None and s.p50 == 20.0
    assert lb.get("a", "m", True) is None
    # a long answer from the same provider does not look slower
    lb.record_ok("a", "m", False, 1.0, total_ms=20_000.0, output_tokens=1000)
    assert s.p50 == 20.0


def test_missing_figures_record_nothing() -> None:
    lb = LatencyBook()
    lb.record_ok("a", "m", True, 0.0)  # no ttft
    lb.record_ok("a", "m", False, 0.0, total_ms=100.0)  # no token count
    lb.record_ok("a", "m", False, 0.0, total_ms=100.0, output_tokens=0)
    assert lb.get("a", "m", True) is None
    assert lb.get("a", "m", False) is None


def test_stream_and_non_stream_are_separate_series() -> None:
    lb = LatencyBook()
    for i in range(5):
        lb.record_ok("a", "m", True, float(i), ttft_ms=300.0)
        lb.record_ok("a", "m", False, float(i), total_ms=500.0, output_tokens=50)
    assert lb.get("a", "m", True).p50 == 300.0  # type: ignore[union-attr]
    assert lb.get("a", "m", False).p50 == 10.0  # type: ignore[union-attr]


def test_per_provider_and_model() -> None:
    lb = LatencyBook()
    lb.record_ok("a", "small", True, 0.0, ttft_ms=100.0)
    lb.record_ok("a", "big", True, 0.0, ttft_ms=900.0)
    lb.record_ok("b", "small", True, 0.0, ttft_ms=200.0)
    lb.record_ok("a", None, True, 0.0, ttft_ms=50.0)
    assert lb.get("a", "small", True).p50 == 100.0  # type: ignore[union-attr]
    assert lb.get("a", "big", True).p50 == 900.0  # type: ignore[union-attr]
    assert lb.get("b", "small", True).p50 == 200.0  # type: ignore[union-attr]
    assert lb.get("a", None, True).p50 == 50.0  # type: ignore[union-attr]
    assert lb.get("b", "big", True) is None


def test_median_ignores_a_one_off_spike() -> None:
    lb = LatencyBook()
    for v in (100.0, 110.0, 105.0, 5000.0, 95.0):
        lb.record_ok("a", "m", True, 0.0, ttft_ms=v)
    assert lb.get("a", "m", True).p50 == 105.0  # type: ignore[union-attr]


def test_a_provider_that_got_slower_is_noticed() -> None:
    lb = LatencyBook()
    t = 0.0
    for _ in range(100):  # a long fast history...
        t += 1
        lb.record_ok("a", "m", True, t, ttft_ms=100.0)
        lb.record_ok("b", "m", True, t, ttft_ms=300.0)
    assert lb.get("a", "m", True).p50 < lb.get("b", "m", True).p50  # type: ignore[union-attr,operator]
    slow = 0
    while lb.get("a", "m", True).p50 <= 300.0:  # type: ignore[union-attr,operator]
        t += 1
        slow += 1
        lb.record_ok("a", "m", True, t, ttft_ms=1000.0)
        lb.record_ok("b", "m", True, t, ttft_ms=300.0)
    # ...does not hide it: half a window of slow samples flips the order
    assert slow <= WINDOW // 2 + 1
    s = lb.get("a", "m", True)
    assert s is not None and len(s.samples) == WINDOW and s.count == 100 + slow


def test_failure_penalty_sample() -> None:
    lb = LatencyBook()
    lb.record_failure("a", "m", True, 0.0)  # nothing known: the floor
    assert lb.get("a", "m", True).p50 == 30_000.0  # type: ignore[union-attr]
    lb.record_failure("b", "m", False, 0.0)
    assert lb.get("b", "m", False).p50 == 1_000.0  # type: ignore[union-attr]
    # a slow provider is penalised at 4x its median
    lb2 = LatencyBook()
    for _ in range(3):
        lb2.record_ok("c", "m", True, 0.0, ttft_ms=20_000.0)
    lb2.record_failure("c", "m", True, 0.0)
    assert max(lb2.get("c", "m", True).samples) == 80_000.0  # type: ignore[union-attr]


def test_timeouts_make_a_fast_provider_look_slow() -> None:
    lb = LatencyBook()
    for t in range(5):
        lb.record_ok("a", "m", True, float(t), ttft_ms=100.0)
    for t in range(5, 11):
        lb.record_failure("a", "m", True, float(t))
    assert lb.get("a", "m", True).p50 >= 30_000.0  # type: ignore[union-attr,operator]


def test_cold_until_min_samples() -> None:
    lb = LatencyBook()
    for i in range(4):
        lb.record_ok("a", "m", True, float(i), ttft_ms=100.0)
    s = lb.get("a", "m", True)
    assert s is not None
    assert not s.warm(4.0, 5)
    assert s.warm(4.0, 4)
    lb.record_ok("a", "m", True, 4.0, ttft_ms=100.0)
    assert s.warm(4.0, 5)


def test_stale_provider_is_cold_again() -> None:
    lb = LatencyBook()
    for i in range(10):
        lb.record_ok("a", "m", True, 1000.0 + i, ttft_ms=100.0)
    s = lb.get("a", "m", True)
    assert s is not None
    assert s.warm(1009.0 + STALE_AFTER, 5)
    assert not s.warm(1009.0 + STALE_AFTER + 1, 5)
    lb.record_ok("a", "m", True, 5000.0, ttft_ms=100.0)  # a fresh sample warms it again
    assert s.warm(5000.0, 5)


def test_out_of_order_times_keep_the_latest() -> None:
    lb = LatencyBook()
    lb.record_ok("a", "m", True, 100.0, ttft_ms=1.0)
    lb.record_ok("a", "m", True, 50.0, ttft_ms=1.0)  # e.g. a replayed log line
    assert lb.get("a", "m", True).last == 100.0  # type: ignore[union-attr]


def test_state_is_bounded_by_window() -> None:
    lb = LatencyBook()
    for i in range(10_000):
        lb.record_ok("a", "m", True, float(i), ttft_ms=float(i))
    s = lb.get("a", "m", True)
    assert s is not None and len(s.samples) == WINDOW and s.count == 10_000


def test_retain_and_summary() -> None:
    lb = LatencyBook()
    lb.record_ok("a", "m", True, 0.0, ttft_ms=100.0)
    lb.record_ok("a", None, False, 0.0, total_ms=100.0, output_tokens=10)
    lb.record_ok("b", "m", True, 0.0, ttft_ms=100.0)
    assert lb.summary("a") == {"m ttft": Figures(100.0, 100.0, 1, 0),
                               "- ms/tok": Figures(10.0, 10.0, 1, 0)}  # fmt: skip
    lb.retain({"a"})
    assert lb.get("b", "m", True) is None
    assert lb.get("a", "m", True) is not None
    assert lb.summary("b") == {}


def test_failure_penalties_rank_but_are_reported_apart_from_measured_latency() -> None:
    """A provider whose streams took ~300 ms and that failed 3 times: least-latency still ranks
    it by the penalties, but status reports 300 ms measured and the 3 penalties apart."""
    lb = LatencyBook()
    for i, ttft in enumerate((290.0, 301.0, 310.0)):
        lb.record_ok("a", "m", True, float(i), ttft_ms=ttft)
    for i in range(3):
        lb.record_failure("a", "m", True, 10.0 + i)
    s = lb.get("a", "m", True)
    assert s is not None and s.p50 is not None and s.p50 > 10_000  # the ranking is unchanged
    f = lb.summary("a")["m ttft"]
    assert (f.measured_p50, f.measured, f.penalties) == (301.0, 3, 3)
    assert f.ranked_p50 == s.p50
    for i in range(WINDOW):  # the window slides: only penalties left, nothing measured
        lb.record_failure("a", "m", True, 20.0 + i)
    f = lb.summary("a")["m ttft"]
    assert (f.measured_p50, f.measured, f.penalties) == (None, 0, WINDOW)
