"""Traffic report over the router's JSONL attempt log.

`python -m llmrouter.report [LOG ...] [--since 24h] [--until ...] [--html out.html]`

The log is streamed line by line into `Aggregator`, which is pure (plain data in, plain data
out) and keeps bounded state whatever the log size: latency percentiles come from log-bucketed
histograms, the time series is re-bucketed coarser as the range grows, and failover detection
only remembers requests whose last attempt was not final yet.
"""

from __future__ import annotations

import argparse
import json
import math
import re
import sys
from collections import OrderedDict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from llmrouter.tools._histogram import LogHistogram
from llmrouter.tools._reporttext import header_lines, render_text, tables

DEFAULT_LOG = Path("~/.mitmproxy/router.jsonl")
# Bucket widths (seconds), each a multiple of the previous so that coarsening merges buckets
# exactly; past the last one the width doubles.
_WIDTHS = (1, 5, 10, 30, 60, 300, 600, 1800, 3600, 10800, 21600, 43200, 86400, 604800)
# A non-final attempt waits this long (log time) or this many requests for the attempt that
# follows it; after that it is taken as not followed (client gone, router restarted).
_PENDING_HORIZON_S = 3600.0
_PENDING_MAX = 100_000
_MAX_LINE = 1 << 20  # bytes; attempt lines are ~1 kB
_TOKEN_FIELDS = ("input_tokens", "output_tokens", "cache_read_tokens", "cache_write_tokens")


@dataclass(frozen=True, slots=True)
class Row:
    """One table row: a provider and model, or the totals (provider "TOTAL", model "")."""

    provider: str
    model: str
    attempts: int
    served: int  # final and ok here
    first_try: int  # of served, those on attempt 1
    failovers: dict[str, int]  # label ("503", "timeout", ...) -> attempts failed over away
    ok_attempts: int
    ttft_p50: float | None
    ttft_p95: float | None
    total_p50: float | None
    total_p95: float | None
    input_tokens: int
    output_tokens: int
    cache_read_tokens: int
    cache_write_tokens: int
    cost_usd: float | None  # None when no line was priced
    unpriced: int  # lines with usage (or ok) but no cost_usd

    @property
    def first_try_share(self) -> float | None:
        return self.first_try / self.served if self.served else None

    @property
    def cost_partial(self) -> bool:
        return self.cost_usd is not None and self.unpriced > 0


@dataclass(frozen=True, slots=True)
class SeriesPoint:
    start: datetime
    ttft_p50: float | None
    total_p50: float | None
    served: int
    attempts: int


@dataclass(frozen=True, slots=True)
class Report:
    rows: list[Row]
    totals: Row
    first_ts: datetime | None
    last_ts: datetime | None
    lines: int  # non-blank lines read
    bad: int  # skipped: invalid JSON or fields
    filtered: int  # valid but outside --since/--until
    since: datetime | None
    until: datetime | None
    bucket_seconds: int
    series: dict[str, list[SeriesPoint]]  # provider -> points in time order


class _Stats:
    """Accumulators of one provider/model (table row) or one provider and time bucket."""

    __slots__ = ("attempts", "cost", "failovers", "first_try", "priced", "served", "tokens",
                 "total", "ttft", "unpriced")  # fmt: skip

    def __init__(self, precision: float = 0.01) -> None:
        self.attempts = self.served = self.first_try = self.priced = self.unpriced = 0
        self.failovers: dict[str, int] = {}
        self.ttft, self.total = LogHistogram(precision), LogHistogram(precision)
        self.tokens = [0, 0, 0, 0]
        self.cost = 0.0

    def merge(self, o: _Stats) -> None:
        self.attempts += o.attempts
        self.served += o.served
        self.first_try += o.first_try
        self.priced += o.priced
        self.unpriced += o.unpriced
        for k, n in o.failovers.items():
            self.failovers[k] = self.failovers.get(k, 0) + n
        self.ttft.merge(o.ttft)
        self.total.merge(o.total)
        self.tokens = [a + b for a, b in zip(self.tokens, o.tokens, strict=True)]
        self.cost += o.cost

    @property
    def size(self) -> int:
        return 1 + len(self.failovers) + self.ttft.bucket_count + self.total.bucket_count

    def row(self, provider: str, model: str) -> Row:
        q, fo = (0.5, 0.95), sorted(self.failovers.items(), key=lambda kv: (-kv[1], kv[0]))
        latency = [h.quantile(x) for h in (self.ttft, self.total) for x in q]
        cost = self.cost if self.priced else None
        return Row(provider, model, self.attempts, self.served, self.first_try, dict(fo),
                   self.total.count, *latency, *self.tokens, cost, self.unpriced)  # fmt: skip


