"""Keeping an instance in step with the others: heartbeat, the backstop read, lease renewal,
latency exchange, recovery and resync after an outage, and the pub/sub listener.

Every `tick` s (0.25 by default) one pipeline beats the heartbeat (and reads the live
instances and the server's clock), reads each watched provider's cooldown and probe marker
(the backstop of pub/sub: an instance learns within a tick even when a message is lost),
renews this instance's budget leases, and every ~2 s pushes its latency windows and pulls the
others' and reads the configured users' spend (router.status shows the cluster's).
While the breaker is open it retries Redis with backoff; on success it resyncs:
scripts loaded, heartbeat, remote cooldowns in, this instance's cooldowns out (Redis may have
restarted empty), queued writes flushed, pub/sub resubscribed.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from typing import TYPE_CHECKING, Any, Protocol

from llmrouter.state.limits import Window
from llmrouter.state.limittypes import booked
from llmrouter.state.redislink import Commands

if TYPE_CHECKING:
    from llmrouter.state.shared import SharedStore

logger = logging.getLogger("llmrouter")

LATENCY_TTL_MS = 60_000


class Sink(Protocol):
    """What the backend does with what the store learns (times are local monotonic)."""

    def cooldown(self, provider: str, until: float, reason: str) -> None: ...
    def recovered(self, provider: str) -> None: ...
    def remote_latency(self, blobs: dict[str, Any]) -> None: ...
    def cooldowns(self) -> list[tuple[str, float, str]]: ...
    def latency_blob(self) -> str | None: ...
    def outage(self) -> None: ...
    def spend(self, usd: dict[tuple[str, str], tuple[int, int, int]],
              rpm: dict[str, int]) -> None: ...  # fmt: skip


def text(v: Any) -> str | None:
    return v.decode() if isinstance(v, bytes) else v


def _spend(
    users: list[str], windows: list[Window], replies: list[Any]
) -> tuple[dict[tuple[str, str], tuple[int, int, int]], dict[str, int]]:
    """Users' counters as read: (user, window key) -> (spent, held, leases); user -> rpm."""
    usd: dict[tuple[str, str], tuple[int, int, int]] = {}
    rpm: dict[str, int] = {}
    it = iter(replies)
    for user in users:
        for w in windows:
            v = next(it)
            if isinstance(v, list) and len(v) == 3:
                s, h, n = (int(x) if x is not None else 0 for x in v)
                usd[user, w.key] = (s, h, n)
        v = next(it)
        if isinstance(v, int):
            rpm[user] = v
    return usd, rpm


