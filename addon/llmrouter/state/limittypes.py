"""The values budgets and rpm limits trade in, shared by the local and the Redis backends.

These follow PLAN.md's "Limits" interface field for field. `state/limits.py` (the local
Ledger) is written concurrently; when it lands, it should import these (or define the same and
this module re-export them), so that a Grant from either backend is one type.

Money is integer micro-dollars; rpm windows count requests. Pure: no I/O, time passed in.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

COUNT_WINDOWS = frozenset({"rpm"})  # counted per request, not in micro-dollars


@dataclass(frozen=True, slots=True)
class Window:
    """One limit of one user, in its current window."""

    name: str  # "usd_per_day" | "usd_per_month" | "rpm"
    key: str  # e.g. "day:2026-11-26", "month:2026-11", "rpm:<minute or slot>"
    limit: int  # micro-USD for usd_*, request count for rpm
    reset_at: float  # Unix seconds when this window resets (-> retry-after)

    @property
    def counts_requests(self) -> bool:
        return self.name in COUNT_WINDOWS


@dataclass(frozen=True, slots=True)
class Grant:
    id: str
    user: str
    amount: int
    windows: tuple[Window, ...]


@dataclass(frozen=True, slots=True)
class Denial:
    window: Window
    retry_after: float
    message: str  # names the limit


@dataclass(frozen=True, slots=True)
class Reservation:
    """What one request asks of its user's limits before it is routed."""

    user: str
    windows: tuple[Window, ...]
    amount: int  # micro-USD held until the request settles


@dataclass(frozen=True, slots=True)
class Begun:
    """What the hot path learned: the conversation's binding and the limits' verdict."""

    binding: str | None = None
    verdict: Grant | Denial | None = None  # None: no reservation asked
    local: bool = field(default=False)  # answered from local state (no backend, or an outage)


class LedgerLike(Protocol):
    """The local ledger's operations (state/limits.py's Ledger has these)."""

    def reserve(
        self, user: str, windows: list[Window], amount_micro: int, now_unix: float
    ) -> Grant | Denial: ...

    def settle(self, grant: Grant, actual_micro: int, now_unix: float) -> None: ...

    def release(self, grant: Grant, now_unix: float) -> None: ...


def usd(micro: int) -> str:
    """$12.34, or more digits for amounts under a dollar ($0.0042)."""
    return f"${micro / 1e6:.2f}" if abs(micro) >= 1_000_000 else f"${micro / 1e6:.4f}"


def denial(window: Window, used: int, now_unix: float, note: str = "") -> Denial:
    """A Denial whose message names the limit and when it resets."""
    wait = max(0.0, window.reset_at - now_unix)
    if window.counts_requests:
        what = f"{window.name} limit of {window.limit} requests reached"
    else:
        what = f"{window.name} limit of {usd(window.limit)} reached (spent and held {usd(used)})"
    return Denial(window, wait, f"{what}; resets in {wait:.0f}s{note}")
