"""The report's charts as inline SVG: attempts by outcome over time, latency distributions,
median latency over time (broken at gaps), cumulative cost, and the prompt cache's effect.

Each function returns an HTML fragment (legend + <svg>) or "" when it has nothing to show.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from llmrouter.tools._reportagg import OK_AFTER_FAILOVER, Dist, Report
from llmrouter.tools._svg import (
    PALETTE,
    Linear,
    Log,
    clock,
    esc,
    legend,
    ms_label,
    num,
    svg,
    text,
    value_label,
    x_time_axis,
    y_axis,
)

if TYPE_CHECKING:
    from llmrouter.tools._reportgroups import Cache

W, H = 960, 250
_L, _R, _T, _B = 64, 20, 26, 40  # margins of the time charts

# Outcome colours: successes green, rate limits amber, server errors red, the client's own
# departure grey; anything else falls back to the palette.
_OUTCOME_COLOURS = {
    "ok": "#3ca951", OK_AFTER_FAILOVER: "#6cc5b0", "429": "#efb118", "timeout": "#a463f2",
    "connect_error": "#9c6b4e", "inband_error": "#ff8ab7", "truncated": "#d6336c",
    "client_closed": "#9498a0",
}  # fmt: skip


def outcome_colour(label: str, i: int) -> str:
    if label in _OUTCOME_COLOURS:
        return _OUTCOME_COLOURS[label]
    if label.isdigit():
        return "#ff725c" if label.startswith("5") else "#8a5a44"  # 5xx red, other 4xx brown
    return PALETTE[i % len(PALETTE)]


def provider_colours(report: Report) -> dict[str, str]:
    names = sorted({r.provider for r in report.rows} | set(report.series))
    return {p: PALETTE[i % len(PALETTE)] for i, p in enumerate(names)}


def _span(report: Report) -> tuple[float, float, int] | None:
    starts = [p.start.timestamp() for pts in report.series.values() for p in pts]
    if not starts:
        return None
    w = report.bucket_seconds
    return min(starts), max(starts) + w, w


def _width_text(seconds: int) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds % size == 0:
            return f"{seconds // size} {unit}"
    return f"{seconds} s"


def _time_note(t0: float, w: int) -> str:
    return f"UTC, {clock(t0, '%Y-%m-%d')} · {_width_text(w)} buckets"


def attempts_chart(report: Report) -> str:
    """Attempts per bucket, stacked by outcome: failovers show as the non-ok layers."""
    span = _span(report)
    if span is None:
        return ""
    t0, t1, w = span
    buckets: dict[float, dict[str, int]] = {}
    for pts in report.series.values():
        for p in pts:
            b = buckets.setdefault(p.start.timestamp(), {})
            for label, n in p.outcomes.items():
                b[label] = b.get(label, 0) + n
    top = max(sum(b.values()) for b in buckets.values())
    x = Linear(t0, t1, _L, W - _R)
    y = Linear(0, top, H - _B, _T)
    colours = {lb: outcome_colour(lb, i) for i, lb in enumerate(report.outcomes)}
    body = y_axis(y, _L, W - _R, title="attempts")
    bar = max(x(t0 + w) - x(t0) - 1, 0.6)
    for start, counts in sorted(buckets.items()):
        base = 0
        for label in report.outcomes:
            n = counts.get(label, 0)
            if not n:
                continue
            y_hi, y_lo = y(base + n), y(base)
            tip = f"{clock(start)} · {label}: {n:,}"
            body.append(f'<rect x="{num(x(start) + 0.5)}" y="{num(y_hi)}" width="{num(bar)}" '
                        f'height="{num(y_lo - y_hi)}" fill="{colours[label]}"><title>{esc(tip)}'
                        "</title></rect>")  # fmt: skip
            base += n
    body += x_time_axis(t0, t1, x, H - _B, _time_note(t0, w))
    totals = {lb: sum(b.get(lb, 0) for b in buckets.values()) for lb in report.outcomes}
    keys = legend([(colours[lb], lb, f"{totals[lb]:,}") for lb in report.outcomes])
    return keys + svg(W, H, "attempts over time by outcome", body)


def _box_panel(title: str, rows: list[tuple[str, str, Dist]]) -> str:
    """Horizontal box plots on a log axis: whiskers p5..p95, box p25..p75, line at p50."""
    if not rows:
        return ""
    left, right, row_h, top = 150, 150, 30, 24
    height = top + row_h * len(rows) + 34
    lo = min(d.p5 for _, _, d in rows)
    hi = max(d.p95 for _, _, d in rows)
    x = Log(max(lo / 1.3, 1.0), max(hi * 1.3, 10.0), left, W - right)
    body = [text(left, 14, title, "start", "axis")]
    for v in x.ticks():
        body.append(f'<line class="grid" x1="{num(x(v))}" x2="{num(x(v))}" y1="{top}" '
                    f'y2="{height - 30}"/>')  # fmt: skip
        body.append(text(x(v), height - 14, ms_label(v), "middle", "tick"))
    for i, (name, colour, d) in enumerate(rows):
        cy = top + row_h * i + row_h / 2
        qs = zip(
            ("p5", "p25", "p50", "p75", "p95"), (d.p5, d.p25, d.p50, d.p75, d.p95), strict=True
        )
        tip = f"{name}: n {d.n:,} · " + " · ".join(f"{q} {ms_label(v)}" for q, v in qs)
        body.append(text(left - 8, cy + 4, name[:20], "end", "name"))
        body.append(f'<g class="box"><title>{esc(tip)}</title>'
                    f'<line x1="{num(x(d.p5))}" x2="{num(x(d.p95))}" y1="{num(cy)}" '
                    f'y2="{num(cy)}" stroke="{colour}"/>'
                    f'<line x1="{num(x(d.p5))}" x2="{num(x(d.p5))}" y1="{num(cy - 5)}" '
                    f'y2="{num(cy + 5)}" stroke="{colour}"/>'
                    f'<line x1="{num(x(d.p95))}" x2="{num(x(d.p95))}" y1="{num(cy - 5)}" '
                    f'y2="{num(cy + 5)}" stroke="{colour}"/>'
                    f'<rect x="{num(x(d.p25))}" y="{num(cy - 9)}" '
                    f'width="{num(max(x(d.p75) - x(d.p25), 1))}" height="18" fill="{colour}" '
                    f'fill-opacity="0.3" stroke="{colour}"/>'
                    f'<line class="median" x1="{num(x(d.p50))}" x2="{num(x(d.p50))}" '
                    f'y1="{num(cy - 9)}" y2="{num(cy + 9)}" stroke="{colour}"/></g>')  # fmt: skip
        body.append(text(W - right + 8, cy + 4, f"p50 {ms_label(d.p50)} · n {d.n:,}", "start",
                         "tick"))  # fmt: skip
    return svg(W, height, title, body)


def latency_boxes(report: Report, colours: dict[str, str]) -> str:
    ttft = [(p, colours[p], t) for p, (t, _) in report.latency.items() if t is not None]
    total = [(p, colours[p], t) for p, (_, t) in report.latency.items() if t is not None]
    return _box_panel("time to first token (ok streams)", ttft) + _box_panel(
        "total time (ok attempts)", total
    )


def median_chart(report: Report, colours: dict[str, str], metric: str, label: str) -> str:
    """p50 per bucket and provider; a line only joins adjacent buckets, never a gap."""
    span = _span(report)
    series: dict[str, list[tuple[float, float]]] = {}
    for provider, pts in report.series.items():
        vals = [(p.start.timestamp(), getattr(p, metric)) for p in pts]
        vals = [(t, v) for t, v in vals if v is not None]
        if vals:
            series[provider] = vals
    if span is None or not series:
        return ""
    t0, t1, w = span
    x = Linear(t0, t1, _L, W - _R)
    y = Linear(0, max(v for vals in series.values() for _, v in vals) * 1.08, H - _B, _T)
    body = y_axis(y, _L, W - _R, "ms", label)
    for provider, vals in series.items():
        colour, path, prev = colours[provider], [], None
        for t, v in vals:
            cx, cy = x(t + w / 2), y(v)
            path.append(("L" if prev is not None and t - prev <= w * 1.001 else "M")
                        + f"{num(cx)},{num(cy)}")  # fmt: skip
            prev = t
        d = "".join(path)
        body.append(f'<g class="series"><path class="line" d="{d}" stroke="{colour}"/>')
        for t, v in vals:
            tip = f"{provider} · {clock(t)} · p50 {ms_label(v)}"
            body.append(f'<circle cx="{num(x(t + w / 2))}" cy="{num(y(v))}" r="2.5" '
                        f'fill="{colour}"><title>{esc(tip)}</title></circle>')  # fmt: skip
        body.append("</g>")
    body += x_time_axis(t0, t1, x, H - _B, _time_note(t0, w))
    keys = legend([(colours[p], p, "") for p in series])
    return keys + svg(W, H, label, body)


def cost_chart(report: Report, colours: dict[str, str]) -> str:
    """Cumulative USD per provider: a ramp inside each bucket, flat where nothing was spent."""
    span = _span(report)
    spent = {p: [pt for pt in pts if pt.cost > 0] for p, pts in report.series.items()}
    spent = {p: pts for p, pts in spent.items() if pts}
    if span is None or not spent:
        return ""
    t0, t1, w = span
    finals = {p: sum(pt.cost for pt in pts) for p, pts in spent.items()}
    x = Linear(t0, t1, _L, W - 110)
    y = Linear(0, max(finals.values()) * 1.08, H - _B, _T)
    body = y_axis(y, _L, W - 110, "$", "cumulative USD (priced lines)")
    for provider, pts in spent.items():
        colour, cum = colours[provider], 0.0
        d = f"M{num(x(t0))},{num(y(0))}"
        for pt in pts:
            start = pt.start.timestamp()
            d += f"L{num(x(start))},{num(y(cum))}"
            cum += pt.cost
            d += f"L{num(x(start + w))},{num(y(cum))}"
        d += f"L{num(x(t1))},{num(y(cum))}"
        tip = f"{provider}: {value_label(cum, '$')}"
        body.append(f'<path class="line" d="{d}" stroke="{colour}"><title>{esc(tip)}</title>'
                    "</path>")  # fmt: skip
        body.append(text(x(t1) + 6, y(cum) + 4, value_label(cum, "$"), "start", "tick"))
    body += x_time_axis(t0, t1, x, H - _B, _time_note(t0, w))
    keys = legend([(colours[p], p, value_label(finals[p], "$")) for p in spent])
    return keys + svg(W, H, "cumulative cost per provider", body)


def cache_chart(caches: dict[str, Cache], colours: dict[str, str]) -> str:
    """Per provider: USD paid, beside what the same tokens cost with no cache hits."""
    rows = [(p, c) for p, c in caches.items() if c.compared and abs(c.nocache - c.paid) > 1e-12]
    if not rows:
        return ""
    left, right, row_h, top = 150, 190, 34, 10
    height = top + row_h * len(rows) + 30
    x = Linear(0, max(max(c.paid, c.nocache) for _, c in rows) * 1.05, left, W - right)
    body = []
    for v in x.ticks(5):
        body.append(f'<line class="grid" x1="{num(x(v))}" x2="{num(x(v))}" y1="{top}" '
                    f'y2="{height - 24}"/>')  # fmt: skip
        body.append(text(x(v), height - 8, value_label(v, "$"), "middle", "tick"))
    for i, (provider, c) in enumerate(rows):
        y0 = top + row_h * i + 4
        colour = colours.get(provider, PALETTE[0])
        body.append(text(left - 8, y0 + 17, provider[:20], "end", "name"))
        for j, (what, v, opacity) in enumerate(
            (("paid", c.paid, 1), ("no cache", c.nocache, 0.35))
        ):
            tip = f"{provider} · {what}: {value_label(v, '$')}"
            body.append(f'<rect x="{left}" y="{num(y0 + j * 13)}" width="{num(x(v) - left)}" '
                        f'height="12" fill="{colour}" fill-opacity="{opacity}">'
                        f"<title>{esc(tip)}</title></rect>")  # fmt: skip
        saved = c.nocache - c.paid
        note = f"{'saved' if saved >= 0 else 'cost'} {value_label(abs(saved), '$')}"
        body.append(text(W - right + 8, y0 + 17, f"{note} · {c.share or 0:.0%} cached", "start",
                         "tick"))  # fmt: skip
    keys = legend([("#555", "paid", ""), ("rgba(85,85,85,.35)", "same tokens, no cache", "")])
    return keys + svg(W, height, "prompt cache: paid vs no cache", body)
