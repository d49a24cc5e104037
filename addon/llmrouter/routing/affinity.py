"""Conversation affinity: keep a conversation on the provider that holds its prompt cache.

Two parts:
- `rendezvous`: weighted highest-random-weight hashing of a conversation key over candidates.
  Every instance and every parallel first request of a conversation computes the same order
  with no shared state, and over many conversations each candidate is first in proportion to
  its weight. Removing a candidate moves only the conversations it held.
- `BindingBook`: conversation key -> the provider that last served it, written only after a
  success (a 2xx, or a stream past its commit point), sliding by the cache TTL at each success,
  LRU-capped. While bound, the bound provider goes first and the rest keep the strategy's order;
  a binding never puts back a provider that health or `enabled` left out.

Pure: time is passed in; no I/O. A shared backend (Redis) implements the same `Bindings`
protocol: get, bind, size, snapshot.
"""

from __future__ import annotations

import hashlib
import math
from collections import OrderedDict
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Literal, Protocol

State = Literal["new", "bound", "rebound", "expired"]
DEFAULT_CAP = 100_000


# -- rendezvous -------------------------------------------------------------------------------


def _unit(key: str, name: str) -> float:
    """A uniform draw in (0, 1) that depends only on (key, name)."""
    h = hashlib.blake2b(f"{key}\0{name}".encode(), digest_size=8).digest()
    return (int.from_bytes(h, "big") + 0.5) / 2.0**64


def score(key: str, name: str, weight: float) -> float:
    """Weighted HRW score: -w / ln(u). The highest wins; P(first) = w / sum(w)."""
    if weight <= 0:
        return 0.0
    return -weight / math.log(_unit(key, name))


def rendezvous(key: str, names: Sequence[str], weights: Sequence[float] | None = None) -> list[str]:
    """`names` ordered by rendezvous score for `key`, highest first.

    `weights` None or all zero: uniform. A zero weight next to positive ones is never first
    and goes last, in configured order (a stable sort).
    """
    if weights is None or not any(w > 0 for w in weights):
        weights = [1.0] * len(names)
    scores = {n: score(key, n, w) for n, w in zip(names, weights, strict=True)}
    return sorted(names, key=lambda n: -scores[n])


# -- bindings ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Binding:
    provider: str
    profile: str  # for per-profile counts in router.status; not a secret
    expires: float  # clock of the caller (time.monotonic() locally, wall time in Redis)
    ttl: float


@dataclass(frozen=True, slots=True)
class Lookup:
    """What the book knew about a conversation when the request arrived."""

    binding: Binding | None  # None: a new conversation
    expired: bool = False  # it had a binding, past its TTL (or dropped for a compaction)

    @property
    def bound(self) -> str | None:
        """The provider to put first, if any."""
        return None if self.binding is None or self.expired else self.binding.provider

    def state(self, provider: str) -> State:
        """The JSONL `affinity` of an attempt at `provider`."""
        if self.binding is None:
            return "new"
        if self.expired:
            return "expired"
        return "bound" if provider == self.binding.provider else "rebound"

    def order(self, order: Sequence[str], available: Collection[str]) -> tuple[str, ...]:
        """`order` with the bound provider first, if it is in `available` (healthy, enabled,
        not filtered out); otherwise unchanged: a binding never blocks failover.

        Every strategy keeps a live binding: least-latency and least-cost choose again only
        once it expired or the client compacts (`get(..., compaction=True)`).
        """
        bound = self.bound
        if bound is None or bound not in available or bound not in order or order[0] == bound:
            return tuple(order)
        return (bound, *(n for n in order if n != bound))


class Bindings(Protocol):
    """The state interface: a local book here, a shared one elsewhere."""

    def get(self, key: str, now: float, *, compaction: bool = False) -> Lookup: ...

    def bind(self, key: str, provider: str, profile: str, ttl: float, now: float) -> None: ...

    def size(self) -> int: ...

    def snapshot(self, now: float) -> dict[str, dict[str, int]]: ...


class BindingBook:
    """Local bindings: an LRU of at most `cap` conversations.

    An expired binding is kept (so its next request reads `expired`, not `new`) until it is
    rebound or pushed out by the LRU. Memory: about 250 bytes a binding, key included (100,000:
    ~24 MiB, tracemalloc; `make bench` section 11).
    """

    def __init__(self, cap: int = DEFAULT_CAP) -> None:
        self.cap = cap
        self._items: OrderedDict[str, Binding] = OrderedDict()

    def get(self, key: str, now: float, *, compaction: bool = False) -> Lookup:
        b = self._items.get(key)
        if b is None:
            return Lookup(None)
        self._items.move_to_end(key)
        return Lookup(b, expired=compaction or now >= b.expires)

    def bind(self, key: str, provider: str, profile: str, ttl: float, now: float) -> None:
        """After a success only: (re)bind and slide the TTL."""
        self._items[key] = Binding(provider, profile, now + ttl, ttl)
        self._items.move_to_end(key)
        while len(self._items) > self.cap:
            self._items.popitem(last=False)

    def size(self) -> int:
        return len(self._items)

    def snapshot(self, now: float) -> dict[str, dict[str, int]]:
        """Live bindings per profile and provider: {"work": {"a": 12, "b": 9}}."""
        out: dict[str, dict[str, int]] = {}
        for b in self._items.values():
            if now < b.expires:
                per = out.setdefault(b.profile, {})
                per[b.provider] = per.get(b.provider, 0) + 1
        return out

    def drop_providers(self, names: Collection[str]) -> int:
        """Forget bindings to providers that left the config or changed base_url (reload)."""
        gone = [k for k, b in self._items.items() if b.provider in names]
        for k in gone:
            del self._items[k]
        return len(gone)


@dataclass(slots=True)
class Pin:
    """One request's view of its conversation's binding: asked for the order, each attempt's
    `affinity` state, and told of the success that (re)binds it. Nothing else ever binds."""

    book: Bindings
    key: str
    profile: str
    ttl: float  # the policy's affinity_ttl, else the request's cache TTL
    lookup: Lookup

    def order(self, order: Sequence[str], available: Collection[str]) -> tuple[str, ...]:
        return self.lookup.order(order, available)

    def state(self, provider: str) -> State:
        return self.lookup.state(provider)

    def success(self, provider: str, now: float) -> None:
        """A 2xx answer, or a stream past its commit point, from `provider`."""
        self.book.bind(self.key, provider, self.profile, self.ttl, now)


def pin(
    book: Bindings, key: str, profile: str, ttl: float, now: float, *, compaction: bool = False
) -> Pin:
    """Look the conversation up once, when the request arrives."""
    return Pin(book, key, profile, ttl, book.get(key, now, compaction=compaction))
