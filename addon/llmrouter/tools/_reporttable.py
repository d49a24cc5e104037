"""A report table as display strings, and the cell formats the terminal and HTML share."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Table:
    """A report table as display strings, shared by the terminal and HTML renderers."""

    title: str
    headers: list[str]
    align: str  # "l" or "r" per column
    rows: list[list[str]]
    total: list[str]  # empty: no total row
    notes: list[str]


def count(n: int, compact: bool) -> str:
    if compact and n >= 100_000:
        for div, unit in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
            if n >= div:
                return f"{n / div:.4g}{unit}"
    return f"{n:,}"


def ms(v: float | None) -> str:
    return "-" if v is None else f"{v:.0f}"


def usd(v: float | None, partial: bool = False) -> str:
    if v is None:
        return "n/a"
    return (f"${v:.4f}" if abs(v) < 10 else f"${v:,.2f}") + ("*" if partial else "")


def share(v: float | None) -> str:
    return "-" if v is None else f"{v:.1%}"


def clip(s: str, n: int, compact: bool) -> str:
    return s[: n - 1] + "\u2026" if compact and len(s) > n else s
