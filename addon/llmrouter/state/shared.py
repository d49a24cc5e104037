"""The Redis side of shared state: the hot-path call and the background writes.

- `begin` is the only call on a request's path: the conversation's binding and the limit
  script in one pipeline, one round trip. `claim` (the half-open probe) adds one only on the
  request that would probe a recovering provider.
- Writes after the answer (cooldowns, probe verdicts, bindings, settlements) go through the
  `Outbox`, sent in order by one worker task, retried until Redis takes them.
- `sharedsync.Sync` keeps the instance in step (heartbeat, the backstop read of cooldowns,
  lease renewal, latency exchange, resync after an outage) and listens to the others' events.

What it learns goes to a `Sink` (the backend), in local monotonic time. See redisscripts.py for
the key layout and docs/SHARED.md for the design.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import secrets
import time
from collections.abc import Iterable, Sequence
from typing import Any

from llmrouter.state.limittypes import Denial, Grant, Reservation, booked, refusal
from llmrouter.state.outbox import Op, Outbox, add, later
from llmrouter.state.redislink import Commands, RedisLink
from llmrouter.state.redisscripts import Keys
from llmrouter.state.sharedsync import Sink, Sync, text

logger = logging.getLogger("llmrouter")

CLAIM_GRACE_MS = 50  # a cooldown this close to its end counts as over (clocks differ by ms)
OK_TTL_MS = 10_000  # a proven provider's `ok` marker; the backstop reads it every tick
SEQ_TTL_MS = 86_400_000
WINDOW_GRACE = 300.0  # counters outlive their window by this: clocks of instances differ
_BATCH = 64
# Settlements wait this long (s) before they are sent: a request's answer goes out first (its
# bookkeeping would otherwise be written in the same loop turn), and a burst shares a batch.
LINGER = 0.002
_SEQUENCED = frozenset({"settle", "release", "spend"})


def _refused(res: Reservation, per: list[list[int]], now_unix: float) -> Denial:
    """The script's refusal, worded as limits.Ledger words it: the window that frees last."""
    out = []
    for w, (a, b, c) in zip(res.windows, per, strict=True):
        if w.name == "rpm" and a >= w.limit:
            frees = b / 1000 if b >= 0 else None
            out.append(refusal(res.user, w, res.amount, now_unix, frees_in=frees))
        elif w.name != "rpm" and a + b + res.amount > w.limit:
            out.append(refusal(res.user, w, res.amount, now_unix, spent=a, held=b, holds=c))
    if not out:  # cannot happen (the script and this test the same); refuse safely anyway
        out.append(refusal(res.user, res.windows[0], res.amount, now_unix))
    return max(out, key=lambda d: d.retry_after)


