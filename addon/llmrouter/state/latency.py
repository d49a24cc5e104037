"""Latency learned from the router's own attempts, per provider and model.

Streamed requests are ranked by time to first token; non-streamed ones by total time per output
token, so a long answer does not make a provider look slow. Each figure is the median of a
window of recent samples: robust to one-off spikes, and it follows a provider that got slower
within half a window. Pure: time is passed in (Unix seconds), no I/O, no mitmproxy imports.
"""

from __future__ import annotations

from collections import OrderedDict, deque
from dataclasses import dataclass, field
from statistics import median

WINDOW = 20  # samples kept per provider, model and kind
# Series kept in all (least recently used go first): model names are the client's choice, so
# without a bound a client could grow this table with every request.
MAX_SERIES = 2048
STALE_AFTER = 300.0  # no sample for 5 min: cold again, so explored: a recovery is noticed
# A failure records a sample this slow (or 4x the current median), so a provider that times
# out never looks fast.
_PENALTY_FLOOR = {True: 30_000.0, False: 1_000.0}  # ttft ms | ms per output token


@dataclass(frozen=True, slots=True)
class Figures:
    """What router.status reports of one series: the measured median apart from the failure
    penalties, which rank a provider but are not latency anyone saw."""

    ranked_p50: float | None  # what least-latency ranks by: measured and penalty samples
    measured_p50: float | None  # successful attempts only; None when the window has none
    measured: int  # measured samples in the window
    penalties: int  # penalty samples in the window


@dataclass(slots=True)
class Series:
    samples: deque[float] = field(default_factory=lambda: deque(maxlen=WINDOW))
    penalty: deque[bool] = field(default_factory=lambda: deque(maxlen=WINDOW))  # per sample
    count: int = 0  # every sample ever recorded, for the reason text
    last: float = 0.0  # time of the latest sample
    p50: float | None = None  # cached: selection reads it on every request

    def add(self, value: float, now: float, penalty: bool = False) -> None:
        self.samples.append(value)
        self.penalty.append(penalty)
        self.count += 1
        self.last = max(self.last, now)
        self.p50 = median(self.samples)

    def warm(self, now: float, min_samples: int) -> bool:
        return len(self.samples) >= min_samples and now - self.last <= STALE_AFTER

    def figures(self) -> Figures:
        measured = [v for v, pen in zip(self.samples, self.penalty, strict=True) if not pen]
        return Figures(self.p50, median(measured) if measured else None, len(measured),
                       len(self.samples) - len(measured))  # fmt: skip


class LatencyBook:
    """Per (provider key, model, streamed?) latency series, shared by every profile; at most
    `max_series` of them, the least recently used dropped first."""

    def __init__(self, max_series: int = MAX_SERIES) -> None:
        self._series: OrderedDict[tuple[str, str | None, bool], Series] = OrderedDict()
        self._max = max_series

    def get(self, key: str, model: str | None, stream: bool) -> Series | None:
        s = self._series.get((key, model, stream))
        if s is not None:
            self._series.move_to_end((key, model, stream))
        return s

    def _series_for(self, key: str, model: str | None, stream: bool) -> Series:
        k = (key, model, stream)
        s = self._series.get(k)
        if s is None:
            s = self._series[k] = Series()
            if len(self._series) > self._max:
                self._series.popitem(last=False)
        else:
            self._series.move_to_end(k)
        return s

    def __len__(self) -> int:
        return len(self._series)

    def record_ok(
        self,
        key: str,
        model: str | None,
        stream: bool,
        now: float,
        *,
        ttft_ms: float | None = None,
        total_ms: float | None = None,
        output_tokens: int | None = None,
    ) -> None:
        """A successful attempt: its ttft (streams) or total ms per output token (others)."""
        if stream:
            if ttft_ms is not None:
                self._series_for(key, model, True).add(ttft_ms, now)
        elif total_ms is not None and output_tokens:
            self._series_for(key, model, False).add(total_ms / output_tokens, now)

    def record_failure(self, key: str, model: str | None, stream: bool, now: float) -> None:
        s = self._series_for(key, model, stream)
        s.add(max(_PENALTY_FLOOR[stream], 4 * (s.p50 or 0.0)), now, penalty=True)

    def retain(self, keys: set[str]) -> None:
        for k in [k for k in self._series if k[0] not in keys]:
            del self._series[k]

    def count(self, key: str) -> int:
        """Series kept for one provider."""
        return sum(1 for k in self._series if k[0] == key)

    def summary(self, key: str, limit: int | None = None) -> dict[str, Figures]:
        """For router.status: the figures of each model and kind (`m ttft`, `m ms/tok`), the
        most recently sampled `limit` of them."""
        mine = [(k, s) for k, s in self._series.items() if k[0] == key]
        if limit is not None and len(mine) > limit:
            mine = sorted(mine, key=lambda ks: ks[1].last, reverse=True)[:limit]
        out = {}
        for (_, model, stream), s in mine:
            out[f"{model or '-'} {'ttft' if stream else 'ms/tok'}"] = s.figures()
        return out
