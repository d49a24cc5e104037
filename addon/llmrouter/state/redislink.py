"""One Redis connection behind a short timeout and a circuit breaker, with auto-pipelining.

Calls made while a pipeline is on the wire are gathered into the next one: however many
requests run at once, the hot path uses one connection and one round trip per batch, so a
burst neither opens dozens of connections nor costs a syscall per request. The batch is packed
and written on that connection directly: redis-py's Pipeline object, retry wrapper and reply
callbacks cost more CPU than the round trip itself.

Every call is bounded by `timeout`. A batch past it is *late*: its callers go local, and calls
return None at once until its reply arrives. Only a batch that fails, or stays late for
`grace`, opens the breaker: a busy event loop misses a 50 ms bound with Redis well, and must
not turn into an outage (a warning, a resync and budget shares). Once open, calls return None
without touching the network until `recover()` (run by a background task) finds Redis
answering again. Failures are logged once per outage, never with a
traceback; the URL's password never reaches a log line.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from redis import exceptions as rexc
from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.connection import AbstractConnection
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from llmrouter.state.breaker import Breaker
from llmrouter.state.redisscripts import SCRIPTS, SHAS

logger = logging.getLogger("llmrouter")

_FAILURES = (rexc.RedisError, TimeoutError, OSError)  # RedisError: also a wrong password

try:
    from hiredis import pack_command as _hiredis_pack
except ImportError:  # redis-py's own packer then
    _hiredis_pack = None

try:  # redis-py 7+ asks every new connection for cluster maintenance pushes: one more round
    # trip, refused by a standalone Redis 7 (and logged). The router never uses them.
    from redis.maint_notifications import MaintNotificationsConfig

    _QUIET: dict[str, Any] = {"maint_notifications_config": MaintNotificationsConfig(enabled=False)}
except ImportError:  # older redis-py: nothing to turn off
    _QUIET = {}


def redact(url: str) -> str:
    """The URL without its password (for logs and router.status)."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    netloc = f"{parts.username or ''}:***@{host}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))


class Commands:
    """The commands of one call, in order: the few the shared store uses. Replies come back
    as Redis sent them (bytes, ints, lists; None for a missing value), or as the exception a
    command raised."""

    __slots__ = ("args",)

    def __init__(self) -> None:
        self.args: list[tuple[Any, ...]] = []

    def __len__(self) -> int:
        return len(self.args)

    def get(self, key: str) -> None:
        self.args.append(("GET", key))

    def set(self, key: str, value: str, *, px: int) -> None:
        self.args.append(("SET", key, value, "PX", px))

    def hget(self, key: str, field: str) -> None:
        self.args.append(("HGET", key, field))

    def hmget(self, key: str, fields: Sequence[str]) -> None:
        self.args.append(("HMGET", key, *fields))

    def zcount(self, key: str, since: int) -> None:
        self.args.append(("ZCOUNT", key, since, "+inf"))

    def mget(self, keys: Sequence[str]) -> None:
        self.args.append(("MGET", *keys))

    def zrem(self, key: str, member: str) -> None:
        self.args.append(("ZREM", key, member))

    def evalsha(self, name: str, keys: Sequence[str], args: Sequence[Any]) -> None:
        """A script by its SHA (no SCRIPT EXISTS round trip: a NOSCRIPT reply loads them)."""
        self.args.append(("EVALSHA", SHAS[name], len(keys), *keys, *args))


Fill = Callable[[Commands], None]


class _Call:
    __slots__ = ("fill", "fut")

    def __init__(self, fill: Fill, fut: asyncio.Future[list[Any] | None]) -> None:
        self.fill, self.fut = fill, fut


