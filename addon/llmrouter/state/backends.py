"""The routing state behind one interface: health, latency, conversation bindings, limits.

`LocalBackend` keeps everything in this process (no `shared:` in the config): what a single
router has always done, with nothing of Redis on its path. `RedisBackend` (redisbackend.py)
keeps the same local books and shares them through Redis: it publishes what this instance
learns, adopts what the others learn, and answers from the local books whenever Redis is slow
or down. The engine talks to either the same way:

    begun = await state.begin(conversations, reservation, time.time())  # the one round trip
    state.bindings.get(...) / .bind(...)                                  # affinity.Bindings
    probe = await state.acquire(key, now, force=forced)                   # per attempt
    state.record(key, now, failure, ...) / state.probe_passed(key, started)
    state.latency.record_ok(...) / .get(key, model, stream)              # merged with Redis
    state.limits.settle(grant, micro) / .release(grant)                  # limitdoor.LimitsDoor

Times: `now` is monotonic seconds (as in health.py), `now_unix` wall seconds (limits, latency).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any, Protocol, Unpack

from llmrouter.routing.affinity import BindingBook
from llmrouter.schema import Shared
from llmrouter.state.health import AttemptEnd, HealthBook, HealthSettings
from llmrouter.state.latency import LatencyBook, Series
from llmrouter.state.limitdoor import LimitsDoor, LocalLimits
from llmrouter.state.limittypes import Begun, Reservation
from llmrouter.wire.outcome import Failure

if TYPE_CHECKING:
    from llmrouter.routing.affinity import Lookup
    from llmrouter.state.latency import Figures
    from llmrouter.state.latencyview import MergedSeries


class LatencyLike(Protocol):
    """LatencyBook's API; the Redis backend's LatencyView answers `get` for the cluster."""

    def get(self, key: str, model: str | None, stream: bool) -> Series | MergedSeries | None: ...
    def record_ok(self, key: str, model: str | None, stream: bool, now: float, *,
                  ttft_ms: float | None = None, total_ms: float | None = None,
                  output_tokens: int | None = None) -> None: ...  # fmt: skip
    def record_failure(self, key: str, model: str | None, stream: bool, now: float) -> None: ...
    def retain(self, keys: set[str]) -> None: ...
    def count(self, key: str) -> int: ...
    def summary(self, key: str, limit: int | None = None) -> dict[str, Figures]: ...


class BindingsLike(Protocol):
    """affinity.Bindings plus what the planner and router.status use of a BindingBook."""

    cap: int

    def get(self, key: str, now: float, *, compaction: bool = False) -> Lookup: ...
    def bind(self, key: str, provider: str, profile: str, ttl: float, now: float) -> None: ...
    def size(self) -> int: ...
    def snapshot(self, now: float) -> dict[str, dict[str, int]]: ...
    def drop_providers(self, names: Iterable[str]) -> int: ...


class StateBackend(Protocol):
    """What the engine asks of the routing state, whichever backend keeps it."""

    health: HealthBook  # read directly by selection: available(), until(), get()
    latency: LatencyLike
    bindings: BindingsLike  # the planner's conversation bindings
    limits: LimitsDoor  # Engine.limits: settle, release, the ledger router.status reads
    offset: int  # where this instance starts its round-robin counters

    async def start(self) -> None: ...
    async def stop(self) -> None: ...
    def watch(self, provider_keys: Iterable[str], users: Iterable[str] = ()) -> None: ...
    async def begin(
        self, conversations: Sequence[str], reservation: Reservation | None, now_unix: float
    ) -> Begun: ...
    async def acquire(self, key: str, now: float, *, force: bool = False) -> bool | None: ...
    def record(
        self, key: str, now: float, failure: Failure, **end: Unpack[AttemptEnd]
    ) -> float | None: ...
    def probe_passed(self, key: str, started: float) -> None: ...
    def status(self) -> dict[str, Any]: ...


class LocalBackend:
    """Everything in this process: what a single router instance has always done."""

    offset = 0  # round-robin starts at the first candidate, as it always has

    def __init__(
        self, limits: LimitsDoor | None = None, settings: HealthSettings | None = None
    ) -> None:
        self.health = HealthBook(settings)
        self.latency: LatencyLike = LatencyBook()
        self.bindings: BindingsLike = BindingBook()
        self.limits: LimitsDoor = limits if limits is not None else LocalLimits()
        self.watched: set[str] = set()

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        return None

    def watch(self, provider_keys: Iterable[str], users: Iterable[str] = ()) -> None:
        """The providers and users of the current config (call after every (re)load)."""
        self.watched = set(provider_keys)

    async def begin(
        self, conversations: Sequence[str], reservation: Reservation | None, now_unix: float
    ) -> Begun:
        """The bindings are in `self.bindings` already; the reservation is the ledger's."""
        if reservation is None:
            return Begun(local=True)
        return Begun(await self.limits.reserve(reservation, now_unix), local=True)

    async def acquire(self, key: str, now: float, *, force: bool = False) -> bool | None:
        return self.health.acquire(key, now, force=force)

    def record(
        self, key: str, now: float, failure: Failure, **end: Unpack[AttemptEnd]
    ) -> float | None:
        return self.health.record(key, now, failure, **end)

    def probe_passed(self, key: str, started: float) -> None:
        self.health.probe_passed(key)

    def status(self) -> dict[str, Any]:
        return {"backend": "local"}


def status_line(status: dict[str, Any]) -> str | None:
    """One line for router.status: where shared state lives and how it is doing (None for a
    local store: router.status stays as a single router's always was)."""
    if status.get("backend") != "redis":
        return None
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
    limits: LimitsDoor | None = None,
) -> StateBackend:  # fmt: skip
    """The backend a config asks for: `url` (the router_redis option) overrides shared.redis
    and turns sharing on even without a `shared:` block. `limits` is the local door (the
    journal's spend); a shared store keeps the cluster's instead."""
    if shared is None and not url:
        return LocalBackend(limits, settings)
    from llmrouter.state.redisbackend import RedisBackend  # redis-py only when it is used

    if shared is None:
        shared = Shared.model_validate({"redis": url})
    return RedisBackend(shared, url, settings)
