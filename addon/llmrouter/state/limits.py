"""Per-user budgets and request rates: windows, reservations, and the local ledger.

Money is integer micro-dollars (1 USD = 1_000_000) so sums never drift. Pure: time is passed
in, no I/O; the Redis backend (`state/shared.py`) offers the same operations.

Windows:
- `usd_per_day`: the UTC calendar day; resets at 00:00 UTC.
- `usd_per_month`: the UTC calendar month; resets at 00:00 UTC on the 1st.
- `rpm`: a sliding 60 s window. At most `rpm` requests are admitted in ANY 60 s span (a fixed
  minute would let 2 x rpm through around the minute's edge), and a denied client is told
  exactly when the oldest request leaves the window. A request counts when it is reserved,
  and stays counted if it fails: it used the router all the same.

The admission rule: spent + reserved by requests in flight + this request's reservation must
fit the budget, checked and reserved in one synchronous step (nothing awaits in between, so
on one event loop no other request can slip in). A reservation is an upper bound of the cost
(`state.reservation`); settling books the real cost. So settled spend plus reservations in
flight never pass a budget, which is stronger than the required "concurrent requests never
together pass it by more than one request's reservation". Settled spend can pass it only by
what real costs exceed their reservations (an input estimate that was low), and then the
next request is refused.

Beyond the shared interface (docs: PLAN.md "Limits"): `rebuild` takes `now_unix` (time is
passed in), `Grant.at` is when it was reserved, `Denial.why` tells exhausted | busy (only
requests in flight are in the way: retry in seconds) | too_large (more than the whole budget)
| rpm, and `reserved`, `spending`, `in_flight`, `prune` serve router.status.
"""

from __future__ import annotations

import itertools
import math
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any, Literal, Protocol

MICRO = 1_000_000  # micro-dollars per dollar
RPM_SPAN = 60.0  # seconds in the rpm window
# Retry-After when a budget is only full of reservations in flight: they settle soon, usually
# for less than they hold, so the request may fit in seconds rather than at the window's reset.
BUSY_RETRY_S = 5.0

Why = Literal["exhausted", "busy", "too_large", "rpm"]


class LimitsLike(Protocol):
    usd_per_day: float | None
    usd_per_month: float | None
    rpm: int | None


@dataclass(frozen=True, slots=True)
class Window:
    """One limit of one user, in its current window."""

    name: str  # "usd_per_day" | "usd_per_month" | "rpm"
    key: str  # "day:2026-11-26", "month:2026-11", "rpm"
    limit: int  # micro-USD for usd_*, request count for rpm
    reset_at: float  # Unix seconds when this window resets (-> retry-after)


@dataclass(frozen=True, slots=True)
class Grant:
    id: str
    user: str
    amount: int  # micro-USD held until settled or released
    windows: tuple[Window, ...]
    at: float = 0.0  # Unix seconds of the reservation: its cost is booked in that day and month


@dataclass(frozen=True, slots=True)
class Denial:
    window: Window  # reset_at is when this request could first pass
    retry_after: float  # seconds
    message: str  # names the user and the limit; safe to show the client
    why: Why = "exhausted"


def usd_to_micro(usd: float) -> int:
    return round(usd * MICRO)


def windows_for(limits: LimitsLike | None, now_unix: float) -> list[Window]:
    """The user's configured limits, each in its window at `now_unix` (UTC day, month, rpm)."""
    if limits is None:
        return []
    out = []
    if limits.usd_per_day is not None:
        key, reset = _day(now_unix)
        out.append(Window("usd_per_day", key, usd_to_micro(limits.usd_per_day), reset))
    if limits.usd_per_month is not None:
        key, reset = _month(now_unix)
        out.append(Window("usd_per_month", key, usd_to_micro(limits.usd_per_month), reset))
    if limits.rpm is not None:
        out.append(Window("rpm", "rpm", limits.rpm, now_unix + RPM_SPAN))
    return out


def _day(t: float) -> tuple[str, float]:
    d = datetime.fromtimestamp(t, UTC)
    start = datetime(d.year, d.month, d.day, tzinfo=UTC).timestamp()
    return f"day:{d:%Y-%m-%d}", start + 86400.0


