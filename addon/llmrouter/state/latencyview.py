"""least-latency's view: this instance's LatencyBook plus the windows other instances publish.

Each instance keeps its own window of samples (latency.py) and publishes it whole every few
seconds under its own key; nobody read-modify-writes a shared blob. The merged figure is the
median of the union of the windows, so every instance ranks on what the whole cluster saw.
Pure: no I/O; times are Unix seconds, as in latency.py.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from statistics import median
from typing import Any

from llmrouter.state.latency import STALE_AFTER, Figures, LatencyBook, Series

SeriesKey = tuple[str, str | None, bool]


@dataclass(frozen=True, slots=True)
class MergedSeries:
    """What selection reads from a series (p50, count, warm), over several instances."""

    p50: float | None
    count: int
    last: float
    n: int  # samples in the merged windows

    def warm(self, now: float, min_samples: int) -> bool:
        return self.n >= min_samples and now - self.last <= STALE_AFTER


class LatencyView:
    def __init__(self, book: LatencyBook | None = None) -> None:
        self.book = book or LatencyBook()
        self._touched: set[SeriesKey] = set()  # series this instance has samples of
        self._remote: dict[SeriesKey, list[tuple[list[float], float, int]]] = {}
        self._cache: dict[SeriesKey, MergedSeries] = {}

    def record_ok(self, key: str, model: str | None, stream: bool, now: float, **kw: Any) -> None:
        self.book.record_ok(key, model, stream, now, **kw)
        self._touch((key, model, stream))

    def record_failure(self, key: str, model: str | None, stream: bool, now: float) -> None:
        self.book.record_failure(key, model, stream, now)
        self._touch((key, model, stream))

    def _touch(self, k: SeriesKey) -> None:
        self._touched.add(k)
        self._cache.pop(k, None)

    def get(self, key: str, model: str | None, stream: bool) -> Series | MergedSeries | None:
        k = (key, model, stream)
        local = self.book.get(key, model, stream)
        remote = self._remote.get(k)
        if not remote:
            return local
        merged = self._cache.get(k)
        if merged is None:
            samples = list(local.samples) if local else []
            count, last = (local.count, local.last) if local else (0, 0.0)
            for values, r_last, r_count in remote:
                samples += values
                count += r_count
                last = max(last, r_last)
            p50 = median(samples) if samples else None
            merged = self._cache[k] = MergedSeries(p50, count, last, len(samples))
        return merged

    def summary(self, key: str, limit: int | None = None) -> dict[str, Figures]:
        """router.status: this instance's own figures (LatencyBook.summary)."""
        return self.book.summary(key, limit)

    def count(self, key: str) -> int:
        return self.book.count(key)

    def retain(self, keys: set[str]) -> None:
        self.book.retain(keys)
        self._touched = {k for k in self._touched if k[0] in keys}
        self._remote = {k: v for k, v in self._remote.items() if k[0] in keys}
        self._cache.clear()

    def blob(self) -> str | None:
        """This instance's windows, for the others."""
        out = []
        for key, model, stream in sorted(self._touched, key=repr):
            s = self.book.get(key, model, stream)
            if s is not None and s.samples:
                out.append([key, model, stream, list(s.samples), s.last, s.count])
        return json.dumps({"v": 1, "series": out}, separators=(",", ":")) if out else None

    def remote(self, blobs: dict[str, Any]) -> None:
        """The other instances' latest windows (instance id -> decoded blob)."""
        merged: dict[SeriesKey, list[tuple[list[float], float, int]]] = {}
        for blob in blobs.values():
            try:
                for key, model, stream, values, last, count in blob["series"]:
                    k = (str(key), model if model is None else str(model), bool(stream))
                    vals = [float(v) for v in values]
                    merged.setdefault(k, []).append((vals, float(last), int(count)))
            except (KeyError, TypeError, ValueError):
                continue  # another version's blob: ignored, not fatal
        self._remote = merged
        self._cache.clear()
