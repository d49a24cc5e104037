"""Circuit breaker for the shared store: closed (use Redis) or open (local state only).

One failed call opens it: the calls in flight at that moment pay the timeout once, and every
later request skips Redis until a background check succeeds and the instance has resynced.
Requests never act as the half-open probe, so an outage never costs a request more than one
timeout. Pure: time is passed in (monotonic seconds).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(slots=True)
class Breaker:
    retry_initial: float = 0.25  # first background retry after opening (s)
    retry_max: float = 2.0  # retries back off to this; keeps recovery well under 5 s
    closed: bool = False  # starts open: the first successful resync closes it
    since: float = 0.0  # when it last changed state
    opened: int = 0  # times it opened
    last_error: str | None = None
    next_retry: float = 0.0
    _backoff: float = 0.0

    def failure(self, now: float, error: str) -> bool:
        """A call failed. True when this opened the breaker (log it once, then)."""
        self.last_error = error
        if not self.closed:
            return False
        self.closed, self.since = False, now
        self.opened += 1
        self._backoff = self.retry_initial
        self.next_retry = now + self._backoff
        return True

    def retry_failed(self, now: float, error: str) -> None:
        """A background retry failed: wait twice as long before the next (up to retry_max)."""
        self.last_error = error
        self._backoff = min(self.retry_max, max(self.retry_initial, self._backoff * 2))
        self.next_retry = now + self._backoff

    def due(self, now: float) -> bool:
        return not self.closed and now >= self.next_retry

    def success(self, now: float) -> bool:
        """A resync succeeded. True when this closed the breaker."""
        if self.closed:
            return False
        self.closed, self.since, self._backoff = True, now, 0.0
        return True
