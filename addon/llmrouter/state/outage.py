"""Budgets while the shared store is unreachable: each instance enforces a share of the limit.

`on_outage: local-share` gives every instance `(limit - what the cluster had used when this
instance last heard) / live instances` of each budget and `rpm / live instances` requests a
minute, counted in a `limits.Ledger` that starts empty at each outage. What it spends is
pushed to Redis when Redis returns (by the backend), so the shared totals stay right. `deny`
refuses the requests of users that have limits. Pure: time is passed in.
"""

from __future__ import annotations

from dataclasses import replace

from llmrouter.state.limits import Denial, Grant, Ledger, Window, format_duration

_KNOWN_MAX = 100_000  # (user, window) totals remembered from Redis answers
_GRANTS_MAX = 100_000  # outage grants in flight (each is settled or released once)


class OutageLimits:
    """The budget policy of one instance while Redis is unreachable."""

    def __init__(self, mode: str) -> None:
        self.mode = mode  # "local-share" | "deny"
        self.instances = 0  # live instances when the outage began; 0: never heard
        self.ledger = Ledger()
        self._epoch = 0
        self._known: dict[tuple[str, str], tuple[int, float]] = {}
        self._mine: dict[str, tuple[Ledger, Grant]] = {}  # id -> (its ledger, its own grant)

    def learned(self, user: str, window: Window, used: int) -> None:
        """A Redis answer said the cluster has used this much of the window."""
        if len(self._known) >= _KNOWN_MAX:
            self._known.clear()  # bounded; an outage right after this shares the whole limit
        self._known[(user, window.key)] = (used, window.reset_at)

    def new_outage(self, instances: int) -> None:
        """What earlier outages spent was pushed to Redis and is in what we learn since."""
        self._epoch += 1
        self.instances = instances
        self.ledger = Ledger()

    def share(self, user: str, window: Window, now_unix: float) -> Window:
        """This instance's part of what is left of the window."""
        n = max(1, self.instances)
        if window.name == "rpm":
            return replace(window, limit=window.limit // n)
        used, reset = self._known.get((user, window.key), (0, 0.0))
        left = max(0, window.limit - (used if reset > now_unix else 0))
        return replace(window, limit=left // n)

    def reserve(
        self, user: str, windows: tuple[Window, ...], amount: int, now_unix: float, retry: float
    ) -> Grant | Denial:
        if self.mode == "deny" and windows:
            w, wait = windows[0], max(retry, 0.0)
            msg = (
                f"user {user}: the shared budget store is unreachable and limits are enforced "
                f"only there (shared.on_outage: deny); retry in {format_duration(wait)}"
            )
            return Denial(replace(w, reset_at=now_unix + wait), wait, msg, "busy")
        verdict = self.ledger.reserve(user, [self.share(user, w, now_unix) for w in windows],
                                      amount, now_unix)  # fmt: skip
        if isinstance(verdict, Denial):
            n = max(1, self.instances)
            note = f" (this instance's 1/{n} share while the shared store is unreachable)"
            return replace(verdict, message=verdict.message + note)
        if len(self._mine) >= _GRANTS_MAX:
            self._mine.clear()  # bounded: a leak elsewhere must not grow this forever
        grant = replace(verdict, id=f"{verdict.id}~{self._epoch}", windows=windows)
        self._mine[grant.id] = (self.ledger, verdict)
        return grant

    def settle(self, grant: Grant, actual: int, now_unix: float) -> bool:
        """False: not a grant of an outage (a Redis grant)."""
        mine = self._mine.pop(grant.id, None)
        if mine is not None:
            mine[0].settle(mine[1], actual, now_unix)
        return mine is not None

    def release(self, grant: Grant, now_unix: float) -> bool:
        mine = self._mine.pop(grant.id, None)
        if mine is not None:
            mine[0].release(mine[1], now_unix)
        return mine is not None
