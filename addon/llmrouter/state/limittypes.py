"""What the state backends trade in for limits, beyond `state/limits.py`'s own types.

`Window`, `Grant` and `Denial` are limits.py's (re-exported here), so a grant from either
backend is one type. The Redis backend decides in a Lua script exactly as `limits.Ledger`
decides in memory; `refusal` (limits.py's, re-exported) words both verdicts alike, and
`booked` names the day and month windows a settlement is booked in (`Ledger.settle`).
Pure: no I/O, time passed in.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Protocol

from llmrouter.state.limits import Denial, Grant, Window, refusal, windows_for

__all__ = ["Begun", "Denial", "Grant", "LedgerLike", "Reservation", "Window", "refusal"]


@dataclass(frozen=True, slots=True)
class Reservation:
    """What one request asks of its user's limits before it is routed."""

    user: str
    windows: tuple[Window, ...]  # limits.windows_for(user's limits, now)
    amount: int  # micro-USD held until the request settles (state/reservation.py)


@dataclass(frozen=True, slots=True)
class Begun:
    """What the hot path learned besides the bindings (which are in the backend's book by
    then): the limits' verdict."""

    verdict: Grant | Denial | None = None  # None: no reservation asked
    local: bool = field(default=False)  # answered from local state (no backend, or an outage)


class LedgerLike(Protocol):
    """The local ledger's operations (limits.Ledger)."""

    def reserve(
        self, user: str, windows: Iterable[Window], amount_micro: int, now_unix: float
    ) -> Grant | Denial: ...

    def settle(self, grant: Grant, actual_micro: int, now_unix: float) -> None: ...

    def release(self, grant: Grant, now_unix: float) -> None: ...


@dataclass(frozen=True, slots=True)
class _Both:
    usd_per_day: float | None = 0.0
    usd_per_month: float | None = 0.0
    rpm: int | None = None


def booked(at_unix: float, now_unix: float) -> list[Window]:
    """The day and month windows a request reserved at `at_unix` is booked in (those that have
    not ended), whatever limits its user has: router.status shows spend either way."""
    return [w for w in _day_and_month(int(at_unix // 60)) if w.reset_at > now_unix]


@lru_cache(maxsize=64)
def _day_and_month(minute: int) -> tuple[Window, ...]:
    # days and months start on a minute: one minute's requests share their windows
    return tuple(windows_for(_Both(), minute * 60.0))