def _month(t: float) -> tuple[str, float]:
    d = datetime.fromtimestamp(t, UTC)
    nxt = datetime(d.year + d.month // 12, d.month % 12 + 1, 1, tzinfo=UTC)
    return f"month:{d:%Y-%m}", nxt.timestamp()


def month_start(t: float) -> float:
    """00:00 UTC on the 1st of `t`'s month: how far back a rebuild reads."""
    d = datetime.fromtimestamp(t, UTC)
    return datetime(d.year, d.month, 1, tzinfo=UTC).timestamp()


# -- the local ledger ------------------------------------------------------------------------


@dataclass(slots=True)
class _Bucket:
    reset_at: float
    spent: int = 0
    held: int = 0
    holds: int = 0  # reservations in flight


class Ledger:
    """The local backend: one process's budgets and request rates, synchronous.

    Memory is bounded: per user, the current day and month buckets and at most the last
    minute's request times; an ended window is dropped on the user's next reservation (or by
    `prune`). A grant is finished once, by `settle` or `release`; a second call is a no-op.
    """

    def __init__(self, busy_retry: float = BUSY_RETRY_S) -> None:
        self.busy_retry = busy_retry
        self._buckets: dict[str, dict[str, _Bucket]] = {}  # user -> window key -> bucket
        self._recent: dict[str, deque[float]] = {}  # user -> admitted request times (rpm)
        self._grants: dict[str, Grant] = {}  # in flight
        self._ids = itertools.count(1)

    def reserve(
        self, user: str, windows: Iterable[Window], amount_micro: int, now_unix: float
    ) -> Grant | Denial:
        """Check every window and, only if all pass, hold `amount_micro` and count the request."""
        windows = tuple(windows)
        amount = max(int(amount_micro), 0)
        self._prune(user, now_unix)
        denials = [d for w in windows if (d := self._check(user, w, amount, now_unix)) is not None]
        if denials:  # the latest retry: the request cannot pass before every window allows it
            return max(denials, key=lambda d: d.retry_after)
        for w in windows:
            if w.name == "rpm":
                self._recent.setdefault(user, deque()).append(now_unix)
            else:
                b = self._bucket(user, w.key, w.reset_at)
                b.held += amount
                b.holds += 1
        grant = Grant(f"{user}#{next(self._ids)}", user, amount, windows, now_unix)
        self._grants[grant.id] = grant
        return grant

    def settle(self, grant: Grant, actual_micro: int, now_unix: float) -> None:
        """Replace the grant's hold by the real cost, booked in the day and month it started."""
        if self._unhold(grant) is None:
            return
        actual = max(int(actual_micro), 0)
        if not actual:
            return
        for key, reset_at in (_day(grant.at), _month(grant.at)):
            if reset_at > now_unix:  # a window that has ended no longer matters
                self._bucket(grant.user, key, reset_at).spent += actual

    def release(self, grant: Grant, now_unix: float) -> None:
        """The request failed without cost: give the hold back (its rpm count stays)."""
        self._unhold(grant)

    def spent(self, user: str, window: Window) -> int:
        """Settled spend in the window (micro-USD), or admitted requests in the rpm window."""
        if window.name == "rpm":  # the window was made at reset_at - RPM_SPAN
            since = window.reset_at - 2 * RPM_SPAN
            return sum(1 for t in self._recent.get(user, ()) if t > since)
        b = self._buckets.get(user, {}).get(window.key)
        return b.spent if b else 0

    def reserved(self, user: str, window: Window) -> int:
        """Micro-USD held by the user's requests in flight in this window."""
        b = self._buckets.get(user, {}).get(window.key)
        return b.held if b else 0

    def spending(self, user: str, now_unix: float) -> tuple[int, int]:
        """(today, this month) settled spend in micro-USD, limits or not: for router.status."""
        buckets = self._buckets.get(user, {})
        day, month = buckets.get(_day(now_unix)[0]), buckets.get(_month(now_unix)[0])
        return (day.spent if day else 0, month.spent if month else 0)

    @property
    def in_flight(self) -> int:
        return len(self._grants)

    def holding(self, user: str) -> int:
        """The user's requests in flight (holding a reservation)."""
        return sum(1 for g in self._grants.values() if g.user == user)

    def rebuild(self, records: Iterable[Mapping[str, Any]], now_unix: float) -> None:
        """Settled spend of the current day and month, and the last minute's requests, from
        the JSONL journal's lines (`user`, `cost_usd` or `charged_usd`, `ts`). Lines of no
        user, of an ended window or unreadable are skipped; holds in flight are kept."""
        day, month = _day(now_unix), _month(now_unix)
        totals: dict[tuple[str, str], int] = {}
        recent: dict[str, list[float]] = {}
        for rec in records:
            if not isinstance(rec, Mapping):
                continue
            user, t = rec.get("user"), journal_time(rec.get("ts"))
            if not isinstance(user, str) or not user or t is None:
                continue
            cost = charged_micro(rec)
            if cost:
                for key, _ in (_day(t), _month(t)):
                    if key in (day[0], month[0]):
                        totals[user, key] = totals.get((user, key), 0) + cost
            if now_unix - RPM_SPAN < t <= now_unix and rec.get("attempt", 1) == 1:  # per request
                recent.setdefault(user, []).append(t)
        self.prune(now_unix)
        for buckets in self._buckets.values():
            for b in buckets.values():
                b.spent = 0
        for (user, key), micro in totals.items():
            reset_at = day[1] if key == day[0] else month[1]
            self._bucket(user, key, reset_at).spent = micro
        for user, times in recent.items():
            self._recent[user] = deque(sorted([*self._recent.get(user, ()), *times]))

    def prune(self, now_unix: float) -> None:
        """Drop every ended window (the ledger also does it per user as it goes)."""
        for user in list(self._buckets.keys() | self._recent.keys()):
            self._prune(user, now_unix)

    # -- internals ---------------------------------------------------------------------------

    def _check(self, user: str, w: Window, amount: int, now: float) -> Denial | None:
        if w.name == "rpm":
            recent = self._recent.get(user, ())
            if len(recent) < w.limit:
                return None
            # One more may go when the `limit`-th newest request leaves the window.
            frees_in = recent[-w.limit] + RPM_SPAN - now if w.limit else None
            return refusal(user, w, amount, now, frees_in=frees_in)
        b = self._buckets.get(user, {}).get(w.key)
        spent, held, holds = (b.spent, b.held, b.holds) if b else (0, 0, 0)
        if spent + held + amount <= w.limit:
            return None
        return refusal(
            user, w, amount, now, spent=spent, held=held, holds=holds, busy_retry=self.busy_retry
        )

    def _bucket(self, user: str, key: str, reset_at: float) -> _Bucket:
        buckets = self._buckets.setdefault(user, {})
        b = buckets.get(key)
        if b is None:
            b = buckets[key] = _Bucket(reset_at)
        return b

    def _unhold(self, grant: Grant) -> Grant | None:
        if self._grants.pop(grant.id, None) is None:
            return None
        buckets = self._buckets.get(grant.user, {})
        for w in grant.windows:
            b = buckets.get(w.key)
            if b is not None and w.name != "rpm":
                b.held -= grant.amount
                b.holds -= 1
        return grant

    def _prune(self, user: str, now: float) -> None:
        buckets = self._buckets.get(user)
        if buckets:
            for key in [k for k, b in buckets.items() if b.reset_at <= now and not b.holds]:
                del buckets[key]
        recent = self._recent.get(user)
        if recent is not None:
            while recent and recent[0] <= now - RPM_SPAN:
                recent.popleft()
        if not buckets:
            self._buckets.pop(user, None)
        if not recent:
            self._recent.pop(user, None)


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
    """Why window `w` refuses a request: the Ledger's wording, and the Redis script's. For rpm,
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


def _deny(w: Window, retry_after: float, msg: str, why: Why) -> Denial:
    retry_after = max(retry_after, 0.0)
    if why in ("busy", "rpm"):
        msg = f"{msg}; retry in {format_duration(retry_after)}"
    elif why == "exhausted":
        msg = f"{msg}; resets in {format_duration(retry_after)}"
    return Denial(w, retry_after, msg, why)


def charged_micro(rec: Mapping[str, Any]) -> int:
    """What a journal line cost the user's budget (micro-USD): `charged_usd` when the router
    charged more than the reported cost (usage missing or cut short), else `cost_usd`."""
    for field in ("charged_usd", "cost_usd"):
        v = rec.get(field)
        if isinstance(v, int | float) and not isinstance(v, bool):
            return max(usd_to_micro(v), 0)
    return 0


def journal_time(ts: Any) -> float | None:
    """A journal timestamp (ISO 8601, `Z` allowed, or Unix seconds) as Unix seconds."""
    if isinstance(ts, int | float) and not isinstance(ts, bool):
        return float(ts)
    if isinstance(ts, str):
        try:
            d = datetime.fromisoformat(ts)
        except ValueError:
            return None
        return (d if d.tzinfo else d.replace(tzinfo=UTC)).timestamp()
    return None


def format_usd(micro: int) -> str:
    """$5.00, $4.998, $0.01, $0.000123: cents always, more digits only when they say something."""
    s = f"{micro / MICRO:.6f}".rstrip("0")
    whole, _, frac = s.partition(".")
    return f"${whole}.{frac.ljust(2, '0')}"


def format_duration(seconds: float) -> str:
    """45s, 3h12m, 12d3h: the two largest units, for people (retry-after carries seconds)."""
    s = math.ceil(seconds)
    if s < 60:
        return f"{s}s"
    parts = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if s >= size or parts:
            parts.append((unit, s // size))
            s %= size
    (u1, n1), (u2, n2) = parts[0], parts[1]
    return f"{n1}{u1}{n2}{u2}" if n2 else f"{n1}{u1}"
