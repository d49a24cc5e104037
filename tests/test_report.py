"""Traffic report: aggregation, bounded memory, CLI, and the HTML page (rendered in Chromium)."""

from __future__ import annotations

import contextlib
import json
import math
import os
import random
import re
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import llmrouter.tools.report as report_module
import pytest
from llmrouter.tools._histogram import LogHistogram, nearest_rank
from llmrouter.tools.report import (
    Aggregator,
    Report,
    Row,
    aggregate_files,
    log_files,
    main,
    parse_time,
)

T0 = datetime(2026, 11, 25, 22, 0, tzinfo=UTC)
CHROMIUM = "/usr/bin/chromium"


def _ts(seconds: float) -> str:
    return (T0 + timedelta(seconds=seconds)).isoformat(timespec="milliseconds")[:-6] + "Z"


def _rec(t: float, rid: str, provider: str, model: str, **kw: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "ts": _ts(t), "request_id": rid, "profile": "default", "strategy": "ordered",
        "candidates": ["anthropic", "openai", "bedrock"], "reason": "test", "attempt": 1,
        "provider": provider, "api": "anthropic", "model": model, "requested_model": model,
        "stream": False, "status": 200, "outcome": "ok", "error": None, "final": True,
        "ttfb_ms": 50.0, "ttft_ms": None, "total_ms": 1000.0, "input_tokens": None,
        "output_tokens": None, "cache_read_tokens": None, "cache_write_tokens": None,
        "cost_usd": None, "skipped": [], "cooldown_s": None, "bytes": 1234,
    }  # fmt: skip
    base.update(kw)
    return base


def _fail(t: float, rid: str, provider: str, model: str, **kw: Any) -> dict[str, Any]:
    kw = {"status": 503, "outcome": "http_error", "error": "503", "final": False, **kw}
    return _rec(t, rid, provider, model, total_ms=80.0, **kw)


def _dataset() -> list[dict[str, Any]]:
    """Known traffic, in log order (each line written when its attempt ends)."""
    recs = [
        # r1: anthropic 503, then openai serves (a stream).
        _fail(0, "r1", "anthropic", "claude-a"),
        _rec(1, "r1", "openai", "gpt-b", attempt=2, stream=True, ttft_ms=200.0, total_ms=900.0,
             input_tokens=100, output_tokens=20, cache_read_tokens=5, cache_write_tokens=1,
             cost_usd=0.01),
        # r2: anthropic times out, openai 503, bedrock serves without a price.
        _fail(10, "r2", "anthropic", "claude-a", status=None, outcome="timeout"),
        _fail(11, "r2", "openai", "gpt-b", attempt=2),
        _rec(12, "r2", "bedrock", "claude-a", attempt=3, input_tokens=50, output_tokens=10),
    ]  # fmt: skip
    for i in range(10):  # r3..r12: anthropic streams, first try, ttft 100..1000
        recs.append(
            _rec(20 + i, f"r{3 + i}", "anthropic", "claude-a", stream=True,
                 ttft_ms=100.0 * (i + 1), total_ms=1000.0 * (i + 1), input_tokens=10,
                 output_tokens=5, cost_usd=0.002)
        )  # fmt: skip
    recs += [
        _rec(40, "r13", "openai", "gpt-c", total_ms=3000.0, input_tokens=1000, cost_usd=0.5),
        # r14: the client went away; nothing followed, so it is no failover.
        _fail(50, "r14", "anthropic", "claude-a", status=None, outcome="client_closed"),
        # r15: the last candidate's error reached the client: final, not served.
        _fail(60, "r15", "anthropic", "claude-a", final=True),
    ]
    return recs