class RedisLink:
    def __init__(self, url: str, *, timeout: float = 0.05, name: str = "") -> None:
        self.url = redact(url)
        self.timeout = timeout
        self.grace = max(1.0, 10 * timeout)  # a late batch's reply may take this long
        self.late = 0  # batches that missed `timeout` and were answered within `grace`
        self._late = False  # a batch is overdue: calls skip Redis until it is answered
        self.breaker = Breaker()
        self.on_open: Callable[[], None] | None = None  # the outage starts (budgets go local)
        self.calls = 0  # calls that went to the network (a test counts them during outages)
        self.batches = 0
        self._queue: list[_Call] = []
        self._sender: asyncio.Task[None] | None = None
        self._conn: AbstractConnection | None = None  # the batches' own connection
        self._warned = False
        pool = BlockingConnectionPool.from_url(
            url,
            max_connections=4,  # the batches' connection and pub/sub
            timeout=timeout,
            socket_timeout=None,  # every call is bounded by asyncio.timeout(timeout) instead
            socket_connect_timeout=timeout,
            retry=Retry(NoBackoff(), 0),
            health_check_interval=0,
            client_name=name or None,
            **_QUIET,
        )
        self.client = Redis(connection_pool=pool)

    @property
    def up(self) -> bool:
        return self.breaker.closed

    async def call(self, fill: Fill, *, force: bool = False) -> list[Any] | None:
        """Queue commands for the next pipeline; their replies, or None when the breaker is
        open or the batch failed (which opens it). A command's own error comes back in the list
        as an exception (a script's refusal is not an outage). `force` runs while open: the
        recovery uses it."""
        if not ((self.breaker.closed and not self._late) or force):
            return None
        self.calls += 1
        fut: asyncio.Future[list[Any] | None] = asyncio.get_running_loop().create_future()
        self._queue.append(_Call(fill, fut))
        if self._sender is None or self._sender.done():
            self._sender = asyncio.create_task(self._send())
        try:
            async with asyncio.timeout(self.timeout):
                return await fut
        except TimeoutError:  # late: the next calls go local until the sender hears back
            if self._sender is not None and not self._sender.done():
                self._late = True
            return None

    async def _send(self) -> None:
        try:
            await self._send_all()
        finally:
            self._late = False  # nothing is in flight any more

    async def _send_all(self) -> None:
        while self._queue:
            batch = [c for c in self._queue if not c.fut.done()]  # callers that left are skipped
            self._queue = []
            if not batch:
                continue
            self.batches += 1
            work = asyncio.ensure_future(self._execute(batch))
            try:
                try:
                    replies = await asyncio.wait_for(asyncio.shield(work), self.timeout)
                except TimeoutError:
                    replies = await self._overdue(batch, work)
            except asyncio.CancelledError:
                work.cancel()
                _resolve(batch, None)
                raise
            except Exception as e:  # also a bug in a caller's commands: never stall requests
                work.cancel()
                self._late = False  # the breaker says it from here
                self.failed(e)
                _resolve(batch + self._queue, None)  # do not make the queued wait for a retry
                self._queue = []
                continue
            self._late = False  # Redis answered
            for c, r in zip(batch, replies, strict=True):
                if not c.fut.done():
                    c.fut.set_result(r)

    async def _overdue(
        self, batch: list[_Call], work: asyncio.Future[list[list[Any]]]
    ) -> list[list[Any]]:
        """Wait up to `grace` for a late batch while new calls go local; raises past it."""
        self._late = True
        _resolve(batch + self._queue, None)  # its callers (and the queued) go local now
        self._queue = []
        async with asyncio.timeout(self.grace - self.timeout):
            replies = await work
        self.late += 1
        return replies

    async def _execute(self, batch: list[_Call]) -> list[list[Any]]:
        replies = await self._pipeline(batch)
        redo = [i for i, r in enumerate(replies) if any(_noscript(x) for x in r)]
        if redo:  # Redis restarted or flushed its scripts: nothing of theirs ran
            await self._load_scripts()
            again = await self._pipeline([batch[i] for i in redo])
            for i, r in zip(redo, again, strict=True):
                replies[i] = r
        return replies

    async def _pipeline(self, batch: list[_Call]) -> list[list[Any]]:
        cmds = Commands()
        bounds = []
        for c in batch:
            start = len(cmds)
            c.fill(cmds)
            bounds.append((start, len(cmds)))
        flat = await self._run(cmds.args)
        return [flat[a:b] for a, b in bounds]

    async def _run(self, commands: list[tuple[Any, ...]]) -> list[Any]:
        if not commands:
            return []
        if self._conn is None:
            self._conn = await self.client.connection_pool.get_connection()
        conn = self._conn
        await conn.send_packed_command(_pack(conn, commands), check_health=False)
        out: list[Any] = []
        for _ in commands:
            try:
                out.append(await conn.read_response())
            except rexc.ResponseError as e:  # that command's own error; the rest still reply
                out.append(e)
        return out

    async def _load_scripts(self) -> None:
        for r in await self._run([("SCRIPT", "LOAD", src) for src in SCRIPTS.values()]):
            if isinstance(r, Exception):
                raise r

    def failed(self, error: BaseException) -> None:
        text = _describe(error)
        if self.breaker.failure(time.monotonic(), text):
            logger.warning(
                f"router: shared state: Redis at {self.url} unreachable ({text}); routing on "
                "local state until it is back"
            )
            if self.on_open is not None:
                self.on_open()

    async def recover(self) -> bool:
        """Background check while open: PING and load the scripts. True when Redis answers
        (the caller resyncs, then calls `closed()`)."""
        # Pooled connections from before the outage point at a dead (or restarted) server.
        await self.client.connection_pool.disconnect()
        try:
            async with asyncio.timeout(self.timeout * 4):
                await self._run([("PING",)])
                await self._load_scripts()
            return True
        except _FAILURES as e:
            text = _describe(e)
            self.breaker.retry_failed(time.monotonic(), text)
            if self.breaker.opened == 0 and not self._warned:
                self._warned = True  # never reached since start: say so once
                logger.warning(
                    f"router: shared state: Redis at {self.url} unreachable at start ({text}); "
                    "routing on local state until it answers"
                )
            return False

    def closed(self, note: str = "") -> None:
        down = time.monotonic() - self.breaker.since
        first = self.breaker.opened == 0
        if self.breaker.success(time.monotonic()):
            if first:
                logger.info(f"router: shared state: Redis at {self.url}{note}")
            else:
                logger.warning(
                    f"router: shared state: Redis at {self.url} answers again after "
                    f"{down:.1f}s; resynced{note}"
                )

    async def aclose(self) -> None:
        if self._sender is not None:
            self._sender.cancel()
        if self._conn is not None:
            await self._conn.disconnect()
        await self.client.aclose()
        await self.client.connection_pool.disconnect()


def _pack(conn: AbstractConnection, commands: list[tuple[Any, ...]]) -> bytes | list[bytes]:
    """The commands in Redis's protocol: hiredis's C packer is ten times faster than redis-py's
    (which redis-py's asyncio client does not use), a tenth of a request's CPU on this path."""
    if _hiredis_pack is None:
        return conn.pack_commands(commands)
    return b"".join([_hiredis_pack(c) for c in commands])


def _resolve(calls: list[_Call], value: list[Any] | None) -> None:
    for c in calls:
        if not c.fut.done():
            c.fut.set_result(value)


def _noscript(reply: Any) -> bool:
    return isinstance(reply, rexc.NoScriptError)


def _describe(error: BaseException) -> str:
    text = str(error).strip()
    return f"{type(error).__name__}: {text[:160]}" if text else type(error).__name__
