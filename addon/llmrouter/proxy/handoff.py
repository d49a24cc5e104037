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

from aiohttp import web

from llmrouter.proxy.relay import Relay

TOKEN_HEADER = "x-router-handoff"
logger = logging.getLogger(__name__)


class Handoff:
    def __init__(self, ttl: float = 30.0) -> None:
        self.ttl = ttl
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
        server = web.Server(self._handle, handler_cancellation=True, access_log=None)
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