BAD_LINES = [
    "garbage",
    "[1, 2]",
    json.dumps(_rec(70, "b1", "anthropic", "claude-a", attempt="1")),
    json.dumps(_rec(71, "b2", "anthropic", "claude-a", final="yes")),
    json.dumps(_rec(72, "b3", "anthropic", "claude-a", ttft_ms="fast")),
    json.dumps(_rec(73, "b4", "anthropic", "claude-a", ts="yesterday")),
    json.dumps(_rec(73, "b4", "anthropic", "claude-a", ts="0001-01-01T00:00:00Z")),
    json.dumps(_rec(74, "b5", "anthropic", "claude-a", input_tokens=1.5)),
    json.dumps({k: v for k, v in _rec(75, "b6", "openai", "gpt-b").items() if k != "outcome"}),
]
TRUNCATED = json.dumps(_rec(80, "b7", "openai", "gpt-b"))[:57]  # the line being written


def _write_log(directory: Path) -> Path:
    """router.jsonl with two rotated siblings; r1's failover straddles .1 and the live file."""
    lines = [json.dumps(r) for r in _dataset()]
    log = directory / "router.jsonl"
    (directory / "router.jsonl.2").write_text("\n".join(BAD_LINES[:2]) + "\n\n")
    (directory / "router.jsonl.1").write_text(lines[0] + "\n" + "\n".join(BAD_LINES[2:]) + "\n")
    log.write_text("\n".join(lines[1:]) + "\n" + TRUNCATED)
    return log


def _rows(report: Report) -> dict[tuple[str, str], Row]:
    return {(r.provider, r.model): r for r in report.rows}


def _close(actual: float | None, exact: float, precision: float = 0.01) -> bool:
    return actual is not None and abs(actual - exact) <= precision * exact + 1e-9


@pytest.fixture
def log(tmp_path: Path) -> Path:
    return _write_log(tmp_path)


def test_rotated_files_oldest_first(log: Path) -> None:
    d = log.parent
    (d / "router.jsonl.10").write_text("")
    (d / "router.jsonl.1.gz").write_text("")  # not a rotation of ours
    names = [p.name for p in log_files(log)]
    assert names == ["router.jsonl.10", "router.jsonl.2", "router.jsonl.1", "router.jsonl"]
    assert log_files(log, rotated=False) == [log]


def test_aggregates(log: Path) -> None:
    report = aggregate_files(log_files(log))
    rows = _rows(report)
    assert list(rows) == [
        ("anthropic", "claude-a"), ("bedrock", "claude-a"),
        ("openai", "gpt-b"), ("openai", "gpt-c"),
    ]  # fmt: skip
    a = rows["anthropic", "claude-a"]
    assert (a.attempts, a.served, a.first_try, a.first_try_share) == (14, 10, 10, 1.0)
    assert a.failovers == {"503": 1, "timeout": 1}  # not client_closed, not the final 503
    assert a.ok_attempts == 10
    assert _close(a.ttft_p50, 500) and _close(a.ttft_p95, 1000)
    assert _close(a.total_p50, 5000) and _close(a.total_p95, 10000)
    assert (a.input_tokens, a.output_tokens) == (100, 50)
    assert a.cost_usd == pytest.approx(0.02) and not a.cost_partial

    b = rows["openai", "gpt-b"]
    assert (b.attempts, b.served, b.first_try, b.first_try_share) == (2, 1, 0, 0.0)
    assert b.failovers == {"503": 1}
    assert _close(b.ttft_p50, 200) and _close(b.total_p50, 900)  # the 503's 80 ms is not ok
    assert (b.input_tokens, b.output_tokens, b.cache_read_tokens, b.cache_write_tokens) == (
        100, 20, 5, 1,
    )  # fmt: skip

    br = rows["bedrock", "claude-a"]
    assert (br.served, br.first_try, br.failovers) == (1, 0, {})
    assert br.cost_usd is None and br.unpriced == 1
    c = rows["openai", "gpt-c"]
    assert c.ttft_p50 is None and _close(c.total_p50, 3000) and c.cost_usd == pytest.approx(0.5)

    t = report.totals
    assert (t.attempts, t.served, t.first_try) == (18, 13, 11)
    assert t.failovers == {"503": 2, "timeout": 1}
    assert t.input_tokens == 100 + 50 + 100 + 1000 and t.output_tokens == 20 + 10 + 50
    assert t.cost_usd == pytest.approx(0.53) and t.cost_partial
    assert (report.lines, report.bad, report.filtered) == (18 + 10, 10, 0)
    assert report.first_ts == T0 and report.last_ts == T0 + timedelta(seconds=60)
    served_in_series = sum(p.served for pts in report.series.values() for p in pts)
    assert served_in_series == 13


