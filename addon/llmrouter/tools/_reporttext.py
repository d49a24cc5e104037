"""Terminal rendering of the traffic report: tables as display strings, shared with HTML."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from llmrouter.tools.report import Report, Row


@dataclass(frozen=True, slots=True)
class Table:
    """A report table as display strings, shared by the terminal and HTML renderers."""

    title: str
    headers: list[str]
    align: str  # "l" or "r" per column
    rows: list[list[str]]
    total: list[str]
    notes: list[str]


def _count(n: int, compact: bool) -> str:
    if compact and n >= 100_000:
        for div, unit in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
            if n >= div:
                return f"{n / div:.4g}{unit}"
    return f"{n:,}"


def _ms(v: float | None) -> str:
    return "-" if v is None else f"{v:.0f}"


def _cost(r: Row) -> str:
    if r.cost_usd is None:
        return "n/a"
    return (f"${r.cost_usd:.4f}" if r.cost_usd < 10 else f"${r.cost_usd:,.2f}") + (
        "*" if r.cost_partial else ""
    )


def _clip(s: str, n: int, compact: bool) -> str:
    return s[: n - 1] + "\u2026" if compact and len(s) > n else s


def tables(report: Report, compact: bool = True) -> list[Table]:
    """The three report tables; `compact` clips long names and abbreviates big counts."""
    rows = report.rows

    def cells(r: Row, *values: str) -> list[str]:
        return [_clip(r.provider, 18, compact), _clip(r.model, 30, compact), *values]

    def traffic(r: Row) -> list[str]:
        share = "-" if r.first_try_share is None else f"{r.first_try_share:.1%}"
        fo = ", ".join(f"{k} x{n}" for k, n in r.failovers.items()) or "-"
        return cells(r, _count(r.attempts, compact), _count(r.served, compact), share, fo)

    def latency(r: Row) -> list[str]:
        return cells(r, _count(r.ok_attempts, compact), _ms(r.ttft_p50), _ms(r.ttft_p95),
                     _ms(r.total_p50), _ms(r.total_p95))  # fmt: skip

    def usage(r: Row) -> list[str]:
        toks = (r.input_tokens, r.output_tokens, r.cache_read_tokens, r.cache_write_tokens)
        return cells(r, *(_count(n, compact) for n in toks), _cost(r))

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
    grid = [t.headers, *t.rows, t.total]
    widths = [max(len(r[i]) for r in grid) for i in range(len(t.headers))]
    indent = sum(widths[:-1]) + 2 * (len(widths) - 1)
    out = [t.title, "-" * min(width, indent + widths[-1])]
    for n, row in enumerate(grid):
        cells = zip(row, widths, t.align, strict=True)
        cols = [c.rjust(w) if a == "r" else c.ljust(w) for c, w, a in cells]
        line = "  ".join(cols).rstrip()
        if n == len(grid) - 1:
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
    return [*out, *t.notes, ""]


def render_text(report: Report, sources: list[str]) -> str:
    out = ["LLM router traffic report", *header_lines(report, sources), ""]
    for t in tables(report):
        out += _text_table(t)
    return "\n".join(out)
