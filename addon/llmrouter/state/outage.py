"""Budgets while the shared store is unreachable: each instance enforces a share of the limit.

`on_outage: local-share` gives every instance `(limit - what the cluster had used when this
instance last heard) / live instances`, counted in a small in-memory ledger that starts empty
at each outage. What it spends is pushed to Redis when Redis returns, so the shared totals stay
right. `deny` refuses the requests of users that have limits. Pure: time is passed in.
"""

from __future__ import annotations

import itertools
from dataclasses import replace

from llmrouter.state.limittypes import Denial, Grant, Window, denial

_KNOWN_MAX = 100_000  # (user, window) totals remembered from Redis answers


class MemoryLedger:
    """Check-and-reserve in one step, same rule as the shared script: a usd window admits a
    request while spent + held is under the limit (so a budget is passed by at most one
    reservation); an rpm window admits while the count is under the limit."""

    def __init__(self, prefix: str = "l") -> None:
        self._ids = itertools.count(1)
        self._prefix = prefix
        self._spent: dict[tuple[str, str], int] = {}
        self._held: dict[tuple[str, str], int] = {}
        self._grants: dict[str, Grant] = {}
        self._resets: dict[tuple[str, str], float] = {}

    def reserve(
        self, user: str, windows: list[Window], amount_micro: int, now_unix: float
    ) -> Grant | Denial:
        self._expire(now_unix)
        for w in windows:
            used = self.used(user, w)
            if (used + 1 > w.limit) if w.counts_requests else (used >= w.limit):
                return denial(w, used, now_unix)
        grant = Grant(f"{self._prefix}-{next(self._ids)}", user, amount_micro, tuple(windows))
        for w in windows:
            k = (user, w.key)
            self._resets[k] = w.reset_at
            if w.counts_requests:
                self._spent[k] = self._spent.get(k, 0) + 1
            else:
                self._held[k] = self._held.get(k, 0) + amount_micro
        self._grants[grant.id] = grant
        return grant

    def settle(self, grant: Grant, actual_micro: int, now_unix: float) -> None:
        if self._grants.pop(grant.id, None) is None:
            return
        for w in grant.windows:
            if not w.counts_requests:
                k = (grant.user, w.key)
                self._held[k] = self._held.get(k, 0) - grant.amount
                self._spent[k] = self._spent.get(k, 0) + actual_micro

    def release(self, grant: Grant, now_unix: float) -> None:
        if self._grants.pop(grant.id, None) is None:
            return
        for w in grant.windows:
            if not w.counts_requests:
                k = (grant.user, w.key)
                self._held[k] = self._held.get(k, 0) - grant.amount

    def used(self, user: str, window: Window) -> int:
        k = (user, window.key)
        return self._spent.get(k, 0) + self._held.get(k, 0)

    def spent(self, user: str, window: Window) -> int:
        return self._spent.get((user, window.key), 0)

    def _expire(self, now: float) -> None:
        for k in [k for k, at in self._resets.items() if at <= now]:
            self._resets.pop(k, None)
            self._spent.pop(k, None)
            self._held.pop(k, None)


class OutageLimits:
    """The budget policy of one instance while Redis is unreachable."""

    def __init__(self, mode: str) -> None:
        self.mode = mode  # "local-share" | "deny"
        self.instances = 0  # live instances at the last heartbeat; 0: never heard
        self._known: dict[tuple[str, str], tuple[int, float]] = {}
        self._epoch = 0
        self.ledger = MemoryLedger("l0")

    def learned(self, user: str, window: Window, used: int) -> None:
        """A Redis answer said the cluster has used this much of the window."""
        if len(self._known) >= _KNOWN_MAX:
            self._known.clear()  # bounded; an outage right after this shares the whole limit
        self._known[(user, window.key)] = (used, window.reset_at)

    def new_outage(self) -> None:
        """What earlier outages spent was pushed to Redis and is in `_known` now."""
        self._epoch += 1
        self.ledger = MemoryLedger(f"l{self._epoch}")

    def owns(self, grant: Grant) -> bool:
        return grant.id.startswith(f"l{self._epoch}-")

    def share(self, user: str, window: Window, now_unix: float) -> Window:
        """This instance's part of what is left of the window."""
        used, reset = self._known.get((user, window.key), (0, 0.0))
        if reset <= now_unix:
            used = 0
        left = max(0, window.limit - used)
        return replace(window, limit=left // max(1, self.instances))

    def reserve(
        self, user: str, windows: tuple[Window, ...], amount: int, now_unix: float, retry: float
    ) -> Grant | Denial:
        if self.mode == "deny":
            w = windows[0]
            return Denial(
                w, retry, f"{w.name}: the shared budget store is unreachable (on_outage: deny)"
            )
        shares = [self.share(user, w, now_unix) for w in windows]
        verdict = self.ledger.reserve(user, shares, amount, now_unix)
        n = max(1, self.instances)
        if isinstance(verdict, Denial):
            full = windows[shares.index(verdict.window)]
            note = f" (this instance's 1/{n} share while the shared store is unreachable)"
            return denial(full, self.ledger.used(user, verdict.window), now_unix, note)
        return replace(verdict, windows=windows)