class SharedStore:
    def __init__(
        self,
        url: str,
        prefix: str,
        sink: Sink,
        *,
        timeout: float = 0.05,
        lease: float = 30.0,
        queue_max: int = 10_000,
        probe_lease: float = 600.0,
        tick: float = 0.25,
        latency_every: float = 2.0,
    ) -> None:
        self.instance = secrets.token_hex(6)
        self.keys = Keys(prefix)
        self.sink = sink
        self.link = RedisLink(url, timeout=timeout, name=f"llmrouter-{self.instance}")
        self.link.on_open = self._opened
        self.outbox = Outbox(queue_max)
        self.lease_ms = int(lease * 1000)
        self.probe_lease_ms = int(probe_lease * 1000)
        self.tick = tick
        self.providers: set[str] = set()
        self.users: list[str] = []
        self.live: list[str] = []  # instance ids at the last heartbeat (this one included)
        self.held: dict[str, Grant] = {}  # this instance's leases in flight: renewed
        self.adopted: dict[str, int] = {}  # provider -> latest cooldown deadline seen (server ms)
        self.offset_ms = (time.time() - time.monotonic()) * 1000  # server ms - monotonic ms
        self._ids = itertools.count(1)
        self._seq = itertools.count(1)
        self._wake = asyncio.Event()
        self._linger: asyncio.TimerHandle | None = None
        self._empty = asyncio.Event()  # set while nothing is queued
        self._empty.set()
        self.up = asyncio.Event()  # set while the breaker is closed
        self.sync = Sync(self, latency_every=latency_every, lease=lease)
        self._tasks: list[asyncio.Task[None]] = []
        self._full_warned = False
        self._script_errors: set[str] = set()

    # -- lifecycle ---------------------------------------------------------------------------

    async def start(self) -> None:
        await self.sync.resync()
        self._tasks = [
            asyncio.create_task(self._worker(), name="llmrouter-shared-worker"),
            asyncio.create_task(self.sync.ticker(), name="llmrouter-shared-ticker"),
            asyncio.create_task(self.sync.listener(), name="llmrouter-shared-listener"),
        ]

    async def stop(self, flush: float = 1.0) -> None:
        """Send what is queued (bounded by `flush` s), leave the instance set, close."""
        if self._linger is not None:
            self._linger.cancel()
        for t in self._tasks:
            t.cancel()
        for t in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await t
        self._tasks = []
        end = time.monotonic() + flush
        while self.outbox and self.link.up and time.monotonic() < end:
            if not await self._send_batch():
                break
        if self.outbox:
            logger.warning(f"router: shared state: {len(self.outbox)} writes not sent at exit")
        await self.link.call(lambda p: p.zrem(self.keys.instances, self.instance))
        await self.link.aclose()

    def watch(self, providers: Iterable[str], users: Iterable[str] = ()) -> None:
        """The providers whose health is shared; the users whose spend status shows."""
        self.providers = set(providers)
        self.users = sorted(set(users))
        for p in [p for p in self.adopted if p not in self.providers]:
            del self.adopted[p]

    # -- time --------------------------------------------------------------------------------

    def to_mono(self, server_ms: int) -> float:
        return (server_ms - self.offset_ms) / 1000

    def to_server(self, mono: float) -> int:
        return int(mono * 1000 + self.offset_ms)

    def adopted_until(self, provider: str) -> float:
        """The latest shared cooldown deadline this instance knows of (monotonic; 0: none)."""
        d = self.adopted.get(provider)
        return self.to_mono(d) if d else 0.0

    # -- the hot path ------------------------------------------------------------------------

    async def begin(
        self, conversations: Sequence[str], res: Reservation | None, now_unix: float
    ) -> tuple[list[Any], Grant | Denial | None, list[int]] | None:
        """(the conversations' binding values, verdict, used per window) in one round trip;
        None: use local state."""
        k = self.keys
        gid = f"r{self.instance}-{next(self._ids)}"

        def fill(p: Commands) -> None:
            for conversation in conversations:
                p.get(k.bind(conversation))
            if res is not None:
                stem = k.limit_stem(res.user)
                args: list[Any] = [gid, res.amount, self.lease_ms, stem]
                for w in res.windows:
                    kind = "rpm" if w.name == "rpm" else "usd"
                    args += [w.limit, kind, int((w.reset_at + WINDOW_GRACE) * 1000), w.key]
                keys = [k.lease(res.user), k.lease_expiry(res.user)]
                keys += [k.limit(res.user, w.key) for w in res.windows]
                p.evalsha("reserve", keys, args)

        out = await self.link.call(fill)
        if out is None:
            return None
        n = len(conversations)
        values = [None if isinstance(v, Exception) else v for v in out[:n]]
        if res is None:
            return values, None, []
        reply = out[n]
        if isinstance(reply, Exception):
            self._script_error("reserve", reply)
            return None
        flat = [int(x) for x in reply]
        per = [flat[1 + 3 * i : 4 + 3 * i] for i in range(len(res.windows))]
        if flat[0] == 1:
            grant = Grant(gid, res.user, res.amount, res.windows, now_unix)
            if any(w.name != "rpm" for w in res.windows):
                self.held[gid] = grant  # its lease is renewed while the request runs
            used = [a + 1 if w.name == "rpm" else a + b + res.amount
                    for w, (a, b, _) in zip(res.windows, per, strict=True)]  # fmt: skip
            return values, grant, used
        return values, _refused(res, per, now_unix), []

    async def claim(self, provider: str) -> tuple[str, float] | None:
        """The shared half-open slot: ("mine"|"ok"|"taken", s left) or ("cooling", until)."""
        k = self.keys
        out = await self.link.call(
            lambda p: p.evalsha(
                "claim",
                [k.probe(provider), k.cool(provider)],
                [self.instance, self.probe_lease_ms, CLAIM_GRACE_MS],
            )
        )
        if out is None or isinstance(out[0], Exception):
            return None
        state, ms = text(out[0][0]) or "", int(out[0][1])
        if state == "cooling":
            self.adopted[provider] = max(ms, self.adopted.get(provider, 0))
            return state, self.to_mono(ms)
        return state, ms / 1000

    # -- background writes -------------------------------------------------------------------

    def _put(self, op: Op, merge: Any = None) -> None:
        if not self.outbox.put(op, merge) and not self._full_warned:
            self._full_warned = True
            logger.warning(
                f"router: shared state: background queue full ({self.outbox.capacity}); "
                "further writes are dropped and counted (router.status)"
            )
        self._empty.clear()
        if op.kind not in _SEQUENCED:
            self._wake.set()  # news for the others (a cooldown, a binding): at once
        elif self._linger is None:  # bookkeeping: after the answer is out, in one batch
            self._linger = asyncio.get_running_loop().call_later(LINGER, self._linger_over)

    def _linger_over(self) -> None:
        self._linger = None
        self._wake.set()

    def cool(self, provider: str, until: float, reason: str) -> None:
        self._put(Op("cool", provider, {"until": until, "reason": reason}), later)

    def ok(self, provider: str, started: float) -> None:
        self._put(Op("ok", provider, {"started": started}))

    def unclaim(self, provider: str) -> None:
        self._put(Op("unclaim", provider))

    def bind(self, conversation: str, value: str, ms: int) -> None:
        """A conversation's binding (sharedbindings.py encodes it), kept `ms`."""
        self._put(Op("bind", conversation, {"value": value, "ms": max(1, ms)}))

    def settle(self, grant: Grant, actual: int, now_unix: float) -> None:
        """The hold goes; the cost is booked in the day and month the request was reserved."""
        self.held.pop(grant.id, None)
        book = booked(grant.at, now_unix)
        exp = [int((w.reset_at + WINDOW_GRACE) * 1000) for w in book]
        data = {"user": grant.user, "amount": actual, "windows": [w.key for w in book], "exp": exp}
        self._put(Op("settle", grant.id, data))

    def release(self, grant: Grant) -> None:
        self.held.pop(grant.id, None)
        data = {"user": grant.user, "amount": 0, "windows": [], "exp": []}
        self._put(Op("release", grant.id, data))

    def spend(self, user: str, window_key: str, amount: int, reset_at: float) -> None:
        """Spend made on local state while Redis was away, pushed when it is back."""
        exp = [int((reset_at + WINDOW_GRACE) * 1000)]
        data = {"user": user, "windows": [window_key], "amount": amount, "exp": exp}
        self._put(Op("spend", f"{user}\n{window_key}", data), add)

    def _encode(self, p: Commands, op: Op) -> None:
        k, d = self.keys, op.data
        if op.kind == "cool":
            ms = max(1, int((d["until"] - time.monotonic()) * 1000))
            keys = [k.cool(op.key), k.probe(op.key)]
            p.evalsha("cool", keys, [ms, d["reason"], self.instance, k.channel, op.key])
        elif op.kind == "ok":
            args = [self.to_server(d["started"]), OK_TTL_MS, k.channel, op.key, self.instance]
            p.evalsha("ok", [k.cool(op.key), k.probe(op.key)], args)
        elif op.kind == "unclaim":
            p.evalsha("unclaim", [k.probe(op.key)], [self.instance])
        elif op.kind == "bind":
            p.set(k.bind(op.key), d["value"], px=d["ms"])
        elif op.kind in ("settle", "release", "spend"):
            user = d["user"]
            keys = [k.seq(self.instance), k.lease(user), k.lease_expiry(user)]
            keys += [k.limit(user, w) for w in d["windows"]]
            gid = "" if op.kind == "spend" else op.key
            args = [op.seq, SEQ_TTL_MS, gid, d["amount"], k.limit_stem(user), *d["exp"]]
            p.evalsha("apply", keys, args)

    async def _send_batch(self) -> bool:
        now = time.monotonic()
        batch = self.outbox.take(_BATCH)
        # A cooldown that ran out while queued says nothing any more.
        batch[:] = [op for op in batch if op.kind != "cool" or op.data["until"] > now]
        for op in batch:
            if op.kind in _SEQUENCED and not op.seq:
                op.seq = next(self._seq)
        if not batch:
            self.outbox.ack()
            return True

        def fill(p: Commands) -> None:
            for op in batch:
                self._encode(p, op)

        out = await self.link.call(fill)
        if out is None:
            return False  # the batch stays in flight; sent again once Redis is back
        for op, r in zip(batch, out, strict=True):
            if isinstance(r, Exception):
                self.outbox.failed += 1
                self._script_error(op.kind, r)
            elif op.kind == "cool" and r[0] == 1:
                self.adopted[op.key] = max(int(r[1]), self.adopted.get(op.key, 0))
        self.outbox.ack()
        if len(self.outbox) < self.outbox.capacity // 2:
            self._full_warned = False
        return True

    async def _worker(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            try:
                while self.outbox and self.link.up:
                    if not await self._send_batch():
                        break
                    if not self._wake.is_set() and len(self.outbox) < _BATCH:
                        break  # only bookkeeping came meanwhile: it gathers (its linger)
            except Exception:  # a bug in one write must not stop the others for good
                self.outbox.failed += len(self.outbox.inflight)
                self.outbox.ack()
                if "worker" not in self._script_errors:  # once, not per batch
                    self._script_errors.add("worker")
                    logger.exception("router: shared state: a background write failed")
            if not self.outbox:
                self._empty.set()
            elif self.link.up and not self._wake.is_set() and self._linger is None:
                self._linger = asyncio.get_running_loop().call_later(LINGER, self._linger_over)

    def kick(self) -> None:
        """Wake the writer: Redis is back, or a batch may need sending again."""
        self._wake.set()

    async def drained(self) -> None:
        """Until every queued write has reached Redis."""
        await self._empty.wait()

    def _opened(self) -> None:
        self.up.clear()
        self.sink.outage()

    def _script_error(self, kind: str, error: Exception) -> None:
        if kind not in self._script_errors:  # a bug, not an outage: say it once per kind
            self._script_errors.add(kind)
            logger.error(f"router: shared state: Redis refused a {kind} write: {error}")

    # -- status ------------------------------------------------------------------------------

    def status(self) -> dict[str, Any]:
        b = self.link.breaker
        return {
            "backend": "redis",
            "redis": self.link.url,
            "prefix": self.keys.prefix,
            "instance": self.instance,
            "state": "connected" if b.closed else "unreachable",
            "for_s": round(time.monotonic() - b.since, 1) if b.since else None,
            "outages": b.opened,
            "late": self.link.late,  # replies past the timeout, within the grace: not outages
            "last_error": b.last_error,
            "instances": len(self.live),
            "queue": len(self.outbox),
            "queue_max": self.outbox.capacity,
            "dropped": self.outbox.dropped,
            "failed": self.outbox.failed,
            "sent": self.outbox.sent,
            "leases": len(self.held),
        }
