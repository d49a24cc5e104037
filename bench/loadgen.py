"""The benchmark's load generator: an aiohttp client that goes through a proxy (HTTPS_PROXY style:
CONNECT, then TLS to the "origin" host with the proxy's CA), or straight to a fake provider.
"""

from __future__ import annotations

import asyncio
import json
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import aiohttp

_MSG = {"model": "claude-test", "max_tokens": 16, "messages": [{"role": "user", "content": "hi"}]}
BODY = json.dumps(_MSG).encode()
STREAM_BODY = json.dumps({**_MSG, "stream": True}).encode()
_HEADERS = {
    "content-type": "application/json",
    "x-api-key": "client-key",
    "anthropic-version": "2023-06-01",
}


class BenchError(RuntimeError):
    pass


@dataclass(slots=True)
class Reply:
    seconds: float
    status: int
    provider: str | None  # x-router-provider, when routed
    attempts: int | None  # x-router-attempts, when routed


@dataclass(slots=True)
class StreamTiming:
    first: float  # request sent -> first SSE event line (s)
    first_content: float  # ... first content_block_delta
    last: float  # ... message_stop
    deltas: int


class Client:
    """One path to the fake provider: through a proxy to https://localhost:PORT, or direct."""

    def __init__(
        self, base_url: str, proxy: str | None, ca: ssl.SSLContext | None, limit: int = 32
    ) -> None:
        self.url = base_url.rstrip("/") + "/v1/messages"
        self.proxy = proxy
        connector = aiohttp.TCPConnector(limit=limit, ssl=ca if ca is not None else False)
        self.session = aiohttp.ClientSession(
            connector=connector,
            trust_env=False,
            timeout=aiohttp.ClientTimeout(total=60),
            cookie_jar=aiohttp.DummyCookieJar(),
        )

    async def close(self) -> None:
        await self.session.close()

    def _headers(self, profile: str | None) -> dict[str, str]:
        return _HEADERS if profile is None else {**_HEADERS, "x-router-profile": profile}

    async def post(
        self, profile: str | None = None, body: bytes = BODY, headers: dict[str, str] | None = None
    ) -> Reply:
        t0 = time.perf_counter()
        hdrs = self._headers(profile) if headers is None else {**self._headers(profile), **headers}
        async with self.session.post(self.url, data=body, headers=hdrs, proxy=self.proxy) as resp:
            await resp.read()
            dt = time.perf_counter() - t0
            if resp.status != 200:
                raise BenchError(f"{self.url} via {self.proxy}: HTTP {resp.status}")
            attempts = resp.headers.get("x-router-attempts")
            return Reply(
                dt, resp.status, resp.headers.get("x-router-provider"), int(attempts or 0) or None
            )

    async def stream(self, profile: str | None = None, body: bytes = STREAM_BODY) -> StreamTiming:
        t0 = time.perf_counter()
        first = first_content = last = None
        deltas = 0
        async with self.session.post(
            self.url, data=body, headers=self._headers(profile), proxy=self.proxy
        ) as resp:
            if resp.status != 200:
                raise BenchError(f"stream via {self.proxy}: HTTP {resp.status}")
            async for line in resp.content:
                if not line.startswith(b"event:"):
                    continue
                now = time.perf_counter() - t0
                first = now if first is None else first
                if b"content_block_delta" in line:
                    deltas += 1
                    first_content = now if first_content is None else first_content
                elif b"message_stop" in line:
                    last = now
        if first is None or first_content is None or last is None:
            raise BenchError(f"stream via {self.proxy} ended without its events")
        return StreamTiming(first, first_content, last, deltas)


async def chat_stream(client: Client, profile: str, body: bytes) -> int:
    """A Chat Completions stream through `client`'s proxy (section 9's control): its chunks."""
    url = client.url.removesuffix("/v1/messages") + "/v1/chat/completions"
    headers = {"content-type": "application/json", "authorization": "Bearer client-key",
               "x-router-profile": profile}  # fmt: skip
    chunks, done = 0, False
    async with client.session.post(url, data=body, headers=headers, proxy=client.proxy) as resp:
        if resp.status != 200:
            raise BenchError(f"chat stream via {client.proxy}: HTTP {resp.status}")
        async for line in resp.content:
            if line.startswith(b"data: {"):
                chunks += 1
            done = done or line.startswith(b"data: [DONE]")
    if not done:
        raise BenchError(f"chat stream via {client.proxy} ended without [DONE]")
    return chunks


async def throughput(
    call: Callable[[], Any], seconds: float, concurrency: int
) -> dict[str, float | int]:
    """`concurrency` workers send back to back for `seconds`; completed requests per second."""
    done = errors = 0
    end = time.perf_counter() + seconds

    async def worker() -> None:
        nonlocal done, errors
        while time.perf_counter() < end:
            try:
                await call()
                done += 1
            except (aiohttp.ClientError, BenchError, TimeoutError):
                errors += 1

    t0 = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    elapsed = time.perf_counter() - t0
    return {"requests": done, "errors": errors, "seconds": elapsed, "rps": done / elapsed}


async def interleaved(calls: dict[str, Callable[[], Any]], n: int) -> dict[str, list[Any]]:
    """One client, sequential: call each path in turn, `n` times, so noise hits all alike. The
    order rotates: a proxy answers its first request after another process ran more slowly
    (its cache is cold), so a fixed order would favour whichever path comes second."""
    out: dict[str, list[Any]] = {name: [] for name in calls}
    names = list(calls)
    for i in range(n):
        k = i % len(names)
        for name in names[k:] + names[:k]:
            out[name].append(await calls[name]())
    return out


async def mixed(
    calls: list[Callable[[], Any]], n: int, concurrency: int, pick: Callable[[int], int]
) -> dict[str, int]:
    """`n` requests from `concurrency` workers; request i uses calls[pick(i)]."""
    counter = iter(range(n))
    errors = 0

    async def worker() -> None:
        nonlocal errors
        for i in counter:
            try:
                await calls[pick(i)]()
            except (aiohttp.ClientError, BenchError, TimeoutError):
                errors += 1

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return {"requests": n, "errors": errors}