def _is_int(v: object) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _opt(obj: dict[str, Any], key: str, kind: type) -> Any:
    """A field that may be null; a wrong type or a negative/non-finite number raises."""
    v = obj.get(key)
    if v is None or (kind is str and isinstance(v, str)):
        return v
    if kind is int and _is_int(v) and v >= 0:
        return v
    if kind is float and (_is_int(v) or isinstance(v, float)) and 0 <= v < math.inf:
        return float(v)
    raise ValueError(key)


def _failover_label(outcome: str, status: int | None) -> str:
    return str(status) if outcome == "http_error" and status is not None else outcome


class Aggregator:
    """Folds attempt-log objects into per provider/model statistics. Pure: no I/O.

    Lines outside [since, until) are counted as filtered, but still let an earlier in-range
    attempt learn that it was followed by another one (a failover).
    """

    def __init__(
        self, since: datetime | None = None, until: datetime | None = None, max_points: int = 500
    ) -> None:
        self.since, self.until, self.max_points = since, until, max_points
        self.lines = self.bad = self.filtered = 0
        self._cells: dict[tuple[str, str], _Stats] = {}
        self._first: datetime | None = None
        self._last: datetime | None = None
        self._width_i = 0  # index into the width ladder (past its end: doublings)
        self._series: dict[str, dict[int, _Stats]] = {}  # provider -> time bucket -> stats
        self._kspan: tuple[int, int] | None = None  # first and last time bucket seen
        # request_id -> (attempt, cell key, failover label, epoch) of its last non-final attempt
        self._pending: OrderedDict[str, tuple[int, tuple[str, str], str, float]] = OrderedDict()
        self._newest = -math.inf

    @property
    def bucket_seconds(self) -> int:
        i, last = self._width_i, len(_WIDTHS) - 1
        return _WIDTHS[i] if i <= last else _WIDTHS[last] * 2 ** (i - last)

    def add_line(self, line: str | bytes) -> None:
        """One raw log line; blank lines are ignored, undecodable ones counted as bad."""
        if not line.strip():
            return
        try:
            obj = json.loads(line)
        except (ValueError, RecursionError):  # ValueError includes UnicodeDecodeError
            self.lines += 1
            self.bad += 1
            return
        self.add(obj)

    def add(self, obj: object) -> None:
        """One decoded log object; counted as bad when a field the report uses is invalid."""
        self.lines += 1
        try:
            if not isinstance(obj, dict):
                raise ValueError("not an object")
            rid, attempt, final = obj.get("request_id"), obj.get("attempt"), obj.get("final")
            outcome, status, ts = obj.get("outcome"), obj.get("status"), obj.get("ts")
            if not (isinstance(rid, str) or _is_int(rid)) or not _is_int(attempt) or attempt < 1:
                raise ValueError("request_id/attempt")
            if not isinstance(final, bool) or not isinstance(outcome, str) or not outcome:
                raise ValueError("final/outcome")
            if (status is not None and not _is_int(status)) or not isinstance(ts, str):
                raise ValueError("status/ts")
            when = datetime.fromisoformat(ts)
            when = when if when.tzinfo else when.replace(tzinfo=UTC)
            epoch = when.timestamp()
            if not 0 <= epoch < 7.3e9:  # 1970..2201: anything else is garbage, not history
                raise ValueError("ts out of range")
            provider = _opt(obj, "provider", str) or "(none)"
            model = _opt(obj, "model", str) or _opt(obj, "requested_model", str) or "-"
            ttft, total = _opt(obj, "ttft_ms", float), _opt(obj, "total_ms", float)
            tokens = [_opt(obj, k, int) for k in _TOKEN_FIELDS]
            cost = _opt(obj, "cost_usd", float)
        except (ValueError, OverflowError):
            self.bad += 1
            return
        key = (provider, model)
        in_range = (self.since is None or when >= self.since) and (
            self.until is None or when < self.until
        )
        self._track_failover(str(rid), attempt, epoch)
        if not in_range:
            self.filtered += 1
            return
        if self._first is None or when < self._first:
            self._first = when
        if self._last is None or when > self._last:
            self._last = when
        cell = self._cells.get(key) or self._cells.setdefault(key, _Stats())
        if not final:
            label = _failover_label(outcome, status)
            self._pending[str(rid)] = (attempt, key, label, epoch)
        ok = outcome == "ok"
        for s in (cell, self._point(provider, epoch)):
            s.attempts += 1
            if ok:
                s.served += final
                s.first_try += final and attempt == 1
                if ttft is not None:
                    s.ttft.add(ttft)
                if total is not None:
                    s.total.add(total)
            for i, n in enumerate(tokens):
                s.tokens[i] += n or 0
            if cost is not None:
                s.cost += cost
                s.priced += 1
            elif ok or any(tokens):  # a failure without usage had nothing to price
                s.unpriced += 1

    def _track_failover(self, rid: str, attempt: int, epoch: float) -> None:
        # Attempts of one request are sequential and each line is written when its attempt
        # ends, so a later attempt of the same request shows up after the one it replaced.
        prev = self._pending.pop(rid, None)
        if prev is not None and attempt > prev[0]:
            fo = self._cells[prev[1]].failovers
            fo[prev[2]] = fo.get(prev[2], 0) + 1
        self._newest = max(self._newest, epoch)
        horizon = self._newest - _PENDING_HORIZON_S
        while self._pending:  # drop those never followed (client gone, router restarted)
            oldest = next(iter(self._pending.values()))
            if len(self._pending) < _PENDING_MAX and oldest[3] >= horizon:
                break
            self._pending.popitem(last=False)

    def _point(self, provider: str, epoch: float) -> _Stats:
        k = int(epoch // self.bucket_seconds)
        lo, hi = self._kspan or (k, k)
        self._kspan = (min(lo, k), max(hi, k))
        while self._kspan[1] - self._kspan[0] >= self.max_points:
            self._coarsen()
            k = int(epoch // self.bucket_seconds)
        points = self._series.setdefault(provider, {})
        return points.get(k) or points.setdefault(k, _Stats(0.05))  # coarse: many of these

    def _coarsen(self) -> None:
        """Step to the next bucket width, merging buckets (exact: widths divide each other)."""
        old = self.bucket_seconds
        self._width_i += 1
        new = self.bucket_seconds
        for provider, points in self._series.items():
            merged: dict[int, _Stats] = {}
            for k, p in points.items():
                if (nk := k * old // new) in merged:
                    merged[nk].merge(p)
                else:
                    merged[nk] = p
            self._series[provider] = merged
        assert self._kspan is not None
        self._kspan = (self._kspan[0] * old // new, self._kspan[1] * old // new)

    def footprint(self) -> int:
        """Entries retained (stats, histogram buckets, pending requests): to test the bound."""
        points = (p for ps in self._series.values() for p in ps.values())
        return len(self._pending) + sum(s.size for s in (*self._cells.values(), *points))

    def result(self) -> Report:
        totals, rows = _Stats(), []
        for (provider, model), cell in sorted(self._cells.items()):
            rows.append(cell.row(provider, model))
            totals.merge(cell)
        width = self.bucket_seconds
        series = {
            provider: [SeriesPoint(datetime.fromtimestamp(k * width, UTC), p.ttft.quantile(0.5),
                                   p.total.quantile(0.5), p.served, p.attempts)
                       for k, p in sorted(points.items())]
            for provider, points in sorted(self._series.items())
        }  # fmt: skip
        return Report(rows, totals.row("TOTAL", ""), self._first, self._last, self.lines,
                      self.bad, self.filtered, self.since, self.until, width, series)  # fmt: skip


# --- I/O ------------------------------------------------------------------------------------


def log_files(log: Path, rotated: bool = True) -> list[Path]:
    """The files of one log, oldest first: LOG.N ... LOG.1, then LOG (those that exist)."""
    files: list[tuple[int, Path]] = []
    if rotated and log.parent.is_dir():
        pattern = re.compile(re.escape(log.name) + r"\.(\d+)")
        for child in log.parent.iterdir():
            m = pattern.fullmatch(child.name)
            if m and child.is_file():
                files.append((int(m.group(1)), child))
    ordered = [p for _, p in sorted(files, reverse=True)]
    if log.is_file():
        ordered.append(log)
    return ordered


def iter_lines(paths: Iterable[Path]) -> Iterator[bytes]:
    """Raw lines of the files in order, one at a time (never a whole file in memory)."""
    for path in paths:
        with path.open("rb") as f:
            while line := f.readline(_MAX_LINE):
                if len(line) == _MAX_LINE and not line.endswith(b"\n"):
                    # A runaway line (corruption, no newlines) is cut: its head fails to parse
                    # and counts as one bad line; the rest is skipped, never held in memory.
                    tail = line
                    while len(tail) == _MAX_LINE and not tail.endswith(b"\n"):
                        tail = f.readline(_MAX_LINE)
                yield line


def aggregate_files(
    paths: Iterable[Path], since: datetime | None = None, until: datetime | None = None
) -> Report:
    agg = Aggregator(since, until)
    for line in iter_lines(paths):
        agg.add_line(line)
    return agg.result()


_DURATION = re.compile(r"(\d+(?:\.\d+)?)\s*([smhdw])")
_UNIT_S = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_time(text: str, now: datetime) -> datetime:
    """`30m`/`24h`/`7d`/`90s` before `now`, or an ISO 8601 date/datetime (naive = UTC)."""
    text = text.strip()
    m = _DURATION.fullmatch(text)
    if m:
        return now - timedelta(seconds=float(m.group(1)) * _UNIT_S[m.group(2)])
    try:
        ts = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"not a duration (30m, 24h, 7d) or ISO 8601 time: {text!r}") from None
    return ts if ts.tzinfo else ts.replace(tzinfo=UTC)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m llmrouter.report",
        description="Per provider/model traffic report from the router's JSONL attempt log.",
    )
    parser.add_argument("logs", nargs="*", metavar="LOG", help=f"default: {DEFAULT_LOG}")
    parser.add_argument("--since", help="e.g. 30m, 24h, 7d, or an ISO 8601 date/datetime")
    parser.add_argument("--until", help="same forms as --since (exclusive)")
    parser.add_argument("--html", metavar="OUT", help="also write a self-contained HTML page")
    parser.add_argument(
        "--no-rotated", action="store_true", help="do not read the rotated LOG.1 ... LOG.N"
    )
    args = parser.parse_args(argv)
    now = datetime.now(UTC)
    try:
        since = parse_time(args.since, now) if args.since else None
        until = parse_time(args.until, now) if args.until else None
    except ValueError as e:
        parser.error(str(e))  # exits 2
    files: list[Path] = []
    for log in args.logs or [DEFAULT_LOG]:
        path = Path(log).expanduser()
        found = log_files(path, rotated=not args.no_rotated)
        if not found:
            print(f"{parser.prog}: error: no such log file: {path}", file=sys.stderr)
            return 2
        files.extend(f for f in found if f not in files)
    try:
        report = aggregate_files(files, since, until)
    except OSError as e:
        print(f"{parser.prog}: error: {e}", file=sys.stderr)
        return 2
    sources = [str(f) for f in files]
    sys.stdout.write(render_text(report, sources))
    if args.html:
        from llmrouter.tools._reporthtml import render_html  # plotly only loads for --html

        try:
            Path(args.html).write_text(
                render_html(report, tables(report, compact=False), header_lines(report, sources)),
                encoding="utf-8",
            )
        except OSError as e:
            print(f"{parser.prog}: error: {e}", file=sys.stderr)
            return 2
        print(f"wrote {args.html}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
