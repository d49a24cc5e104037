"""Terminal rendering of the traffic report: tables as display strings, shared with HTML."""

from __future__ import annotations

import textwrap
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from llmrouter.tools._reporttable import Table, clip, count, ms, share, usd
from llmrouter.tools._reportviews import view_tables

if TYPE_CHECKING:
    from llmrouter.tools._reportagg import Report, Row

__all__ = ["Table", "header_lines", "render_text", "tables"]


def tables(report: Report, compact: bool = True) -> list[Table]:
    """The report's tables: traffic, latency, tokens and cost, then the route, user and cache
    views whose fields appear in the log. `compact` clips long names and abbreviates counts."""
    rows = report.rows

    def cells(r: Row, *values: str) -> list[str]:
        return [clip(r.provider, 18, compact), clip(r.model, 30, compact), *values]

    def traffic(r: Row) -> list[str]:
        fo = ", ".join(f"{k} x{n}" for k, n in r.failovers.items()) or "-"
        first = share(r.first_try_share)
        return cells(r, count(r.attempts, compact), count(r.served, compact), first, fo)

    def latency(r: Row) -> list[str]:
        return cells(r, count(r.ok_attempts, compact), ms(r.ttft_p50), ms(r.ttft_p95),
                     ms(r.total_p50), ms(r.total_p95))  # fmt: skip

    def usage(r: Row) -> list[str]:
        toks = (r.input_tokens, r.output_tokens, r.cache_read_tokens, r.cache_write_tokens)
        return cells(r, *(count(n, compact) for n in toks), usd(r.cost_usd, r.cost_partial))

    cost_notes = []
    if any(r.cost_partial for r in [*rows, report.totals]):
        cost_notes.append(f"*: partial, {report.totals.unpriced:,} lines with usage had no cost.")
    if any(r.cost_usd is None for r in rows):
        cost_notes.append("n/a: no line was priced.")
    who = ["provider", "model"]
    return [
        Table("Traffic", [*who, "attempts", "served", "first try", "failovers away"], "llrrrl",
              [traffic(r) for r in rows], traffic(report.totals),
              ["served: final ok answers. failovers away: non-final attempts followed by "
               "another one."]),
        Table("Latency of ok attempts (ms)",
              [*who, "ok", "ttft p50", "ttft p95", "total p50", "total p95"], "llrrrrr",
              [latency(r) for r in rows], latency(report.totals),
              ["ttft: streams only. Percentiles within 1% (log-bucketed histogram)."]),
        Table("Tokens and cost",
              [*who, "input", "output", "cache read", "cache write", "cost USD"], "llrrrrr",
              [usage(r) for r in rows], usage(report.totals), cost_notes),
        *view_tables(report.views, compact),
    ]  # fmt: skip


def _when(ts: datetime | None) -> str:
    return "-" if ts is None else ts.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%SZ")


def _duration(seconds: float) -> str:
    parts, rest = [], int(seconds)
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if rest >= size or (unit == "s" and not parts):
            parts.append(f"{rest // size}{unit}")
            rest %= size
    return " ".join(parts[:2])


def header_lines(report: Report, sources: list[str]) -> list[str]:
    lines = []
    if report.first_ts and report.last_ts:
        span = _duration((report.last_ts - report.first_ts).total_seconds())
        lines.append(f"Range: {_when(report.first_ts)} .. {_when(report.last_ts)} ({span})")
    else:
        lines.append("Range: no attempts in range")
    if report.since or report.until:
        lines.append(f"Filter: since {_when(report.since)}, until {_when(report.until)}")
    in_range = report.lines - report.bad - report.filtered
    lines.append(
        f"Lines: {report.lines:,} read, {in_range:,} in range, {report.filtered:,} outside it, "
        f"{report.bad:,} bad (skipped)"
    )
    lines.append("Files: " + (", ".join(sources) or "-"))
    return lines


def _text_table(t: Table, width: int = 100) -> list[str]:
    grid = [t.headers, *t.rows, *([t.total] if t.total else [])]
    widths = [max(len(r[i]) for r in grid) for i in range(len(t.headers))]
    indent = sum(widths[:-1]) + 2 * (len(widths) - 1)
    out = [t.title, "-" * min(width, indent + widths[-1])]
    for n, row in enumerate(grid):
        cells = zip(row, widths, t.align, strict=True)
        cols = [c.rjust(w) if a == "r" else c.ljust(w) for c, w, a in cells]
        line = "  ".join(cols).rstrip()
        if t.total and n == len(grid) - 1:
            out.append("-" * min(width, indent + widths[-1]))
        # A long last (left-aligned) column wraps at ", " under itself.
        if len(line) > width and t.align[-1] == "l" and ", " in row[-1]:
            head, room = line[:indent], max(20, width - indent)
            chunks: list[str] = []
            for item in row[-1].split(", "):
                if chunks and len(chunks[-1]) + 2 + len(item) <= room:
                    chunks[-1] += ", " + item
                else:
                    chunks.append(item)
            out.append(head + chunks[0])
            out.extend(" " * indent + c for c in chunks[1:])
        else:
            out.append(line)
    notes = [ln for note in t.notes for ln in textwrap.wrap(note, width)]
    return [*out, *notes, ""]


def render_text(report: Report, sources: list[str]) -> str:
    out = ["LLM router traffic report", *header_lines(report, sources), ""]
    for t in tables(report):
        out += _text_table(t)
    return "\n".join(out)
