"""What the state backends trade in for limits, beyond `state/limits.py`'s own types.

`Window`, `Grant` and `Denial` are limits.py's (re-exported here), so a grant from either
backend is one type. The Redis backend decides in a Lua script exactly as `limits.Ledger`
decides in memory; `refusal` words its verdict the way the Ledger does (`Ledger._check`), and
`booked` names the day and month windows a settlement is booked in (`Ledger.settle`).
Pure: no I/O, time passed in.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from functools import lru_cache
from typing import Protocol

from llmrouter.state.limits import (
    BUSY_RETRY_S,
    Denial,
    Grant,
    Why,
    Window,
    format_duration,
    format_usd,
    windows_for,
)

__all__ = ["Begun", "Denial", "Grant", "LedgerLike", "Reservation", "Window"]


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


def _deny(w: Window, retry_after: float, msg: str, why: Why) -> Denial:
    retry_after = max(retry_after, 0.0)
    if why in ("busy", "rpm"):
        msg = f"{msg}; retry in {format_duration(retry_after)}"
    elif why == "exhausted":
        msg = f"{msg}; resets in {format_duration(retry_after)}"
    return Denial(w, retry_after, msg, why)


def refusal(
    user: str,
    w: Window,
    amount: int,
    now_unix: float,
    *,
    spent: int = 0,
    held: int = 0,
    holds: int = 0,
    frees_in: float | None = None,
    busy_retry: float = BUSY_RETRY_S,
) -> Denial:
    """Why window `w` refuses a request, worded as limits.Ledger words it. For rpm,
    `frees_in` is when (s from now) one more request may go; for a budget, spent and held are
    its micro-USD and holds its requests in flight."""
    if w.name == "rpm":
        if not w.limit or frees_in is None:
            return _deny(w, w.reset_at - now_unix, f"user {user}: rpm limit is 0, no requests "
                         "allowed", "rpm")  # fmt: skip
        msg = f"user {user}: rpm limit {w.limit} requests per minute reached"
        return _deny(replace(w, reset_at=now_unix + frees_in), frees_in, msg, "rpm")
    budget, needs = f"{w.name} budget {format_usd(w.limit)}", format_usd(amount)
    if amount > w.limit:
        msg = (
            f"user {user}: this request may cost up to {needs}, more than the whole "
            f"{budget}; lower max_tokens or ask for a larger budget"
        )
        return _deny(w, w.reset_at - now_unix, msg, "too_large")
    state = f"{format_usd(spent)} spent, {format_usd(held)} reserved"
    if spent + amount <= w.limit:  # only the requests in flight are in the way
        wait = min(busy_retry, w.reset_at - now_unix)
        msg = (
            f"user {user}: {budget} is held by {holds} request{'s' * (holds != 1)} in "
            f"flight ({state}; this one needs up to {needs})"
        )
        return _deny(replace(w, reset_at=now_unix + wait), wait, msg, "busy")
    msg = f"user {user}: {budget} reached ({state}; this request needs up to {needs})"
    return _deny(w, w.reset_at - now_unix, msg, "exhausted")
