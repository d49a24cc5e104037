"""Small SVG building blocks for the report's charts: scales, ticks, axes. No JavaScript.

Every string that may come from the log goes through `esc`; tooltips are SVG <title>
elements, which browsers show on hover with no script.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from html import escape

# Observable's 10-colour palette: distinct on white, and kind to colour-blind readers.
PALETTE = ("#4269d0", "#efb118", "#ff725c", "#6cc5b0", "#3ca951", "#ff8ab7", "#a463f2",
           "#97bbf5", "#9c6b4e", "#9498a0")  # fmt: skip
_TIME_STEPS = (1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600,
               43200, 86400, 172800, 604800, 1209600, 2592000)  # fmt: skip


def esc(s: object) -> str:
    return escape(str(s), quote=True)


def num(v: float) -> str:
    """A coordinate: short, and never `nan`."""
    return f"{v:.1f}".rstrip("0").rstrip(".") if math.isfinite(v) else "0"


class Linear:
    def __init__(self, lo: float, hi: float, a: float, b: float) -> None:
        self.lo, self.hi = lo, (hi if hi > lo else lo + 1)
        self.a, self.b = a, b

    def __call__(self, v: float) -> float:
        return self.a + (v - self.lo) / (self.hi - self.lo) * (self.b - self.a)

    def ticks(self, n: int = 5) -> list[float]:
        step = nice_step((self.hi - self.lo) / n)
        first = math.ceil(self.lo / step - 1e-9) * step
        out, v = [], first
        while v <= self.hi + step * 1e-9:
            out.append(round(v, 12))
            v += step
        return out


class Log:
    def __init__(self, lo: float, hi: float, a: float, b: float) -> None:
        lo = max(lo, 1e-3)
        hi = max(hi, lo * 1.01)
        self.lo, self.hi = lo, hi
        self._l0, self._l1 = math.log10(lo), math.log10(hi)
        self.a, self.b = a, b

    def __call__(self, v: float) -> float:
        lv = math.log10(max(v, self.lo))
        return self.a + (lv - self._l0) / (self._l1 - self._l0) * (self.b - self.a)

    def ticks(self) -> list[float]:
        """1-2-5 steps; only powers of ten when the range spans many decades."""
        mults = (1,) if self._l1 - self._l0 > 4 else (1, 2, 5)
        out = []
        for e in range(math.floor(self._l0), math.ceil(self._l1) + 1):
            for m in mults:
                v = m * 10.0**e
                if self.lo <= v <= self.hi:
                    out.append(v)
        return out


def nice_step(raw: float) -> float:
    if raw <= 0 or not math.isfinite(raw):
        return 1.0
    e = 10 ** math.floor(math.log10(raw))
    return next(m * e for m in (1, 2, 2.5, 5, 10) if m * e >= raw)


def time_ticks(t0: float, t1: float, n: int = 7) -> tuple[list[float], str]:
    """Tick times (epoch s) at a round step, and the strftime format that suits the step."""
    step = next((s for s in _TIME_STEPS if (t1 - t0) / s <= n), _TIME_STEPS[-1])
    fmt = "%H:%M:%S" if step < 60 else "%H:%M" if step < 86400 else "%m-%d"
    first = math.ceil(t0 / step) * step
    return [first + i * step for i in range(int((t1 - first) // step) + 1)], fmt


def clock(t: float, fmt: str = "%H:%M:%S") -> str:
    return datetime.fromtimestamp(t, UTC).strftime(fmt)


def ms_label(v: float) -> str:
    if v == 0:
        return "0"
    if v >= 10_000:
        return f"{v / 1000:.0f} s"
    if v >= 1000:
        return f"{v / 1000:.1f} s".replace(".0 s", " s")
    return f"{v:.0f} ms" if v >= 1 else f"{v:.2f} ms"


def value_label(v: float, unit: str = "") -> str:
    if unit == "$":
        if v == 0:
            return "$0"
        return f"${v:,.0f}" if v >= 100 else f"${v:,.2f}" if v >= 1 else f"${v:.3g}"
    if unit == "ms":
        return ms_label(v)
    return f"{v:,.0f}" if v == int(v) else f"{v:,.2f}"


def svg(width: int, height: int, label: str, body: list[str]) -> str:
    return (f'<svg viewBox="0 0 {width} {height}" role="img" aria-label="{esc(label)}">'
            + "".join(body) + "</svg>")  # fmt: skip


def text(x: float, y: float, s: str, anchor: str = "start", cls: str = "") -> str:
    c = f' class="{cls}"' if cls else ""
    return f'<text x="{num(x)}" y="{num(y)}" text-anchor="{anchor}"{c}>{esc(s)}</text>'


def y_axis(
    scale: Linear, x0: float, x1: float, unit: str = "", title: str = "", n: int = 5
) -> list[str]:
    """Grid lines and labels of a linear y axis, spanning x0..x1."""
    out = []
    for v in scale.ticks(n):
        y = scale(v)
        out.append(f'<line class="grid" x1="{num(x0)}" x2="{num(x1)}" y1="{num(y)}" '
                   f'y2="{num(y)}"/>')  # fmt: skip
        out.append(text(x0 - 6, y + 4, value_label(v, unit), "end", "tick"))
    if title:
        out.append(text(x0 - 6, scale.b - 10, title, "start", "axis"))
    return out


def x_time_axis(t0: float, t1: float, x: Linear, y: float, note: str) -> list[str]:
    """Time ticks along y, with `note` (zone, date, bucket width) at the right end."""
    ticks, fmt = time_ticks(t0, t1)
    out = [f'<line class="axisline" x1="{num(x.a)}" x2="{num(x.b)}" y1="{num(y)}" '
           f'y2="{num(y)}"/>']  # fmt: skip
    for t in ticks:
        out.append(f'<line class="axisline" x1="{num(x(t))}" x2="{num(x(t))}" y1="{num(y)}" '
                   f'y2="{num(y + 4)}"/>')  # fmt: skip
        out.append(text(x(t), y + 16, clock(t, fmt), "middle", "tick"))
    out.append(text(x.b, y + 30, note, "end", "axis"))
    return out


def legend(items: list[tuple[str, str, str]]) -> str:
    """An HTML legend: (colour, label, extra text) per item."""
    spans = "".join(
        f'<span><i style="background:{color}"></i>{esc(label)}'
        + (f" <small>{esc(extra)}</small>" if extra else "")
        + "</span>"
        for color, label, extra in items
    )
    return f'<div class="legend">{spans}</div>'