def test_failover_lost_without_rotated_files(log: Path) -> None:
    # Reading only the live file loses r1's first attempt (it is in router.jsonl.1).
    report = aggregate_files(log_files(log, rotated=False))
    assert _rows(report)["anthropic", "claude-a"].failovers == {"timeout": 1}
    assert report.bad == 1  # the truncated last line


def test_runaway_line_is_one_bad_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(report_module, "_MAX_LINE", 4096)
    good = json.dumps(_rec(0, "r1", "openai", "gpt-b"))
    path = tmp_path / "router.jsonl"
    path.write_text(f"{good}\n{'x' * 20_000}\n{good.replace('r1', 'r2')}\n{'y' * 8192}")
    report = aggregate_files([path])
    assert (report.lines, report.bad, report.totals.served) == (4, 2, 2)


def test_since_until_filtering(log: Path) -> None:
    report = aggregate_files(log_files(log), since=T0 + timedelta(seconds=12))
    rows = _rows(report)
    assert set(rows) == {("anthropic", "claude-a"), ("bedrock", "claude-a"), ("openai", "gpt-c")}
    assert rows["anthropic", "claude-a"].attempts == 12 and report.filtered == 4
    report = aggregate_files(
        log_files(log), since=T0 + timedelta(seconds=10), until=T0 + timedelta(seconds=12)
    )
    # r2's attempts in range learn they were followed, even by a line after --until.
    assert report.totals.failovers == {"timeout": 1, "503": 1}
    assert report.totals.served == 0 and report.filtered == 16


def test_parse_time() -> None:
    now = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
    assert parse_time("24h", now) == now - timedelta(hours=24)
    assert parse_time("30m", now) == now - timedelta(minutes=30)
    assert parse_time("7d", now) == now - timedelta(days=7)
    assert parse_time("90s", now) == now - timedelta(seconds=90)
    assert parse_time("2026-11-20", now) == datetime(2026, 11, 20, tzinfo=UTC)
    assert parse_time("2026-11-20T10:00:00+01:00", now) == datetime(2026, 11, 20, 9, tzinfo=UTC)
    with pytest.raises(ValueError, match="duration"):
        parse_time("yesterday", now)


def test_histogram_precision() -> None:
    rnd = random.Random(7)
    values = [rnd.lognormvariate(6, 1.2) for _ in range(20_000)] + [0.0] * 50
    h = LogHistogram(0.01)
    for v in values:
        h.add(v)
    values.sort()
    for q in (0.001, 0.5, 0.9, 0.95, 0.99, 1.0):
        exact = values[nearest_rank(q, len(values)) - 1]
        assert _close(h.quantile(q), exact), q
    assert h.quantile(0.001) == 0.0 and LogHistogram().quantile(0.5) is None
    # Buckets grow with log(max/min), not with the count.
    assert h.bucket_count <= math.log(values[-1] / values[50]) / math.log(1.01 / 0.99) + 3


