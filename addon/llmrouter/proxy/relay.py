"""The streaming commit point, and the relay of a committed stream, chunk by chunk.

Before the commit point (the first content event) the lifecycle events are held back, and an
error, an end or a stall is retryable: the client never sees that stream. After it the
provider can no longer be switched, so a break or a stall longer than `idle_timeout` ends the
client's stream with a protocol-correct terminal error event: the SDK raises instead of
returning a silently truncated answer.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import aiohttp

from llmrouter.proxy.upstream import describe
from llmrouter.wire.apis import Flavor, stream_error_event
from llmrouter.wire.outcome import Outcome
from llmrouter.wire.sse import StreamMeter

INTERRUPTED = "upstream stream interrupted"


async def hold_until_commit(
    resp: aiohttp.ClientResponse, meter: StreamMeter, limit: float, cap: int
) -> tuple[list[bytes], tuple[Outcome, str] | None]:
    """Read until the first content event. Returns the held chunks and, when the stream cannot
    commit (in-band error, end, break, more than `cap` bytes or no content within `limit` s),
    why."""
    held: list[bytes] = []
    size = 0
    try:
        async with asyncio.timeout(max(0.001, limit)):
            while not (meter.committed or meter.error or meter.finished):
                chunk = await resp.content.readany()
                if not chunk:
                    break
                held.append(chunk)
                meter.feed(chunk)
                size += len(chunk)
                if size > cap and not meter.committed:
                    return held, (Outcome.INBAND_ERROR, f"over {_mb(cap)} before the first token")
    except TimeoutError:
        return held, (Outcome.TIMEOUT, f"no content within {limit:g}s")
    except aiohttp.ClientError as e:
        why = f"stream broke before first token ({describe(e)[1]})"
        return held, (Outcome.INBAND_ERROR, why)
    error = None
    if not meter.committed:
        if meter.error:
            error = (Outcome.INBAND_ERROR, f"in-band {meter.error} before first token")
        elif not meter.finished:
            error = (Outcome.INBAND_ERROR, "stream ended before first token")
    return held, error


def _mb(n: int) -> str:
    return f"{n / 2**20:g} MB"


@dataclass(slots=True)
class RelayEnd:
    outcome: Outcome
    error: str | None
    bytes: int  # delivered to the client, held events included
    ended: float  # time.monotonic() of the last byte


class Relay:
    """One committed stream, parked until the client's connection fetches it.

    Only whole events are forwarded: what follows the meter's last event boundary waits in
    `_pending` (a list of chunks, joined once when its event ends, so one huge event costs
    linear time), and more than `cap` bytes waiting there ends the stream.
    """

    def __init__(
        self,
        resp: aiohttp.ClientResponse,
        status: int,
        headers: list[tuple[str, str]],
        held: bytes | list[bytes],
        meter: StreamMeter,
        flavor: Flavor,
        idle_timeout: float,
        on_end: Callable[[RelayEnd], None],
        cap: int = 64 * 2**20,
    ) -> None:
        self.status = status
        self.headers = headers
        self.meter = meter
        self._resp = resp
        self._pending: deque[bytes] = deque([held] if isinstance(held, bytes) else held)
        self._waiting = sum(map(len, self._pending))  # bytes in _pending
        self._start = 0  # stream offset of _pending's first byte
        self._flavor = flavor
        self._idle = idle_timeout
        self._cap = cap
        self._on_end: Callable[[RelayEnd], None] | None = on_end
        self._sent = 0

    async def pump(self, write: Callable[[bytes], Awaitable[None]]) -> None:
        """Write the held events, then every upstream event, to `write` as it completes."""
        outcome, error = Outcome.OK, None
        try:
            # An incomplete event waits for its end: a cut must not leave half an event before
            # the terminal error event, or the SDK fails to parse instead of raising.
            await self._forward(write)
            content = self._resp.content
            while True:
                try:
                    async with asyncio.timeout(self._idle):
                        chunk = await content.readany()
                except TimeoutError:
                    outcome, error = Outcome.TRUNCATED, f"stalled over {self._idle:g}s"
                    break
                except (aiohttp.ClientError, ConnectionError) as e:
                    outcome, error = Outcome.TRUNCATED, f"upstream broke: {type(e).__name__}"
                    break
                if not chunk:
                    if not self.meter.finished and not self.meter.error:
                        outcome, error = Outcome.TRUNCATED, "upstream ended without a final event"
                    break
                self.meter.feed(chunk)
                self._pending.append(chunk)
                self._waiting += len(chunk)
                await self._forward(write)
                if self._waiting > self._cap:
                    outcome, error = Outcome.TRUNCATED, f"an event over {_mb(self._cap)}"
                    break
            if outcome is Outcome.TRUNCATED and self.meter.finished:
                outcome, error = Outcome.OK, None  # a complete answer, only an unclean close
            if self.meter.error and outcome is Outcome.OK:
                outcome, error = Outcome.INBAND_ERROR, self.meter.error
            if outcome is Outcome.TRUNCATED:
                await self._write(write, stream_error_event(self._flavor, INTERRUPTED))
            else:
                await self._write(write, self._take(self._waiting))
        except (ConnectionError, aiohttp.ClientConnectionResetError, asyncio.CancelledError):
            outcome, error = Outcome.CLIENT_CLOSED, "client went away"
            raise
        finally:
            self._pending.clear()
            self._resp.close()
            self._finish(outcome, error)

    async def _forward(self, write: Callable[[bytes], Awaitable[None]]) -> None:
        """Write what is pending up to the meter's last event boundary."""
        n = self.meter.boundary - self._start
        if n > 0:
            await self._write(write, self._take(n))

    def _take(self, n: int) -> bytes:
        """The first `n` pending bytes, removed from `_pending`."""
        out: list[bytes] = []
        left = n
        pending = self._pending
        while left > 0 and pending:
            chunk = pending[0]
            if len(chunk) <= left:
                out.append(pending.popleft())
                left -= len(chunk)
            else:
                out.append(chunk[:left])
                pending[0] = chunk[left:]
                left = 0
        taken = n - left
        self._start += taken
        self._waiting -= taken
        return out[0] if len(out) == 1 else b"".join(out)

    async def _write(self, write: Callable[[bytes], Awaitable[None]], data: bytes) -> None:
        if data:
            await write(data)
            self._sent += len(data)

    def abandon(self) -> None:
        """Nobody fetched the stream (the client left): free the upstream connection."""
        self._pending.clear()
        self._resp.close()
        self._finish(Outcome.CLIENT_CLOSED, "client went away before the stream was fetched")

    def _finish(self, outcome: Outcome, error: str | None) -> None:
        on_end, self._on_end = self._on_end, None
        if on_end is not None:
            on_end(RelayEnd(outcome, error, self._sent, time.monotonic()))
