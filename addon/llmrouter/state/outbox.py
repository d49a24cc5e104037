"""The bounded background queue of writes to the shared store (bookkeeping after the answer).

Writes that say the same thing coalesce: a later cooldown of one provider keeps the later
deadline, a conversation's newest binding replaces the older one, spend of one user's window
adds up. So an outage grows the queue by distinct facts, not by requests. A write that finds
the queue full is dropped and counted (router.status shows it), never silently.

A batch taken for sending stays in flight until it is acknowledged, and is sent again as it is
after a failure, before anything newer: Redis sees the writes in order, and the writes that
are not idempotent (spend) carry sequence numbers so a batch sent twice counts once.
Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

Merge = Callable[["Op", "Op"], "Op"]


@dataclass(slots=True)
class Op:
    kind: str  # "cool" | "clear" | "probe" | "bind" | "settle" | "release" | "spend"
    key: str  # what it is about: coalesces with a pending op of the same kind and key
    data: dict[str, Any] = field(default_factory=dict)
    seq: int = 0  # set when a non-idempotent op is first sent; kept for its retries


class Outbox:
    def __init__(self, capacity: int = 10_000) -> None:
        self.capacity = capacity
        self._pending: dict[tuple[str, str], Op] = {}
        self.inflight: list[Op] = []
        self.dropped = 0  # writes refused because the queue was full
        self.failed = 0  # writes Redis refused (a bug, not an outage): logged, not retried
        self.sent = 0

    def put(self, op: Op, merge: Merge | None = None) -> bool:
        """Queue a write. False (and counted) when the queue is full."""
        k = (op.kind, op.key)
        old = self._pending.pop(k, None)  # re-inserted last: the newest fact is sent last
        if old is not None and merge is not None:
            op = merge(old, op)
        elif old is None and len(self._pending) >= self.capacity:
            self.dropped += 1
            return False
        self._pending[k] = op
        return True

    def take(self, n: int) -> list[Op]:
        """The batch to send: the unacknowledged one, else up to n of the oldest writes."""
        if not self.inflight:
            while self._pending and len(self.inflight) < n:
                k = next(iter(self._pending))
                self.inflight.append(self._pending.pop(k))
        return self.inflight

    def ack(self) -> None:
        self.sent += len(self.inflight)
        self.inflight = []

    def has(self, kind: str, key: str) -> bool:
        """A write about this is queued or in flight (its news has not reached Redis yet)."""
        return (kind, key) in self._pending or any(
            op.kind == kind and op.key == key for op in self.inflight
        )

    def __len__(self) -> int:
        return len(self._pending) + len(self.inflight)


def later(old: Op, new: Op) -> Op:
    """Cooldowns: the later deadline wins."""
    return new if new.data["until"] >= old.data["until"] else old


def add(old: Op, new: Op) -> Op:
    """Spend of one window: the amounts add up (an op not yet sent has no sequence number)."""
    new.data["amount"] += old.data["amount"]
    return new
