"""The report's aggregation: attempt-log objects folded into bounded statistics. Pure: no I/O.

Latency percentiles come from log-bucketed histograms; the time series is re-bucketed coarser as
the range grows (and once more, for display, to a width sized to the range); failover detection
only remembers requests whose last attempt was not final yet.
"""

from __future__ import annotations

import json
import math
from collections import OrderedDict
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from llmrouter.tools._histogram import LogHistogram
from llmrouter.tools._reportgroups import CacheRates, GroupViews, Line, Views

# Bucket widths (seconds), each a multiple of the previous so that coarsening merges buckets
# exactly; past the last one the width doubles.
WIDTHS = (1, 5, 10, 30, 60, 300, 600, 1800, 3600, 10800, 21600, 43200, 86400, 604800)
# A non-final attempt waits this long (log time) or this many requests for the attempt that
# follows it; after that it is taken as not followed (client gone, router restarted).
_PENDING_HORIZON_S = 3600.0
_PENDING_MAX = 100_000
_TOKEN_FIELDS = ("input_tokens", "output_tokens", "cache_read_tokens", "cache_write_tokens")
DISPLAY_POINTS = 60  # the charts' time axis: at most this many buckets over the range
OK_AFTER_FAILOVER = "ok after failover"
_QUANTILES = (0.05, 0.25, 0.5, 0.75, 0.95)


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
class Dist:
    """A latency distribution: n values and their p5, p25, p50, p75, p95 (ms)."""

    n: int
    p5: float
    p25: float
    p50: float
    p75: float
    p95: float


@dataclass(frozen=True, slots=True)
class SeriesPoint:
    start: datetime
    ttft_p50: float | None
    total_p50: float | None
    served: int
    attempts: int
    outcomes: dict[str, int]  # outcome label -> attempts ("ok", "ok after failover", "503", ...)
    cost: float  # USD of priced lines in this bucket


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
    bucket_seconds: int  # of `series`: sized to the range (at most DISPLAY_POINTS buckets)
    series: dict[str, list[SeriesPoint]]  # provider -> non-empty buckets in time order
    latency: dict[str, tuple[Dist | None, Dist | None]]  # provider -> (ttft, total) of ok ones
    outcomes: list[str]  # outcome labels seen, ok first, then by count
    views: Views


class _Stats:
    """Accumulators of one provider/model (table row) or one provider and time bucket."""

    __slots__ = ("attempts", "cost", "failovers", "first_try", "outcomes", "priced", "served",
                 "tokens", "total", "ttft", "unpriced")  # fmt: skip

    def __init__(self, precision: float = 0.01) -> None:
        self.attempts = self.served = self.first_try = self.priced = self.unpriced = 0
        self.failovers: dict[str, int] = {}
        self.outcomes: dict[str, int] = {}  # time buckets only
        self.ttft, self.total = LogHistogram(precision), LogHistogram(precision)
        self.tokens = [0, 0, 0, 0]
        self.cost = 0.0

    def merge(self, o: _Stats) -> None:
        self.attempts += o.attempts
        self.served += o.served
        self.first_try += o.first_try
        self.priced += o.priced
        self.unpriced += o.unpriced
        for mine, theirs in ((self.failovers, o.failovers), (self.outcomes, o.outcomes)):
            for k, n in theirs.items():
                mine[k] = mine.get(k, 0) + n
        self.ttft.merge(o.ttft)
        self.total.merge(o.total)
        self.tokens = [a + b for a, b in zip(self.tokens, o.tokens, strict=True)]
        self.cost += o.cost

    @property
    def size(self) -> int:
        extra = len(self.failovers) + len(self.outcomes)
        return 1 + extra + self.ttft.bucket_count + self.total.bucket_count

    def row(self, provider: str, model: str) -> Row:
        q, fo = (0.5, 0.95), sorted(self.failovers.items(), key=lambda kv: (-kv[1], kv[0]))
        latency = [h.quantile(x) for h in (self.ttft, self.total) for x in q]
        cost = self.cost if self.priced else None
        return Row(provider, model, self.attempts, self.served, self.first_try, dict(fo),
                   self.total.count, *latency, *self.tokens, cost, self.unpriced)  # fmt: skip


def _dist(h: LogHistogram) -> Dist | None:
    if not h.count:
        return None
    qs = [h.quantile(q) or 0.0 for q in _QUANTILES]
    return Dist(h.count, *qs)


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


def failover_label(outcome: str, status: int | None) -> str:
    return str(status) if outcome == "http_error" and status is not None else outcome


def width_at(i: int) -> int:
    """The i-th bucket width of the ladder (past its end: doublings of the last one)."""
    last = len(WIDTHS) - 1
    return WIDTHS[i] if i <= last else WIDTHS[last] * 2 ** (i - last)


