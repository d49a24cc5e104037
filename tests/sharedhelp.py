"""Helpers of the shared-state tests: router instances (RedisBackends) on one real Redis,
waiting on conditions, and the every-key-has-a-TTL check."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import redis.asyncio as aioredis
from llmrouter.schema import Shared
from llmrouter.state.limits import MICRO, windows_for
from llmrouter.state.limittypes import Reservation, Window
from llmrouter.state.redisbackend import RedisBackend

PREFIX = "test:"
PROVIDERS = ["p1 http://127.0.0.1:1", "p2 http://127.0.0.1:2"]
P1, P2 = PROVIDERS


async def wait_for(cond: Callable[[], bool], within: float, step: float = 0.005) -> float:
    """Seconds until `cond()` holds; fails after `within` s (a bound the issue sets)."""
    t0 = time.monotonic()
    while not cond():
        if time.monotonic() - t0 > within:
            raise AssertionError(f"condition not met within {within}s")
        await asyncio.sleep(step)
    return time.monotonic() - t0


async def instance(url: str, **kw: Any) -> RedisBackend:
    backend = RedisBackend(Shared.model_validate({"redis": url, "prefix": PREFIX, **kw}))
    await backend.start()
    backend.watch(PROVIDERS)
    return backend


Make = Callable[..., Awaitable[RedisBackend]]


@asynccontextmanager
async def cluster_on(url: str, *, settle: bool) -> AsyncIterator[Make]:
    """Start router instances on one Redis; stop them all at the end. `settle`: first flush
    their queues and check that every key has a TTL (not after a test that broke Redis)."""
    made: list[RedisBackend] = []

    async def make(**kw: Any) -> RedisBackend:
        made.append(await instance(url, **kw))
        return made[-1]

    yield make
    if settle:
        await flushed(*made)
    for b in made:
        await b.stop()
    if settle:
        assert await keys_without_ttl(url) == []


def bind(b: RedisBackend, conversation: str, provider: str, ttl: float) -> None:
    """A served turn (re)binds its conversation, as Pin.success does."""
    b.bindings.bind(conversation, provider, "prof", ttl, time.monotonic())


def bound(b: RedisBackend, conversation: str) -> str | None:
    """The provider the instance's bindings put first for the conversation, now."""
    return b.bindings.get(conversation, time.monotonic()).bound


async def flushed(*backends: RedisBackend, within: float = 5.0) -> None:
    """Every queued write of these instances reached Redis."""
    async with asyncio.timeout(within):
        for b in backends:
            await b.store.drained()


@dataclass(frozen=True)
class Limits:
    usd_per_day: float | None = None
    usd_per_month: float | None = None
    rpm: int | None = None


def day(limit_micro: int) -> Window:
    """Today's usd_per_day window, as limits.windows_for makes it."""
    return windows_for(Limits(usd_per_day=limit_micro / MICRO), time.time())[0]


def rpm(limit: int) -> Window:
    return windows_for(Limits(rpm=limit), time.time())[0]


def spent_key(user: str, window: Window) -> str:
    return f"{PREFIX}lim:{user}:{window.key}"


def res(user: str, amount: int, *windows: Window) -> Reservation:
    return Reservation(user, tuple(windows), amount)


async def keys_without_ttl(url: str, prefix: str = PREFIX) -> list[str]:
    r = aioredis.from_url(url)
    try:
        out = []
        async for k in r.scan_iter(match=f"{prefix}*"):
            if await r.pttl(k) < 0:
                out.append(k.decode())
        return out
    finally:
        await r.aclose()


async def raw(url: str, *command: Any) -> Any:
    r = aioredis.from_url(url)
    try:
        return await r.execute_command(*command)
    finally:
        await r.aclose()
