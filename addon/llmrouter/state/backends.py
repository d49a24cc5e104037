"""The routing state behind one interface: health, latency, conversation bindings, limits.

`LocalBackend` keeps everything in this process (no `shared:` in the config). `RedisBackend`
keeps the same local books and shares them through Redis (`state/shared.py`): it publishes
what this instance learns, adopts what the others learn, and answers from the local books
whenever Redis is slow or down. The engine talks to either the same way:

    begun = await state.begin(conversation, reservation, time.time())   # the one round trip
    probe = await state.acquire(key, now, force=forced)                  # per attempt
    state.record(key, now, failure, ...) / state.probe_passed(key, started)
    state.latency.record_ok(...) / .record_failure(...) / .get(key, model, stream)  # merged
    state.bind(conversation, provider, ttl); state.settle(grant, micro) / state.release(grant)

Times: `now` is monotonic seconds (as in health.py), `now_unix` wall seconds (limits, latency).
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Iterable
from typing import Any, Protocol

from llmrouter.schema import Shared
from llmrouter.state.health import HealthBook, HealthSettings
from llmrouter.state.latencyview import LatencyView
from llmrouter.state.limits import Ledger
from llmrouter.state.limittypes import Begun, Grant, LedgerLike, Reservation, booked
from llmrouter.state.outage import OutageLimits
from llmrouter.state.shared import SharedStore
from llmrouter.wire.outcome import Failure

_BINDINGS_MAX = 100_000
_UNSHARED = frozenset({Failure.AUTH})  # a refused key is this instance's key: not news to others
_SLACK = 0.05  # s: a remote deadline converted to this clock may be off by a little


class StateBackend(Protocol):
    """What the engine asks of the routing state, whichever backend keeps it."""

    health: HealthBook  # read directly by selection: available(), until(), get()
    latency: LatencyView  # LatencyBook's API; .get() answers for the whole cluster

    async def start(self) -> None: ...
    async def stop(self) -> None: ...
    def watch(self, provider_keys: Iterable[str]) -> None: ...
    async def begin(
        self, conversation: str | None, reservation: Reservation | None, now_unix: float
    ) -> Begun: ...
    async def acquire(self, key: str, now: float, *, force: bool = False) -> bool | None: ...
    def record(
        self, key: str, now: float, failure: Failure, *, retry_after: float | None = None,
        probe: bool = False, judged: bool = True, started: float | None = None,
    ) -> float | None: ...  # fmt: skip
    def probe_passed(self, key: str, started: float) -> None: ...
    def bind(self, conversation: str, provider: str, ttl: float) -> None: ...
    def settle(self, grant: Grant, actual_micro: int, now_unix: float) -> None: ...
    def release(self, grant: Grant, now_unix: float) -> None: ...
    def status(self) -> dict[str, Any]: ...


class LocalBindings:
    """Conversation -> provider, each with its TTL; the oldest go first past `max_entries`."""

    def __init__(self, max_entries: int = _BINDINGS_MAX) -> None:
        self.max_entries = max_entries
        self._d: OrderedDict[str, tuple[str, float]] = OrderedDict()

    def get(self, conversation: str, now: float) -> str | None:
        hit = self._d.get(conversation)
        if hit is None:
            return None
        if hit[1] <= now:
            del self._d[conversation]
            return None
        return hit[0]

    def peek(self, conversation: str) -> tuple[str, float] | None:
        """(provider, expiry) as stored, expired or not."""
        return self._d.get(conversation)

    def set(self, conversation: str, provider: str, ttl: float, now: float) -> None:
        self._d.pop(conversation, None)
        self._d[conversation] = (provider, now + ttl)
        while len(self._d) > self.max_entries:
            self._d.popitem(last=False)

    def __len__(self) -> int:
        return len(self._d)


class LocalBackend:
    """Everything in this process: what a single router instance has always done."""

    def __init__(
        self, ledger: LedgerLike | None = None, settings: HealthSettings | None = None
    ) -> None:
        self.health = HealthBook(settings)
        self.latency = LatencyView()
        self.bindings = LocalBindings()
        self.ledger: LedgerLike = ledger if ledger is not None else Ledger()
        self.watched: set[str] = set()

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        return None

    def watch(self, provider_keys: Iterable[str]) -> None:
        """The providers of the current config (call after every (re)load)."""
        self.watched = set(provider_keys)

    async def begin(
        self, conversation: str | None, reservation: Reservation | None, now_unix: float
    ) -> Begun:
        binding = None
        if conversation is not None:
            binding = self.bindings.get(conversation, time.monotonic())
        verdict = None
        if reservation is not None:
            r = reservation
            verdict = self.ledger.reserve(r.user, list(r.windows), r.amount, now_unix)
        return Begun(binding, verdict, local=True)

    async def acquire(self, key: str, now: float, *, force: bool = False) -> bool | None:
        return self.health.acquire(key, now, force=force)

    def record(
        self,
        key: str,
        now: float,
        failure: Failure,
        *,
        retry_after: float | None = None,
        probe: bool = False,
        judged: bool = True,
        started: float | None = None,
    ) -> float | None:
        return self.health.record(
            key, now, failure, retry_after=retry_after, probe=probe, judged=judged, started=started
        )

    def probe_passed(self, key: str, started: float) -> None:
        self.health.probe_passed(key)

    def bind(self, conversation: str, provider: str, ttl: float) -> None:
        self.bindings.set(conversation, provider, ttl, time.monotonic())

    def settle(self, grant: Grant, actual_micro: int, now_unix: float) -> None:
        self.ledger.settle(grant, actual_micro, now_unix)

    def release(self, grant: Grant, now_unix: float) -> None:
        self.ledger.release(grant, now_unix)

    def status(self) -> dict[str, Any]:
        return {"backend": "local", "bindings": len(self.bindings)}


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
        self.limits = OutageLimits(shared.on_outage)
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

    async def start(self) -> None:
        await self.store.start()

    async def stop(self) -> None:
        await self.store.stop()

    def watch(self, provider_keys: Iterable[str]) -> None:
        super().watch(provider_keys)
        self.store.watch(self.watched)

    async def begin(
        self, conversation: str | None, reservation: Reservation | None, now_unix: float
    ) -> Begun:
        if conversation is None and reservation is None:
            return Begun()
        got = await self.store.begin(conversation, reservation, now_unix)
        if got is None:  # Redis slow or down: this instance's bindings and its budget share
            binding = None
            if conversation is not None:
                binding = self.bindings.get(conversation, time.monotonic())
            verdict = None
            if reservation is not None:
                r, b = reservation, self.store.link.breaker
                retry = max(1.0, b.next_retry - time.monotonic())
                verdict = self.limits.reserve(r.user, r.windows, r.amount, now_unix, retry)
            return Begun(binding, verdict, local=True)
        binding, verdict, used = got
        if reservation is not None:  # what the cluster used, for an outage's shares
            r = reservation
            for w, u in zip(r.windows, used, strict=False):
                self.limits.learned(r.user, w, u)
        return Begun(binding, verdict)

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
        self,
        key: str,
        now: float,
        failure: Failure,
        *,
        retry_after: float | None = None,
        probe: bool = False,
        judged: bool = True,
        started: float | None = None,
    ) -> float | None:
        h = self.health.get(key)
        was_down = h.until > now or h.needs_probe
        cool = super().record(
            key, now, failure, retry_after=retry_after, probe=probe, judged=judged, started=started
        )
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

    def bind(self, conversation: str, provider: str, ttl: float) -> None:
        """Every turn refreshes its binding; Redis hears of it when the provider changed or a
        tenth of the TTL has passed since it last heard (not one write per turn)."""
        hit = self.bindings.peek(conversation)
        if hit is not None and hit[0] == provider and hit[1] - time.monotonic() > 0.9 * ttl:
            return
        super().bind(conversation, provider, ttl)
        self.store.bind(conversation, provider, ttl)

    def settle(self, grant: Grant, actual_micro: int, now_unix: float) -> None:
        if not self.limits.settle(grant, actual_micro, now_unix):
            self.store.settle(grant, actual_micro, now_unix)
        elif actual_micro > 0:  # made on local state: Redis books it once it is back
            for w in booked(grant.at, now_unix):
                self.store.spend(grant.user, w.key, actual_micro, w.reset_at)

    def release(self, grant: Grant, now_unix: float) -> None:
        if not self.limits.release(grant, now_unix):
            self.store.release(grant)

    def status(self) -> dict[str, Any]:
        out = self.store.status()
        out.update(on_outage=self.shared.on_outage, bindings=len(self.bindings))
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
        self.limits.new_outage(len(self.store.live))


def status_line(status: dict[str, Any]) -> str:
    """One line for router.status: where shared state lives and how it is doing."""
    if status.get("backend") != "redis":
        return "shared state: local (no shared: in the config)"
    s = status
    since = f" for {s['for_s']:.0f}s" if s.get("for_s") is not None else ""
    line = (
        f"shared state: {s['redis']} {s['state']}{since}, {s['instances']} instances live, "
        f"queue {s['queue']}/{s['queue_max']}, dropped {s['dropped']}, leases {s['leases']}"
    )
    if s["state"] != "connected":
        line += f"; budgets {s['on_outage']}; last error: {s['last_error']}"
    if s.get("failed"):
        line += f"; {s['failed']} writes refused by Redis (see the log)"
    return line


def make_backend(
    shared: Shared | None, url: str | None = None, settings: HealthSettings | None = None,
    ledger: LedgerLike | None = None,
) -> StateBackend:  # fmt: skip
    """The backend a config asks for: `url` (the router_redis option) overrides shared.redis
    and turns sharing on even without a `shared:` block."""
    if shared is None and not url:
        return LocalBackend(ledger, settings)
    if shared is None:
        shared = Shared.model_validate({"redis": url})
    return RedisBackend(shared, url, settings)
