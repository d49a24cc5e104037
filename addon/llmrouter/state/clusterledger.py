"""Users' spend as the cluster sees it, for router.status and /status with a shared store.

Each instance reads its configured users' counters from Redis every few seconds in its
background sync (`sharedsync`), so the status of any instance shows the team's spend, not
only what this instance served. The figures are as of the last read (about 2 s), and the last
ones known while Redis is away. Same methods as `limits.Ledger` offers status. Pure.
"""

from __future__ import annotations

from llmrouter.state.limits import Window
from llmrouter.state.limittypes import booked


class ClusterLedger:
    def __init__(self) -> None:
        self._usd: dict[tuple[str, str], tuple[int, int, int]] = {}  # spent, held, leases
        self._rpm: dict[str, int] = {}  # requests admitted in the last minute

    def replace(
        self, usd: dict[tuple[str, str], tuple[int, int, int]], rpm: dict[str, int]
    ) -> None:
        """One read's figures, whole: (user, window key) -> (spent, held, leases) of the
        current day and month windows, and user -> requests of the last minute."""
        self._usd, self._rpm = usd, rpm

    def spent(self, user: str, window: Window) -> int:
        if window.name == "rpm":
            return self._rpm.get(user, 0)
        return self._usd.get((user, window.key), (0, 0, 0))[0]

    def reserved(self, user: str, window: Window) -> int:
        return self._usd.get((user, window.key), (0, 0, 0))[1]

    def spending(self, user: str, now_unix: float) -> tuple[int, int]:
        day, month = booked(now_unix, now_unix)
        return self.spent(user, day), self.spent(user, month)

    def holding(self, user: str) -> int:
        """Requests of the user holding a reservation, on any instance (every budget window of
        a request holds it: the most of any window)."""
        return max((v[2] for (u, _), v in self._usd.items() if u == user), default=0)
