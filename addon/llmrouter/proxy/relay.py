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
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import aiohttp

from llmrouter.proxy.upstream import describe
from llmrouter.wire.apis import Flavor, stream_error_event
from llmrouter.wire.outcome import Outcome
from llmrouter.wire.sse import StreamMeter

INTERRUPTED = "upstream stream interrupted"


async def hold_until_commit(
    resp: aiohttp.ClientResponse, meter: StreamMeter, limit: float
) -> tuple[bytes, tuple[Outcome, str] | None]:
    """Read until the first content event. Returns the held bytes and, when the stream cannot
    commit (in-band error, end, break, or no content within `limit` s), why."""
    held: list[bytes] = []
    try:
        async with asyncio.timeout(max(0.001, limit)):
            while not (meter.committed or meter.error or meter.finished):
                chunk = await resp.content.readany()
                if not chunk:
                    break
                held.append(chunk)
                meter.feed(chunk)
    except TimeoutError:
        return b"".join(held), (Outcome.TIMEOUT, f"no content within {limit:g}s")
    except aiohttp.ClientError as e:
        why = f"stream broke before first token ({describe(e)[1]})"
        return b"".join(held), (Outcome.INBAND_ERROR, why)
    error = None
    if not meter.committed:
        if meter.error:
            error = (Outcome.INBAND_ERROR, f"in-band {meter.error} before first token")
        elif not meter.finished:
            error = (Outcome.INBAND_ERROR, "stream ended before first token")
    return b"".join(held), error


@dataclass(slots=True)
class RelayEnd:
    outcome: Outcome
    error: str | None
    bytes: int  # delivered to the client, held events included
    ended: float  # time.monotonic() of the last byte


class Relay:
    """One committed stream, parked until the client's connection fetches it."""

    def __init__(
        self,
        resp: aiohttp.ClientResponse,
        status: int,
        headers: list[tuple[str, str]],
        held: bytes,
        meter: StreamMeter,
        flavor: Flavor,
        idle_timeout: float,
        on_end: Callable[[RelayEnd], None],
    ) -> None:
        self.status = status
        self.headers = headers
        self.meter = meter
        self._resp = resp
        self._held = held
        self._flavor = flavor
        self._idle = idle_timeout
        self._on_end: Callable[[RelayEnd], None] | None = on_end
        self._sent = 0

    async def pump(self, write: Callable[[bytes], Awaitable[None]]) -> None:
        """Write the held events, then every upstream event, to `write` as it completes."""
        outcome, error = Outcome.OK, None
        try:
            # An incomplete event waits in `tail` for its end: a cut must not leave half an
            # event before the terminal error event, or the SDK fails to parse instead of raising.
            tail = await self._forward(write, self._held)
            self._held = b""
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
                tail = await self._forward(write, tail + chunk)
            if outcome is Outcome.TRUNCATED and self.meter.finished:
                outcome, error = Outcome.OK, None  # a complete answer, only an unclean close
            if self.meter.error and outcome is Outcome.OK:
                outcome, error = Outcome.INBAND_ERROR, self.meter.error
            if outcome is Outcome.TRUNCATED:
                await self._write(write, stream_error_event(self._flavor, INTERRUPTED))
            else:
                await self._write(write, tail)
        except (ConnectionError, aiohttp.ClientConnectionResetError, asyncio.CancelledError):
            outcome, error = Outcome.CLIENT_CLOSED, "client went away"
            raise
        finally:
            self._resp.close()
            self._finish(outcome, error)

    async def _forward(self, write: Callable[[bytes], Awaitable[None]], data: bytes) -> bytes:
        """Write `data` up to its last complete event; return the rest."""
        end = max(_after(data, b"\n\n"), _after(data, b"\r\n\r\n"))
        await self._write(write, data[:end])
        return data[end:]

    async def _write(self, write: Callable[[bytes], Awaitable[None]], data: bytes) -> None:
        if data:
            await write(data)
            self._sent += len(data)

    def abandon(self) -> None:
        """Nobody fetched the stream (the client left): free the upstream connection."""
        self._resp.close()
        self._finish(Outcome.CLIENT_CLOSED, "client went away before the stream was fetched")

    def _finish(self, outcome: Outcome, error: str | None) -> None:
        on_end, self._on_end = self._on_end, None
        if on_end is not None:
            on_end(RelayEnd(outcome, error, self._sent, time.monotonic()))


def _after(data: bytes, sep: bytes) -> int:
    """The index just past the last `sep` in `data`, or 0."""
    i = data.rfind(sep)
    return i + len(sep) if i >= 0 else 0
