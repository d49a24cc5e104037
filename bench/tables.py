"""Statistics and the one table `make bench` prints."""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any


def pct(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0..100), linear between closest ranks."""
    if not values:
        return math.nan
    s = sorted(values)
    k = (len(s) - 1) * q / 100
    lo, hi = math.floor(k), math.ceil(k)
    return s[lo] + (s[hi] - s[lo]) * (k - lo)


def med(values: Sequence[float]) -> float:
    return statistics.median(values) if values else math.nan


def spread(values: Sequence[float], digits: int = 2) -> str:
    """`median [min..max]` of per-round figures."""
    if not values:
        return "n/a"
    return f"{fmt(med(values), digits)} [{fmt(min(values), digits)}..{fmt(max(values), digits)}]"


def fmt(x: float | None, digits: int = 2) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "n/a"
    return f"{x:.{digits}f}"


@dataclass(slots=True)
class Row:
    section: str
    metric: str
    a: str  # (a) bare mitmproxy, or the reference the result is measured against
    b: str  # (b) the router
    result: str  # median [min..max] over rounds
    target: str
    ok: bool | None  # None: informational, no target

    @property
    def verdict(self) -> str:
        return "info" if self.ok is None else ("PASS" if self.ok else "MISS")

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "verdict": self.verdict}


HEAD = ("#", "measure", "(a) / ref", "(b) router", "result: median [min..max]", "target", "")


def render(rows: Sequence[Row]) -> str:
    cells = [HEAD] + [(r.section, r.metric, r.a, r.b, r.result, r.target, r.verdict) for r in rows]
    widths = [max(len(c[i]) for c in cells) for i in range(len(HEAD))]
    lines = []
    for i, c in enumerate(cells):
        lines.append("  ".join(v.ljust(w) for v, w in zip(c, widths, strict=True)).rstrip())
        if i == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def markdown(rows: Sequence[Row]) -> str:
    """The same table for docs/BENCHMARKS.md."""
    out = ["| " + " | ".join(HEAD[:-1]) + " | verdict |", "|" + "---|" * len(HEAD)]
    for r in rows:
        cells = (r.section, r.metric, r.a, r.b, r.result, r.target, r.verdict)
        out.append("| " + " | ".join(c.replace("|", "/") for c in cells) + " |")
    return "\n".join(out)