def _generated(n: int) -> Iterator[dict[str, Any]]:
    """A month of traffic: 4 providers, failovers, abandoned attempts."""
    rnd = random.Random(3)
    providers = ["anthropic", "openai", "bedrock", "vertex"]
    start = T0.timestamp()
    for i in range(n):
        ts = datetime.fromtimestamp(start + i * 13, UTC).isoformat()
        p = providers[i % 4]
        kind = i % 10
        yield {
            "ts": ts, "request_id": f"g{i // 2}" if kind < 2 else f"g{i}",
            "attempt": 2 if kind == 1 else 1, "provider": p, "model": f"m{i % 3}",
            "outcome": "http_error" if kind == 0 else "client_closed" if kind == 9 else "ok",
            "status": 503 if kind == 0 else 200, "final": kind not in (0, 9),
            "ttft_ms": rnd.lognormvariate(6, 0.6), "total_ms": rnd.lognormvariate(8, 0.8),
            "input_tokens": 100, "output_tokens": 10, "cost_usd": 0.001,
        }  # fmt: skip


def test_bounded_memory() -> None:
    agg = Aggregator()
    for i, obj in enumerate(_generated(200_000)):  # streamed: never a list
        agg.add(obj)
        if i == 99_999:
            half = agg.footprint()
    report = agg.result()
    assert report.lines == 200_000 and report.bad == 0
    assert report.totals.failovers == {"503": 20_000}
    assert report.totals.served == 160_000
    # State stays small and does not grow with the number of lines.
    assert agg.footprint() < 100_000
    assert agg.footprint() < 1.2 * half
    assert all(len(points) <= 500 for points in report.series.values())
    assert len(agg._pending) < 1000  # abandoned attempts age out
    assert sum(p.served for pts in report.series.values() for p in pts) == 160_000


