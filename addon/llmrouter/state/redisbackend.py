"""The Redis backend: this instance's books (health, latency, bindings), shared through Redis.

It publishes what this instance learns, adopts what the others learn (`SharedStore`'s Sink),
and answers from the local books whenever Redis is slow or down: the breaker makes that cost
one timeout, once. Budgets are decided in Redis (one script per request, in the same round
trip as the conversation's binding), and on the instance's share while Redis is away
(`outage.OutageLimits`). docs/SHARED.md tells the design.
"""

from __future__ import annotations

import asyncio
import itertools
import random
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, Unpack

from llmrouter.schema import Shared
from llmrouter.state.backends import LocalBackend
from llmrouter.state.clusterledger import ClusterLedger
from llmrouter.state.health import AttemptEnd, HealthSettings
from llmrouter.state.latencyview import LatencyView
from llmrouter.state.limits import Denial, Grant
from llmrouter.state.limittypes import Begun, Reservation, booked
from llmrouter.state.outage import OutageLimits
from llmrouter.state.shared import SharedStore
from llmrouter.state.sharedbindings import SharedBindings
from llmrouter.wire.outcome import Failure

_UNSHARED = frozenset({Failure.AUTH})  # a refused key is this instance's key: not news to others
_SLACK = 0.05  # s: a remote deadline converted to this clock may be off by a little


class SharedLimits:
    """Engine.limits with a shared store: reserve through `begin`, settle and release through
    the backend (the background queue), the cluster's spend for router.status."""

    def __init__(self, backend: RedisBackend) -> None:
        self._backend = backend
        self.ledger = backend.ledger
        self.ready = asyncio.Event()
        self.ready.set()

    async def reserve(self, r: Reservation, now_unix: float) -> Grant | Denial:
        verdict = (await self._backend.begin((), r, now_unix)).verdict
        assert verdict is not None  # a reservation always gets one
        return verdict

    def settle(self, grant: Grant, actual_micro: int, now_unix: float) -> None:
        self._backend.settle(grant, actual_micro, now_unix)

    def release(self, grant: Grant, now_unix: float) -> None:
        self._backend.release(grant, now_unix)

    def rebuilding(self, path: Path, backups: int) -> None:
        """Nothing to rebuild: the cluster's spend is in Redis. This instance's journal holds
        only its own lines; adding them would count them twice."""
        return None


