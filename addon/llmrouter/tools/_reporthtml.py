"""HTML page of the traffic report: the report's tables plus plotly charts, in one file.

The page must open with no network: plotly.js is embedded inline once (in the first chart)
and nothing references an external URL. Every log-derived string is escaped, including trace
names and bar labels, which plotly would otherwise read as pseudo-HTML (<b>, <a href>, ...).
"""

from __future__ import annotations

from html import escape
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import plotly.graph_objects as go

    from llmrouter.tools._reporttext import Table
    from llmrouter.tools.report import Report

_CSS = """
body { font: 14px/1.4 system-ui, sans-serif; margin: 1.5em auto; max-width: 1200px;
       padding: 0 1em; color: #222; }
h1 { font-size: 1.5em; } h2 { font-size: 1.15em; margin-top: 1.6em; }
table { border-collapse: collapse; margin: .4em 0; }
th, td { padding: .25em .7em; border-bottom: 1px solid #ddd; white-space: nowrap; }
th { background: #f4f4f4; text-align: left; }
td.r, th.r { text-align: right; font-variant-numeric: tabular-nums; }
tr.total td { font-weight: 600; border-top: 2px solid #999; }
.meta { color: #555; } .note { color: #777; font-size: .9em; margin: 0; }
.chart { height: 420px; }
"""


def _table_html(t: Table) -> str:
    def cells(values: list[str], tag: str) -> str:
        return "".join(
            f'<{tag} class="{"r" if a == "r" else "l"}">{escape(v)}</{tag}>'
            for v, a in zip(values, t.align, strict=True)
        )

    body = "".join(f"<tr>{cells(r, 'td')}</tr>" for r in t.rows)
    notes = "".join(f'<p class="note">{escape(n)}</p>' for n in t.notes)
    return (
        f"<h2>{escape(t.title)}</h2><table><thead><tr>{cells(t.headers, 'th')}</tr></thead>"
        f'<tbody>{body}<tr class="total">{cells(t.total, "td")}</tr></tbody></table>{notes}'
    )


def _width(seconds: int) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds % size == 0:
            return f"{seconds // size} {unit}"
    return f"{seconds} s"


def _figures(report: Report) -> list[tuple[str, str, go.Figure]]:
    """(div id, title, figure) for each chart."""
    import plotly.graph_objects as go
    from plotly.colors import qualitative

    palette = qualitative.Plotly
    providers = sorted({r.provider for r in report.rows} | set(report.series))
    color = {p: palette[i % len(palette)] for i, p in enumerate(providers)}
    width = report.bucket_seconds

    def over_time(metric: str, y_title: str) -> go.Figure:
        fig = go.Figure()
        for provider, points in report.series.items():
            pts = [p for p in points if getattr(p, metric) is not None]
            if not pts:  # e.g. no streams: no ttft
                continue
            fig.add_trace(
                go.Scatter(
                    x=[p.start.strftime("%Y-%m-%d %H:%M:%S") for p in pts],
                    y=[getattr(p, metric) for p in pts],
                    name=escape(provider, quote=False),
                    mode="lines+markers",
                    line={"color": color[provider]},
                )
            )
        fig.update_layout(yaxis_title=y_title, xaxis_title=f"UTC, {_width(width)} buckets")
        return fig

    costs: dict[str, float] = {}
    partial: set[str] = set()
    for r in report.rows:
        if r.cost_usd is not None:
            costs[r.provider] = costs.get(r.provider, 0.0) + r.cost_usd
        if r.unpriced:
            partial.add(r.provider)
    cost = go.Figure(
        go.Bar(
            x=[escape(p, quote=False) for p in costs],
            y=list(costs.values()),
            marker_color=[color[p] for p in costs],
            text=["partial" if p in partial else "" for p in costs],
        )
    )
    cost.update_layout(yaxis_title="USD (priced lines only)")
    return [
        ("chart-ttft", "p50 time to first token per provider (ok streams)",
         over_time("ttft_p50", "ttft_ms p50")),
        ("chart-total", "p50 total time per provider (ok attempts)",
         over_time("total_p50", "total_ms p50")),
        ("chart-cost", "Cost per provider", cost),
        ("chart-requests", "Requests served over time", over_time("served", "requests served")),
    ]  # fmt: skip


def render_html(report: Report, tables: list[Table], header: list[str]) -> str:
    """The whole page; `tables` and `header` lines are the report's, formatted for display."""
    parts = []
    for i, (div_id, title, fig) in enumerate(_figures(report)):
        fig.update_layout(
            template="plotly_white", margin={"t": 30, "b": 50}, legend_title_text="provider"
        )
        div = fig.to_html(
            full_html=False,
            include_plotlyjs=i == 0,  # inline, once: the page must work offline
            div_id=div_id,
            default_height="100%",
            config={"displaylogo": False, "responsive": True},
        )
        parts.append(f'<h2>{escape(title)}</h2><div class="chart">{div}</div>')
    meta = "".join(f'<p class="meta">{escape(line)}</p>' for line in header)
    return (
        '<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>LLM router traffic report</title><style>{_CSS}</style></head><body>"
        f"<h1>LLM router traffic report</h1>{meta}"
        + "".join(_table_html(t) for t in tables)
        + "".join(parts)
        + "</body></html>\n"
    )