class Aggregator:
    """Folds attempt-log objects into per provider/model statistics. Pure: no I/O.

    Lines outside [since, until) are counted as filtered, but still let an earlier in-range
    attempt learn that it was followed by another one (a failover). `rates` prices cached
    tokens for the cache view (what the same tokens would have cost with no cache hits).
    """

    def __init__(
        self,
        since: datetime | None = None,
        until: datetime | None = None,
        max_points: int = 500,
        rates: CacheRates | None = None,
    ) -> None:
        self.since, self.until, self.max_points = since, until, max_points
        self.lines = self.bad = self.filtered = 0
        self._cells: dict[tuple[str, str], _Stats] = {}
        self._first: datetime | None = None
        self._last: datetime | None = None
        self._width_i = 0  # index into the width ladder
        self._series: dict[str, dict[int, _Stats]] = {}  # provider -> time bucket -> stats
        self._kspan: tuple[int, int] | None = None  # first and last time bucket seen
        # request_id -> (attempt, cell key, failover label, epoch) of its last non-final attempt
        self._pending: OrderedDict[str, tuple[int, tuple[str, str], str, float]] = OrderedDict()
        self._newest = -math.inf
        self._views = GroupViews(rates)

    @property
    def bucket_seconds(self) -> int:
        return width_at(self._width_i)

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
            ok = outcome == "ok"
            line = Line(_opt(obj, "profile", str) or "(none)", provider, model, attempt, final,
                        ok, total, *tokens, cost, _opt(obj, "route", str), _opt(obj, "user", str),
                        _opt(obj, "conversation", str), _opt(obj, "affinity", str),
                        _opt(obj, "charged_usd", float))  # fmt: skip
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
        label = failover_label(outcome, status)
        if not final:
            self._pending[str(rid)] = (attempt, key, label, epoch)
        point = self._point(provider, epoch)
        shown = (OK_AFTER_FAILOVER if attempt > 1 else "ok") if ok else label
        point.outcomes[shown] = point.outcomes.get(shown, 0) + 1
        for s in (cell, point):
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
        self._views.add(line)

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
        self._series = _rebucket(self._series, old, self.bucket_seconds)
        assert self._kspan is not None
        new = self.bucket_seconds
        self._kspan = (self._kspan[0] * old // new, self._kspan[1] * old // new)

    def footprint(self) -> int:
        """Entries retained (stats, histogram buckets, pending requests): to test the bound."""
        points = (p for ps in self._series.values() for p in ps.values())
        cells = sum(s.size for s in (*self._cells.values(), *points))
        return len(self._pending) + cells + self._views.size

    def _display_width(self, target: int) -> int:
        """The narrowest ladder width that shows the whole range in at most `target` buckets."""
        i, width = self._width_i, self.bucket_seconds
        if self._kspan is None:
            return width
        lo, hi = (k * width for k in self._kspan)
        while hi // width_at(i) - lo // width_at(i) + 1 > target:
            i += 1
        return width_at(i)

    def result(self, display_points: int = DISPLAY_POINTS) -> Report:
        totals, rows = _Stats(), []
        per_provider: dict[str, _Stats] = {}
        for (provider, model), cell in sorted(self._cells.items()):
            rows.append(cell.row(provider, model))
            totals.merge(cell)
            per_provider.setdefault(provider, _Stats()).merge(cell)
        width = self._display_width(display_points)
        shown = _rebucket(self._series, self.bucket_seconds, width, copy=True)
        series = {
            provider: [SeriesPoint(datetime.fromtimestamp(k * width, UTC), p.ttft.quantile(0.5),
                                   p.total.quantile(0.5), p.served, p.attempts,
                                   dict(p.outcomes), p.cost)
                       for k, p in sorted(points.items())]
            for provider, points in sorted(shown.items())
        }  # fmt: skip
        counts: dict[str, int] = {}
        for points in shown.values():
            for p in points.values():
                for label, n in p.outcomes.items():
                    counts[label] = counts.get(label, 0) + n
        first = [x for x in ("ok", OK_AFTER_FAILOVER) if x in counts]
        rest = sorted((x for x in counts if x not in first), key=lambda x: (-counts[x], x))
        latency = {p: (_dist(s.ttft), _dist(s.total)) for p, s in per_provider.items()}
        return Report(rows, totals.row("TOTAL", ""), self._first, self._last, self.lines,
                      self.bad, self.filtered, self.since, self.until, width, series, latency,
                      first + rest, self._views.result())  # fmt: skip


def _rebucket(
    series: dict[str, dict[int, _Stats]], old: int, new: int, copy: bool = False
) -> dict[str, dict[int, _Stats]]:
    """Buckets of width `old` merged into buckets of width `new` (a multiple of it)."""
    out: dict[str, dict[int, _Stats]] = {}
    for provider, points in series.items():
        merged: dict[int, _Stats] = {}
        for k, p in points.items():
            nk = k * old // new
            if nk in merged:
                merged[nk].merge(p)
            elif copy:
                merged[nk] = _Stats(0.05)
                merged[nk].merge(p)
            else:
                merged[nk] = p
        out[provider] = merged
    return out