class RedisBackend(LocalBackend):
    """The local books, shared through Redis; local answers whenever Redis cannot answer."""

    def __init__(
        self,
        shared: Shared,
        url: str | None = None,
        settings: HealthSettings | None = None,
        *,
        tick: float = 0.25,
    ) -> None:
        super().__init__(None, settings)
        self.shared = shared
        # Round-robin stays local; instances started together must not all begin with the
        # same candidate (docs/SHARED.md).
        self.offset = random.randrange(1 << 16)
        self.shares = OutageLimits(shared.on_outage)
        self.ledger = ClusterLedger()
        self.store = SharedStore(
            url or shared.redis.get_secret_value(),
            shared.prefix,
            self,
            timeout=shared.timeout,
            lease=shared.lease,
            queue_max=shared.queue_max,
            probe_lease=self.health.settings.probe_lease,
            tick=tick,
        )
        self.latency: LatencyView = LatencyView()
        self.bindings: SharedBindings = SharedBindings(
            self.store.bind, self.store.to_server, self.store.to_mono
        )
        self.limits = SharedLimits(self)
        self._ids = itertools.count(1)

    async def start(self) -> None:
        await self.store.start()

    async def stop(self) -> None:
        await self.store.stop()

    def watch(self, provider_keys: Iterable[str], users: Iterable[str] = ()) -> None:
        super().watch(provider_keys)
        self.store.watch(self.watched, users)

    async def begin(
        self, conversations: Sequence[str], reservation: Reservation | None, now_unix: float
    ) -> Begun:
        free = None  # a user without limits: nothing to decide (settling still books the spend)
        if reservation is not None and not reservation.windows:
            user, reservation = reservation.user, None
            free = Grant(f"u{self.store.instance}-{next(self._ids)}", user, 0, (), now_unix)
        if not conversations and reservation is None:
            return Begun(free)
        got = await self.store.begin(conversations, reservation, now_unix)
        if got is None:  # Redis slow or down: the mirror's bindings and this instance's share
            if reservation is None:
                return Begun(free, local=True)
            r, retry = reservation, max(1.0, self.store.link.breaker.next_retry - time.monotonic())
            return Begun(self.shares.reserve(r.user, r.windows, r.amount, now_unix, retry),
                         local=True)  # fmt: skip
        values, verdict, used = got
        for key, value in zip(conversations, values, strict=True):
            self.bindings.adopt(key, value)
        if reservation is None:
            return Begun(free)
        for w, u in zip(reservation.windows, used, strict=False):  # for an outage's shares
            self.shares.learned(reservation.user, w, u)
        return Begun(verdict)

    async def acquire(self, key: str, now: float, *, force: bool = False) -> bool | None:
        probe = self.health.acquire(key, now, force=force)
        if probe is not True:
            return probe
        got = await self.store.claim(key)
        if got is None:
            return True  # Redis cannot say: the local decision stands
        state, value = got
        if state == "mine":
            return True
        mono = time.monotonic()
        self.health.defer_probe(key, 0.0)
        if state == "ok":  # another instance proved it healthy
            self.health.probe_passed(key)
            return False
        if state == "cooling":
            self.health.adopt(key, value, mono, "shared")
        else:  # another instance is probing: ask again in a moment (or hear its verdict)
            self.health.defer_probe(key, mono + min(value, 1.0))
        return False if force else None

    def record(
        self, key: str, now: float, failure: Failure, **end: Unpack[AttemptEnd]
    ) -> float | None:
        h = self.health.get(key)
        was_down = h.until > now or h.needs_probe
        cool = super().record(key, now, failure, **end)
        probe, judged = end.get("probe", False), end.get("judged", True)  # HealthBook's defaults
        started = end.get("started")
        if cool is not None:
            if failure not in _UNSHARED:
                self.store.cool(key, self.health.until(key), failure.value)
            elif probe:
                self.store.unclaim(key)  # our verdict does not hold for the others' keys
        elif was_down and judged and not (h.until > now or h.needs_probe):
            self.store.ok(key, started if started is not None else now)
        elif probe and not judged:
            self.store.unclaim(key)
        return cool

    def probe_passed(self, key: str, started: float) -> None:
        h = self.health.get(key)
        was_down = h.until > time.monotonic() or h.needs_probe
        super().probe_passed(key, started)
        if was_down:
            self.store.ok(key, started)

    def settle(self, grant: Grant, actual_micro: int, now_unix: float) -> None:
        if not self.shares.settle(grant, actual_micro, now_unix):
            self.store.settle(grant, actual_micro, now_unix)
        elif actual_micro > 0:  # made on local state: Redis books it once it is back
            for w in booked(grant.at, now_unix):
                self.store.spend(grant.user, w.key, actual_micro, w.reset_at)

    def release(self, grant: Grant, now_unix: float) -> None:
        if not self.shares.release(grant, now_unix):
            self.store.release(grant)

    def status(self) -> dict[str, Any]:
        out = self.store.status()
        out.update(on_outage=self.shared.on_outage, bindings=self.bindings.size())
        return out

    # -- what the store learns (SharedStore's Sink) -------------------------------------------

    def cooldown(self, provider: str, until: float, reason: str) -> None:
        self.health.adopt(provider, until, time.monotonic(), reason)

    def recovered(self, provider: str) -> None:
        """Another instance proved the provider healthy. A cooldown of ours that is later
        than the shared one is news Redis has not seen yet: it stands."""
        adopted = self.store.adopted_until(provider)
        if self.health.until(provider) <= max(time.monotonic(), adopted + _SLACK):
            self.health.probe_passed(provider)

    def remote_latency(self, blobs: dict[str, Any]) -> None:
        self.latency.remote(blobs)

    def cooldowns(self) -> list[tuple[str, float, str]]:
        now = time.monotonic()
        out = []
        for key in self.watched:
            until = self.health.until(key)
            if until > now:
                out.append((key, until, self.health.get(key).last_error or "shared"))
        return out

    def latency_blob(self) -> str | None:
        return self.latency.blob()

    def outage(self) -> None:
        self.shares.new_outage(len(self.store.live))

    def spend(self, usd: dict[tuple[str, str], tuple[int, int, int]], rpm: dict[str, int]) -> None:
        self.ledger.replace(usd, rpm)
