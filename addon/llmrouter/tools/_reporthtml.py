"""HTML page of the traffic report: the report's tables and inline SVG charts, in one file.

The page needs no network and runs no script: the charts are SVG drawn here, tooltips are SVG
<title> elements, and a Content-Security-Policy of `default-src 'none'` makes the browser
refuse anything external. Every log-derived string is escaped.
"""

from __future__ import annotations

from html import escape
from typing import TYPE_CHECKING

from llmrouter.tools import _reportcharts as charts

if TYPE_CHECKING:
    from llmrouter.tools._reportagg import Report
    from llmrouter.tools._reporttable import Table

_CSP = "default-src 'none'; style-src 'unsafe-inline'"
_CSS = """
body { font: 14px/1.4 system-ui, sans-serif; margin: 1.5em auto; max-width: 1100px;
       padding: 0 1em; color: #222; }
h1 { font-size: 1.5em; } h2 { font-size: 1.15em; margin: 1.6em 0 .3em; }
table { border-collapse: collapse; margin: .4em 0; }
th, td { padding: .25em .7em; border-bottom: 1px solid #ddd; white-space: nowrap; }
th { background: #f4f4f4; text-align: left; }
td.r, th.r { text-align: right; font-variant-numeric: tabular-nums; }
tr.total td { font-weight: 600; border-top: 2px solid #999; }
.meta { color: #555; margin: .1em 0; } .note { color: #777; font-size: .9em; margin: 0; }
.chart svg { width: 100%; height: auto; display: block; }
.chart p.sub { color: #666; margin: 0 0 .3em; font-size: .9em; }
svg text { font: 12px system-ui, sans-serif; fill: #333; }
svg text.tick { fill: #666; font-size: 11px; } svg text.axis { fill: #666; font-size: 11px; }
svg .grid { stroke: #eee; } svg .axisline { stroke: #999; }
svg .line { fill: none; stroke-width: 2; } svg .box line { stroke-width: 1.5; }
svg .box line.median { stroke-width: 3; }
.legend { display: flex; flex-wrap: wrap; gap: .3em 1.1em; font-size: .9em; margin: .2em 0; }
.legend i { display: inline-block; width: .8em; height: .8em; margin-right: .35em;
            border-radius: 2px; vertical-align: -.05em; }
.legend small { color: #777; }
"""


def _table_html(t: Table) -> str:
    def cells(values: list[str], tag: str) -> str:
        return "".join(
            f'<{tag} class="{"r" if a == "r" else "l"}">{escape(v)}</{tag}>'
            for v, a in zip(values, t.align, strict=True)
        )

    body = "".join(f"<tr>{cells(r, 'td')}</tr>" for r in t.rows)
    if t.total:
        body += f'<tr class="total">{cells(t.total, "td")}</tr>'
    notes = "".join(f'<p class="note">{escape(n)}</p>' for n in t.notes)
    return (
        f"<h2>{escape(t.title)}</h2><table><thead><tr>{cells(t.headers, 'th')}</tr></thead>"
        f"<tbody>{body}</tbody></table>{notes}"
    )


def _charts(report: Report) -> list[tuple[str, str, str, str]]:
    """(id, title, subtitle, fragment) of each chart that has something to show."""
    colours = charts.provider_colours(report)
    found = [
        ("attempts", "Attempts over time, by outcome",
         "Every attempt, stacked by how it ended: the layers above ok are failovers and errors.",
         charts.attempts_chart(report)),
        ("latency", "Latency distribution per provider",
         "Box p25 to p75, thick line p50, whiskers p5 to p95; log scale.",
         charts.latency_boxes(report, colours)),
        ("ttft", "Median time to first token over time", "ok streams; gaps are left open.",
         charts.median_chart(report, colours, "ttft_p50", "ttft p50")),
        ("total", "Median total time over time", "ok attempts; gaps are left open.",
         charts.median_chart(report, colours, "total_p50", "total p50")),
        ("cost", "Cumulative cost per provider", "Priced lines only.",
         charts.cost_chart(report, colours)),
        ("cache", "Prompt cache: paid vs the same tokens with no cache",
         "Per provider, for lines with a known cache price.",
         charts.cache_chart(report.views.cache_by_provider, colours)),
    ]  # fmt: skip
    return [c for c in found if c[3]]


def render_html(report: Report, tables: list[Table], header: list[str]) -> str:
    """The whole page; `tables` and `header` lines are the report's, formatted for display."""
    meta = "".join(f'<p class="meta">{escape(line)}</p>' for line in header)
    figures = "".join(
        f'<section class="chart" id="chart-{cid}"><h2>{escape(title)}</h2>'
        f'<p class="sub">{escape(sub)}</p>{fragment}</section>'
        for cid, title, sub, fragment in _charts(report)
    )
    return (
        '<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{_CSP}">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>LLM router traffic report</title><style>{_CSS}</style></head><body>"
        f"<h1>LLM router traffic report</h1>{meta}{figures}"
        + "".join(_table_html(t) for t in tables)
        + "</body></html>\n"
    )
