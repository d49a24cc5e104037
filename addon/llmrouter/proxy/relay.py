"""The streaming commit point, and the relay of a committed stream, chunk by chunk.

Before the commit point (the first content event) the lifecycle events are held back, and an
error, an end or a stall is retryable: the client never sees that stream. After it the
provider can no longer be switched, so a break or a stall longer than `idle_timeout` ends the
client's stream with a protocol-correct terminal error event: the SDK raises instead of
returning a silently truncated answer.

A stream from a provider of the other API goes through a `wire.translate` stream translator,
which is its meter too: it is fed the provider's bytes and gives whole client events, and a
cut ends with ITS terminal error event (never a fake message_stop or [DONE]).
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import cast

import aiohttp

from llmrouter.proxy.upstream import describe
from llmrouter.wire.apis import Flavor, stream_error_event
from llmrouter.wire.outcome import Outcome
from llmrouter.wire.sse import StreamMeter
from llmrouter.wire.translate import StreamTranslator

INTERRUPTED = "upstream stream interrupted"


async def hold_until_commit(
    resp: aiohttp.ClientResponse, meter: StreamMeter | StreamTranslator, limit: float, cap: int
) -> tuple[list[bytes], tuple[Outcome, str] | None]:
    """Read until the first content event. Returns the held chunks (a translator's: what it
    gave for them) and, when the stream cannot commit (in-band error, end, break, more than
    `cap` bytes or no content within `limit` s), why."""
    held: list[bytes] = []
    size = 0
    try:
        async with asyncio.timeout(max(0.001, limit)):
            while not (meter.committed or meter.error or meter.finished):
                chunk = await resp.content.readany()
                if not chunk:
                    break
                out = meter.feed(chunk)
                held.append(chunk if out is None else out)
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
        meter: StreamMeter | StreamTranslator,
        flavor: Flavor,
        idle_timeout: float,
        on_end: Callable[[RelayEnd], None],
        cap: int = 64 * 2**20,
        translating: bool = False,
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
        # A translator's meter gives whole client events; `_quiet` counts the provider bytes
        # fed since it last gave any, which bounds what it buffers like `cap` bounds _pending.
        self._tr = cast(StreamTranslator, meter) if translating else None
        self._quiet = 0

    async def pump(self, write: Callable[[bytes], Awaitable[None]]) -> None:
        """Write the held events, then every upstream event, to `write` as it completes."""
        outcome, error = Outcome.OK, None
        try:
            # An incomplete event waits for its end: a cut must not leave half an event before
            # the terminal error event, or the SDK fails to parse instead of raising.
            await (self._forward(write) if self._tr is None else self._flush(write))
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
                if self._tr is not None:
                    if await self._translate(chunk, write):
                        outcome, error = Outcome.TRUNCATED, f"an event over {_mb(self._cap)}"
                        break
                    continue
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
            await self._write(write, self._tail(outcome))
        except (ConnectionError, aiohttp.ClientConnectionResetError, asyncio.CancelledError):
            outcome, error = Outcome.CLIENT_CLOSED, "client went away"
            raise
        finally:
            self._pending.clear()
            self._resp.close()
            self._finish(outcome, error)

    def _tail(self, outcome: Outcome) -> bytes:
        """What ends the client's stream: the rest of a complete answer, or after a cut, the
        client format's terminal error event."""
        tr = self._tr
        if tr is not None:
            return tr.abort(INTERRUPTED) if outcome is Outcome.TRUNCATED else tr.finish()
        if outcome is Outcome.TRUNCATED:
            return stream_error_event(self._flavor, INTERRUPTED)
        return self._take(self._waiting)

    async def _translate(self, chunk: bytes, write: Callable[[bytes], Awaitable[None]]) -> bool:
        """Feed a translator; True when it has buffered more than `cap` bytes with no event."""
        assert self._tr is not None
        out = self._tr.feed(chunk)
        if out:
            self._quiet = 0
            await self._write(write, out)
            return False
        self._quiet += len(chunk)
        return self._quiet > self._cap

    async def _flush(self, write: Callable[[bytes], Awaitable[None]]) -> None:
        """The held events of a translated stream: whole client events already."""
        await self._write(write, self._take(self._waiting))

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