def test_cli_terminal_output(log: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main([str(log)]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()

    def row(provider: str, model: str) -> str:
        found = [ln for ln in lines if re.match(rf"{provider}\s+{model}\s", ln)]
        assert len(found) == 3, (provider, model, out)  # traffic, latency, tokens
        return found[0]

    assert re.search(r"\b14\s+10\s+100\.0%\s+503 x1, timeout x1$", row("anthropic", "claude-a"))
    assert re.search(r"\b2\s+1\s+0\.0%\s+503 x1$", row("openai", "gpt-b"))
    row("bedrock", "claude-a")
    row("openai", "gpt-c")
    assert re.search(r"^TOTAL\s+18\s+13\s+84\.6%\s+503 x2, timeout x1$", out, re.M)
    assert re.search(r"^bedrock\s+claude-a\s+50\s+10\s+0\s+0\s+n/a$", out, re.M)
    assert re.search(r"^TOTAL\s.*\$0\.5300\*$", out, re.M)
    assert "28 read, 18 in range, 0 outside it, 10 bad (skipped)" in out
    assert "2026-11-25 22:00:00Z .. 2026-11-25 22:01:00Z" in out
    assert max(len(ln) for ln in lines if not ln.startswith("Files:")) <= 100


def test_cli_exit_codes(tmp_path: Path, log: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main([str(tmp_path / "nope.jsonl")]) == 2
    assert "no such log file" in capsys.readouterr().err
    assert main([str(log), "--since", "2026-11-26"]) == 0
    assert "Range: no attempts in range" in capsys.readouterr().out
    assert main([str(log), "--since", "1000d", "--until", "2026-11-25T22:00:30Z"]) == 0
    assert "15 in range, 3 outside it" in capsys.readouterr().out
    log.unlink()  # only rotated siblings left: fine
    assert main([str(log)]) == 0
    assert "anthropic" in capsys.readouterr().out
    assert main([str(log), "--no-rotated"]) == 2
    with pytest.raises(SystemExit) as exc:
        main([str(log), "--since", "last tuesday"])
    assert exc.value.code == 2
    env = {**os.environ, "HOME": str(tmp_path)}  # the default log does not exist there
    proc = subprocess.run(
        [sys.executable, "-m", "llmrouter.tools.report"], env=env, capture_output=True, timeout=30
    )
    assert proc.returncode == 2 and b"router.jsonl" in proc.stderr


def _html(tmp_path: Path, log: Path, capsys: pytest.CaptureFixture[str]) -> tuple[Path, str]:
    out = tmp_path / "out.html"
    assert main([str(log), "--html", str(out)]) == 0
    capsys.readouterr()
    return out, out.read_text(encoding="utf-8")


def test_html_self_contained(tmp_path: Path, log: Path, capsys: pytest.CaptureFixture[str]) -> None:
    evil = "<img src=x onerror=alert(1)>"
    with log.open("a") as f:  # finish the truncated line, then a hostile provider name
        f.write("\n" + json.dumps(_rec(90, "x1", evil, "m</script><script>alert(2)")) + "\n")
    _, page = _html(tmp_path, log, capsys)
    # No script at all, nothing external, and a policy that would refuse it anyway.
    assert not re.search(r"<script\b", page, re.I)
    tags = re.findall(r"<[a-z][^>]*>", page, re.I)  # escaped log text starts with &lt;
    assert not [
        t
        for t in tags
        if re.search(r"\s(src|href|xlink:href)\s*=|^<(link|iframe|object|embed|img)\b", t, re.I)
    ]
    for needle in ("http://", "https://", "cdn", "@import", "url("):
        assert needle not in page.lower(), needle
    assert (
        "Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'" in page
    )
    assert len(page) < 100_000  # was 4.8 MB with plotly.js inline
    titles = re.findall(r"<h2>([^<]+)</h2><table>", page)
    assert titles == ["Traffic", "Latency of ok attempts (ms)", "Tokens and cost",
                      "Prompt cache by provider", "Prompt cache by profile"]  # fmt: skip
    assert "503 x1, timeout x1" in page
    assert '<td class="l">anthropic</td><td class="l">claude-a</td>' in page
    assert evil not in page and "alert(2)" in page and "</script><script>alert" not in page
    assert "&lt;img src=x onerror=alert(1)&gt;" in page


def _chromium() -> str:
    chromium = CHROMIUM if os.path.exists(CHROMIUM) else shutil.which("chromium")
    if not chromium:
        pytest.fail(
            f"{CHROMIUM} not found: `make test` installs it (Debian package `chromium`); "
            "or run `apt-get install -y chromium`"
        )
    return chromium


def _render_in_chromium(page: Path, profile: Path) -> tuple[str, str]:
    """The DOM after loading `page` with no network, and chromium's log (console included)."""
    profile.mkdir()
    cmd = [
        _chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
        "--no-first-run", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", f"--user-data-dir={profile}", "--virtual-time-budget=10000",
        "--host-resolver-rules=MAP * ~NOTFOUND",  # the page must need no network
        "--enable-logging=stderr", "--v=0", "--dump-dom", page.as_uri(),
    ]  # fmt: skip
    # Own process group, so the browser and its helpers can all be killed by the group id.
    proc = subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True
    )
    try:
        dom, err = proc.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        pytest.fail("chromium did not finish rendering the report within 60 s")
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)  # leftover helpers, if any
    log = err.decode(errors="replace")
    assert proc.returncode == 0 and dom, log[-2000:]
    return dom.decode("utf-8", "replace"), log


def _sections(html: str) -> dict[str, str]:
    found = {
        m.group(1): m.start()
        for m in re.finditer(r'<section class="chart" id="chart-([a-z]+)"', html)
    }
    bounds = [*found.values(), len(html)]
    return {
        name: html[start:end] for (name, start), end in zip(found.items(), bounds[1:], strict=True)
    }


def test_html_renders_in_chromium(
    tmp_path: Path, log: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out, _ = _html(tmp_path, log, capsys)
    html, chromium_log = _render_in_chromium(out, tmp_path / "chromium-profile")
    assert "CONSOLE" not in chromium_log and "Refused to" not in chromium_log, chromium_log
    charts = _sections(html)
    assert list(charts) == ["attempts", "latency", "ttft", "total", "cost"]  # no cache saving
    # Attempts by outcome: one rect per (bucket, outcome) with its count in the tooltip; they
    # add up to every attempt in the log, and the failover layers are there.
    tips = re.findall(r"<title>\d\d:\d\d:\d\d · ([^:<]+): (\d+)</title>", charts["attempts"])
    by_label: dict[str, int] = {}
    for label, n in tips:
        by_label[label] = by_label.get(label, 0) + int(n)
    assert by_label == {"ok": 11, "ok after failover": 2, "503": 3, "timeout": 1,
                        "client_closed": 1}  # fmt: skip
    # Box plots: ttft for the two providers that streamed, total for all three.
    assert charts["latency"].count('<g class="box">') == 2 + 3
    assert "anthropic: n 10 · p5 " in charts["latency"]
    # Median lines: a path per provider with data, dots at each point.
    assert charts["ttft"].count('<g class="series">') == 2
    assert charts["total"].count('<g class="series">') == 3
    assert re.search(r'<path class="line" d="M[^"]+L', charts["total"])
    # Cumulative cost ends at each provider's priced total.
    assert re.search(r"anthropic: \$0\.02</title>", charts["cost"])
    assert re.search(r"openai: \$0\.51</title>", charts["cost"])


# -- the redesign: buckets sized to the range, gaps, outcomes, views ---------------------------


def _agg(recs: list[dict[str, Any]], **kw: Any) -> Report:
    agg = Aggregator(**kw)
    for r in recs:
        agg.add(r)
    return agg.result()


@pytest.mark.parametrize(
    ("span_s", "width"), [(30, 1), (60, 5), (3 * 3600, 300), (26 * 3600, 1800), (40 * 86400, 86400)]
)
def test_display_buckets_sized_to_the_range(span_s: int, width: int) -> None:
    recs = [_rec(t, f"r{t}", "a", "m") for t in (0, span_s / 2, span_s)]
    report = _agg(recs)
    assert report.bucket_seconds == width
    starts = [p.start for p in report.series["a"]]
    assert (starts[-1] - starts[0]).total_seconds() // width + 1 <= 60
    assert sum(p.attempts for p in report.series["a"]) == 3


def test_median_lines_break_at_gaps() -> None:
    from llmrouter.tools._reportcharts import median_chart

    # Two busy minutes an hour apart: a line joins buckets inside each, never across the gap.
    recs = [_rec(t, f"r{t}", "a", "m", total_ms=100.0 + t % 7) for t in range(0, 120, 3)]
    recs += [_rec(3600 + t, f"s{t}", "a", "m", total_ms=200.0) for t in range(0, 120, 3)]
    report = _agg(recs)
    assert report.bucket_seconds == 300  # 62 minutes in at most 60 buckets
    svg = median_chart(report, {"a": "#000"}, "total_p50", "total p50")
    path = re.search(r'<path class="line" d="([^"]+)"', svg)
    assert path is not None
    assert path.group(1).count("M") == 2  # one run per busy stretch
    assert svg.count("<circle") == len(report.series["a"])


def test_outcomes_stack_and_order(log: Path) -> None:
    report = aggregate_files(log_files(log))
    assert report.outcomes == ["ok", "ok after failover", "503", "client_closed", "timeout"]
    stacked: dict[str, int] = {}
    for pts in report.series.values():
        for p in pts:
            assert sum(p.outcomes.values()) == p.attempts
            for k, n in p.outcomes.items():
                stacked[k] = stacked.get(k, 0) + n
    assert stacked == {"ok": 11, "ok after failover": 2, "503": 3, "client_closed": 1,
                       "timeout": 1}  # fmt: skip
    assert sum(p.cost for pts in report.series.values() for p in pts) == pytest.approx(0.53)
    a_ttft, a_total = report.latency["anthropic"]
    assert a_ttft is not None and a_total is not None and a_ttft.n == 10
    assert _close(a_ttft.p50, 500) and _close(a_ttft.p95, 1000) and _close(a_total.p5, 1000)
    assert report.latency["bedrock"][0] is None  # no stream: no ttft


def _rates(provider: str, model: str, total_in: int) -> tuple[float, float, float] | None:
    # USD per million: input, cache read, cache write. "cheap" has no known price.
    return None if provider == "cheap" else (3.0, 0.3, 3.75)


def _views_dataset() -> list[dict[str, Any]]:
    kw = {"profile": "work", "user": "alice"}
    return [
        # c1: written on a, read twice on a, then a fails and b serves it (a move).
        _rec(0, "q1", "a", "m", route="default", conversation="c1", affinity="new",
             input_tokens=1000, output_tokens=10, cache_write_tokens=900, cost_usd=0.005, **kw),
        _rec(5, "q2", "a", "m", route="default", conversation="c1", affinity="bound",
             input_tokens=1100, output_tokens=10, cache_read_tokens=900, cost_usd=0.001, **kw),
        _fail(9, "q3", "a", "m", route="think", conversation="c1", affinity="bound", **kw),
        _rec(10, "q3", "b", "m", attempt=2, route="think", conversation="c1",
             affinity="rebound", input_tokens=1200, output_tokens=10, cache_write_tokens=1100,
             cost_usd=0.006, **kw),
        # c2: bob on the unpriced provider, with a cache read: counted, not compared.
        _rec(20, "q4", "cheap", "m", route="default", conversation="c2", user="bob",
             input_tokens=500, output_tokens=5, cache_read_tokens=400, cost_usd=0.0001),
    ]  # fmt: skip


def test_route_user_and_cache_views() -> None:
    v = _agg(_views_dataset(), rates=_rates).views
    assert list(v.routes) == ["default/default", "work/default", "work/think"]
    wd, wt = v.routes["work/default"], v.routes["work/think"]
    assert (wd.requests, wd.attempts, wd.served, wd.failovers) == (2, 2, 2, 0)
    assert (wt.requests, wt.attempts, wt.served, wt.failovers) == (1, 2, 1, 1)
    assert wd.cost == pytest.approx(0.006) and wd.input == 2100
    alice, bob = v.users["alice"], v.users["bob"]
    assert (alice.requests, alice.served, alice.input, alice.output) == (3, 3, 3300, 30)
    assert alice.cost == pytest.approx(0.012) and bob.requests == 1
    # Cache: a read 900 of 2100 input; no cache, those 900 pay 3.0 instead of 0.3, and the 900
    # written pay 3.0 instead of 3.75.
    a = v.cache_by_provider["a"]
    assert (a.input, a.read, a.write, a.compared, a.uncompared) == (2100, 900, 900, 2, 0)
    assert a.share == pytest.approx(900 / 2100)
    assert a.paid == pytest.approx(0.006)
    assert a.nocache == pytest.approx(0.006 + (900 * 2.7 - 900 * 0.75) / 1e6)
    cheap = v.cache_by_provider["cheap"]
    assert (cheap.read, cheap.compared, cheap.uncompared) == (400, 0, 1)
    assert v.cache_by_profile["work"].input == 3300
    assert (v.conversations, v.conversations_exact, v.moved, v.moves) == (2, True, 1, 1)
    assert v.affinity == {"bound": 2, "new": 1, "rebound": 1}
    top = v.top_conversations[0]
    assert (top.key, top.requests, top.moves, top.providers, top.input) == (
        "c1", 3, 1, ["a", "b"], 3300)  # fmt: skip


def test_a_users_cost_is_what_their_budget_counted() -> None:
    """The JSONL the router writes for a team: `user`, and `charged_usd` where a served answer
    whose usage was cut short was charged its reservation (the routes keep the real cost)."""
    kw = {"user": "alice", "route": "default"}
    v = _agg([_rec(0, "q1", "a", "m", cost_usd=0.003, charged_usd=None, **kw),
              _rec(1, "q2", "a", "m", outcome="client_closed", cost_usd=0.0001,
                   charged_usd=0.003, **kw)]).views  # fmt: skip
    assert v.users["alice"].cost == pytest.approx(0.006) and v.users["alice"].requests == 2
    assert v.routes["default/default"].cost == pytest.approx(0.0031)


def test_views_hidden_without_their_fields(log: Path) -> None:
    v = aggregate_files(log_files(log)).views
    assert not v.routes and not v.users and v.conversations == 0
    assert list(v.cache_by_provider) == ["anthropic", "bedrock", "openai"]  # cache_* are there


def test_views_text_tables(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "router.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in _views_dataset()) + "\n")
    assert main([str(path), "--config", str(tmp_path / "none.yaml")]) == 2
    assert "no such config file" in capsys.readouterr().err
    assert main([str(path)]) == 0
    out = capsys.readouterr().out
    titles = ("Routes (profile/route)", "Users", "Prompt cache by provider",
              "Prompt cache by profile", "Conversations (largest by input tokens)")  # fmt: skip
    for title in titles:
        assert f"\n{title}\n" in out, title
    assert re.search(r"^work/think\s+1\s+1\s+0\s+1\s", out, re.M)
    assert re.search(r"^alice\s+3\s+3\s+0\s+3,300\s+30\s+\$0\.0120$", out, re.M)
    assert re.search(r"^c1\s+3\s+1\s+a > b\s+3,300\s", out, re.M)
    assert "2 conversations; 1 moved provider (1 moves" in out
    assert "affinity: bound 2, new 1, rebound 1" in out
    assert max(len(ln) for ln in out.splitlines() if not ln.startswith("Files:")) <= 100


def test_conversations_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    import llmrouter.tools._reportgroups as groups

    monkeypatch.setattr(groups, "MAX_CONVERSATIONS", 1000)
    agg = Aggregator()
    for i in range(20_000):
        agg.add(_rec(i, f"r{i}", "a", "m", conversation=f"c{i}", input_tokens=i))
        if i == 9_999:
            half = agg.footprint()
    v = agg.result().views
    assert agg.footprint() < 1.2 * half
    assert v.conversations == 20_000 and not v.conversations_exact
    assert v.top_conversations[0].key == "c19999"  # the largest survive eviction


def test_closed_pipe_ends_quietly(log: Path) -> None:
    r, w = os.pipe()
    os.close(r)  # the reader is gone before the first byte: every write fails with EPIPE
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "llmrouter.report", str(log)],
            stdout=w, stderr=subprocess.PIPE, timeout=60, check=False,
        )  # fmt: skip
    finally:
        os.close(w)
    assert proc.returncode == 0 and proc.stderr == b"", proc.stderr.decode()


def test_views_html_with_config_prices(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "router.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in _views_dataset()) + "\n")
    config = tmp_path / "profiles.yaml"  # read leniently: an unset ${KEY} is no problem here
    config.write_text(
        "providers:\n  a:\n    base_url: https://a.example\n    api: anthropic\n"
        "    api_key: ${UNSET_KEY}\n"
        "    price: {input: 3, output: 15, cache_read: 0.3, cache_write: 3.75}\n"
    )
    out = tmp_path / "out.html"
    assert main([str(path), "--config", str(config), "--html", str(out)]) == 0
    text = capsys.readouterr().out
    from llmrouter.tools._svg import value_label

    saved = (900 * 2.7 - 900 * 0.75) / 1e6  # as in test_route_user_and_cache_views
    row = rf"^a\s+2,100\s+900\s+900\s+42\.9%\s+\$0\.0060\s+\${0.006 + saved:.4f}\s+\${saved:.4f}$"
    assert re.search(row, text, re.M)
    page = out.read_text()
    assert re.findall(r'<section class="chart" id="chart-([a-z]+)"', page) == [
        "attempts", "latency", "total", "cost", "cache"]  # fmt: skip
    assert f"a · no cache: {value_label(0.006 + saved, '$')}</title>" in page
    assert "<h2>Routes (profile/route)</h2><table>" in page
