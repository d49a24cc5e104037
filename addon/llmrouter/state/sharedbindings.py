"""Conversation bindings shared by router instances: `affinity.Bindings` over Redis.

The local `BindingBook` is the mirror every lookup reads, so the planner's semantics (new,
bound, rebound, expired; the LRU cap) are the same with or without Redis. What Redis adds:
- on a request's path, `StateBackend.begin` reads the conversation's key in its one round
  trip and `adopt`s the value into the mirror before the planner looks (the later binding
  wins: a value of ours still queued is not replaced by an older one);
- a success (re)binds locally and queues the write through the store's background queue.

A value is `[provider, profile, bound at (server ms), ttl ms]`. The key lives `EXPIRED_KEPT`
past the binding's TTL, so the next turn of a conversation that was idle too long reads
`expired` (not `new`) on every instance, as it does in one process. Pure: no I/O; the store
and the clock conversion are passed in.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Collection
from typing import Any

from llmrouter.routing.affinity import DEFAULT_CAP, Binding, BindingBook, Lookup

EXPIRED_KEPT = 3600.0  # s an expired binding is still known (its next turn reads `expired`)
_SAME_WRITE = 1.0  # s: the same binding written this recently is not written again

Write = Callable[[str, str, int], None]  # conversation key, value, key TTL (ms)


class SharedBindings:
    def __init__(
        self,
        write: Write,
        to_server: Callable[[float], int],
        to_mono: Callable[[int], float],
        cap: int = DEFAULT_CAP,
    ) -> None:
        self.book = BindingBook(cap)
        self.cap = cap
        self._write = write
        self._to_server = to_server
        self._to_mono = to_mono

    # -- affinity.Bindings ---------------------------------------------------------------------

    def get(self, key: str, now: float, *, compaction: bool = False) -> Lookup:
        return self.book.get(key, now, compaction=compaction)

    def bind(self, key: str, provider: str, profile: str, ttl: float, now: float) -> None:
        """After a success: the mirror now, Redis through the background queue. Parallel
        requests of one conversation (a client's side calls) write once, not once each."""
        old = self.book.get(key, now).binding
        self.book.bind(key, provider, profile, ttl, now)
        if (
            old is not None
            and (old.provider, old.profile, old.ttl) == (provider, profile, ttl)
            and now + ttl - old.expires < _SAME_WRITE
        ):
            return
        value = json.dumps([provider, profile, self._to_server(now), round(ttl * 1000)])
        self._write(key, value, round((ttl + EXPIRED_KEPT) * 1000))

    def size(self) -> int:
        return self.book.size()

    def snapshot(self, now: float) -> dict[str, dict[str, int]]:
        """This instance's view: the conversations it served or looked up."""
        return self.book.snapshot(now)

    def drop_providers(self, names: Collection[str]) -> int:
        return self.book.drop_providers(names)

    # -- what Redis said -----------------------------------------------------------------------

    def adopt(self, key: str, raw: Any) -> Binding | None:
        """A value read from Redis on a request's path. Unreadable or absent: the mirror
        stands (Redis may have restarted empty; its own entry is as good as any)."""
        remote = decode(raw, self._to_mono)
        if remote is None:
            return None
        mine = self.book.get(key, remote.expires).binding
        if mine is not None and mine.expires - mine.ttl >= remote.expires - remote.ttl:
            return mine  # ours is as new or newer (its write may still be queued)
        self.book.bind(key, remote.provider, remote.profile, remote.ttl,
                       remote.expires - remote.ttl)  # fmt: skip
        return remote


def decode(raw: Any, to_mono: Callable[[int], float]) -> Binding | None:
    if raw is None:
        return None
    try:
        provider, profile, bound_ms, ttl_ms = json.loads(raw)
        ttl = int(ttl_ms) / 1000
        return Binding(str(provider), str(profile), to_mono(int(bound_ms)) + ttl, ttl)
    except (ValueError, TypeError):
        return None  # another version's value, or garbage: not fatal
