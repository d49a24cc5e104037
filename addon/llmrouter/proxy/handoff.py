"""The loopback handoff: how a response the addon fetched itself reaches the client streamed.

A response set in a mitmproxy hook reaches the client in one piece. So a committed stream is
parked here, the flow is pointed at this server on 127.0.0.1, and mitmproxy streams it like any
upstream answer. Each parked stream is reachable once, by a random token sent in a header, and
is released when nobody fetches it in time.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web
from aiohttp.web_protocol import RequestHandler

from llmrouter.proxy.relay import Relay

TOKEN_HEADER = "x-router-handoff"
HEADER_TIMEOUT = 10.0  # mitmproxy sends a request's headers at once; anyone else is cut off
logger = logging.getLogger(__name__)


class _Server(web.Server):
    """aiohttp's low-level server, where a connection must send a complete request head
    within `header_timeout` (the first request here; later ones by aiohttp's keep-alive
    timeout, which closes a connection whose next request is not complete in time)."""

    def __init__(
        self, handler: Callable[[web.BaseRequest], Awaitable[web.StreamResponse]],
        header_timeout: float, **kwargs: Any,
    ) -> None:  # fmt: skip
        super().__init__(self._serve, keepalive_timeout=header_timeout, **kwargs)
        self._inner = handler
        self._header_timeout = header_timeout
        self._waiting: set[RequestHandler] = set()  # connections with no request head yet

    def __call__(self) -> RequestHandler:
        proto = super().__call__()
        self._waiting.add(proto)
        asyncio.get_running_loop().call_later(self._header_timeout, self._check, proto)
        return proto

    def _check(self, proto: RequestHandler) -> None:
        if proto in self._waiting:
            self._waiting.discard(proto)
            if proto.transport is not None:
                proto.force_close()  # no complete request head in time: a half-sent request

    async def _serve(self, request: web.BaseRequest) -> web.StreamResponse:
        self._waiting.discard(request.protocol)  # type: ignore[arg-type]
        return await self._inner(request)


class Handoff:
    def __init__(self, ttl: float = 30.0, header_timeout: float = HEADER_TIMEOUT) -> None:
        self.ttl = ttl
        self.header_timeout = header_timeout
        self.port = 0
        self._parked: dict[str, tuple[Relay, float]] = {}
        self._active = 0
        self._runner: web.ServerRunner | None = None
        self._sweeper: asyncio.Task[None] | None = None

    @property
    def pending(self) -> int:
        """Parked streams not yet fetched plus streams being relayed: 0 when idle."""
        return len(self._parked) + self._active

    async def start(self) -> int:
        # handler_cancellation: a client that goes away cancels the relay, which frees upstream.
        server = _Server(
            self._handle, self.header_timeout, handler_cancellation=True, access_log=None
        )
        self._runner = web.ServerRunner(server, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = self._runner.addresses[0][1]
        self._sweeper = asyncio.create_task(self._sweep())
        return self.port

    async def stop(self) -> None:
        if self._sweeper:
            self._sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sweeper
        for token in list(self._parked):
            self.release(token)
        if self._runner:
            await self._runner.cleanup()

    def park(self, relay: Relay) -> str:
        token = secrets.token_urlsafe(32)
        self._parked[token] = (relay, time.monotonic() + self.ttl)
        return token

    def release(self, token: str) -> None:
        """The flow died before mitmproxy fetched the stream: close its upstream now."""
        parked = self._parked.pop(token, None)
        if parked:
            parked[0].abandon()

    async def _handle(self, request: web.BaseRequest) -> web.StreamResponse:
        parked = self._parked.pop(request.headers.get(TOKEN_HEADER, ""), None)
        if parked is None:
            return web.Response(status=404, text="unknown or used handoff token\n")
        relay = parked[0]
        self._active += 1
        resp = web.StreamResponse(status=relay.status, headers=relay.headers)
        try:
            await resp.prepare(request)
            await relay.pump(resp.write)
            await resp.write_eof()
        except ConnectionError:
            pass  # the client left; the relay already recorded it
        finally:
            relay.abandon()  # no-op once the relay finished; frees upstream if it never started
            self._active -= 1
        return resp

    async def _sweep(self) -> None:
        while True:
            await asyncio.sleep(min(self.ttl, 5.0))
            now = time.monotonic()
            for token, (_, expires) in list(self._parked.items()):
                if expires < now:
                    logger.info("router: released a parked stream nobody fetched")
                    self.release(token)