class Sync:
    def __init__(self, store: SharedStore, *, latency_every: float, lease: float) -> None:
        self.store = store
        self._full_every = max(1, round(latency_every / store.tick))
        self._renew_every = max(1, min(self._full_every, int(lease / 3 / store.tick)))
        self.epoch = 0  # resyncs so far: a listener from before the last one is stale
        self._crashed = False

    async def ticker(self) -> None:
        st = self.store
        n = 0
        while True:
            b = st.link.breaker
            wait = st.tick
            if not b.closed:
                wait = max(0.01, min(wait, b.next_retry - time.monotonic()))
            await asyncio.sleep(wait)
            try:
                if st.link.up:
                    if st.outbox:
                        st.kick()  # a batch whose reply came too late is sent again
                    n += 1
                    latency, renew = n % self._full_every == 0, n % self._renew_every == 0
                    await self.sync(latency=latency, renew=renew)
                elif b.due(time.monotonic()):
                    await self.resync()
            except Exception:  # a bug must not stop the heartbeat for good: say it once
                if not self._crashed:
                    self._crashed = True
                    logger.exception("router: shared state: sync failed")

    async def sync(self, *, latency: bool, renew: bool, force: bool = False) -> bool:
        st = self.store
        k, providers = st.keys, sorted(st.providers)
        stale = int(max(5.0, 10 * st.tick) * 1000)  # an instance silent this long is gone
        others = [i for i in st.live if i != st.instance] if latency else []
        blob = st.sink.latency_blob() if latency else None
        by_user: dict[str, list[str]] = {}
        if renew:
            for gid, g in st.held.items():
                by_user.setdefault(g.user, []).append(gid)
        users = st.users if latency else []  # their spend, for router.status
        windows = booked(time.time(), time.time()) if users else []
        minute_ago = st.to_server(time.monotonic()) - 60_000

        def fill(p: Commands) -> None:
            p.evalsha("heartbeat", [k.instances], [st.instance, stale, LATENCY_TTL_MS])
            for prov in providers:
                p.hget(k.cool(prov), "d")
                p.hget(k.cool(prov), "r")
                p.get(k.probe(prov))
            for user, gids in by_user.items():
                keys = [k.lease(user), k.lease_expiry(user)]
                p.evalsha("renew", keys, [st.lease_ms, *gids])
            for user in users:
                for w in windows:
                    p.hmget(k.limit(user, w.key), ("s", "h", "n"))
                p.zcount(k.limit(user, "rpm"), minute_ago)
            if blob is not None:
                p.set(k.latency(st.instance), blob, px=LATENCY_TTL_MS)
            if others:
                p.mget([k.latency(i) for i in others])

        t0 = time.monotonic()
        out = await st.link.call(fill, force=force)
        if out is None or isinstance(out[0], Exception):
            return False
        t1 = time.monotonic()
        st.offset_ms = int(out[0][0]) - (t0 + t1) * 500
        st.live = [text(i) or "" for i in out[0][1]]
        for i, prov in enumerate(providers):
            d, r, probe = out[1 + 3 * i : 4 + 3 * i]
            if isinstance(d, bytes | str) and int(d) > st.adopted.get(prov, 0):
                st.adopted[prov] = int(d)
                st.sink.cooldown(prov, st.to_mono(int(d)), text(r) or "shared")
            elif text(probe) == "ok" and not st.outbox.has("cool", prov):
                st.sink.recovered(prov)
        if users:
            at = 1 + 3 * len(providers) + len(by_user)
            st.sink.spend(*_spend(users, windows, out[at : at + len(users) * (len(windows) + 1)]))
        if others:
            raw = out[-1]
            if not isinstance(raw, Exception):
                blobs = {}
                for inst, v in zip(others, raw, strict=True):
                    if v is not None:
                        with contextlib.suppress(ValueError):
                            blobs[inst] = json.loads(v)
                st.sink.remote_latency(blobs)
        return True

    async def resync(self) -> None:
        st = self.store
        if not await st.link.recover():
            return
        if not await self.sync(latency=True, renew=True, force=True):
            return
        for prov, until, reason in st.sink.cooldowns():
            if prov in st.providers:
                st.cool(prov, until, reason)  # Redis may have restarted empty
        self.epoch += 1
        st.link.closed(f"; instances live: {len(st.live)}")
        st.up.set()
        st.kick()

    async def listener(self) -> None:
        st = self.store
        while True:
            await st.up.wait()
            epoch = self.epoch
            ps = st.link.client.pubsub(ignore_subscribe_messages=True)
            try:
                async with asyncio.timeout(st.link.timeout * 4):
                    await ps.subscribe(st.keys.channel)
                while st.link.up and epoch == self.epoch:
                    msg = await ps.get_message(timeout=1.0)
                    if msg is not None:
                        self.event(msg.get("data"))
            except asyncio.CancelledError:
                raise
            except TimeoutError:  # slow, not broken (a busy loop): calls decide about outages
                await asyncio.sleep(st.tick)
            except Exception as e:  # the connection broke: the breaker decides what is next
                if epoch == self.epoch:  # not the resync closing a connection of the outage
                    st.link.failed(e)
            finally:
                with contextlib.suppress(Exception):
                    async with asyncio.timeout(st.link.timeout * 4):
                        await ps.aclose()

    def event(self, data: Any) -> None:
        st = self.store
        try:
            ev = json.loads(data)
            kind, prov, by = ev["t"], ev["p"], ev.get("by")
        except (ValueError, TypeError, KeyError):
            return
        if by == st.instance or prov not in st.providers:
            return
        if kind == "cool":
            d = int(ev["d"])
            if d > st.adopted.get(prov, 0):
                st.adopted[prov] = d
                st.sink.cooldown(prov, st.to_mono(d), str(ev.get("r") or "shared"))
        elif kind == "ok" and not st.outbox.has("cool", prov):
            st.sink.recovered(prov)
