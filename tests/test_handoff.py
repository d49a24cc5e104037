"""The loopback handoff: 127.0.0.1 only, each parked stream fetched once by its token, unfetched
streams released (their upstream closed), and a relay that keeps chunks flowing as they come."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

import aiohttp
import pytest
from llmrouter.proxy.handoff import TOKEN_HEADER, Handoff
from llmrouter.proxy.relay import Relay, RelayEnd
from llmrouter.tools.fakeprovider import Behaviour, FakeProvider
from llmrouter.wire.outcome import Outcome
from llmrouter.wire.sse import StreamMeter

BODY = {"model": "m", "max_tokens": 5, "stream": True, "messages": []}


@pytest.fixture
async def fake() -> AsyncIterator[FakeProvider]:
    f = FakeProvider("a", default=Behaviour(deltas=4, interval=0.05))
    await f.start()
    yield f
    await f.stop()


@pytest.fixture
async def handoff() -> AsyncIterator[Handoff]:
    h = Handoff(ttl=0.3)
    await h.start()
    yield h
    await h.stop()


async def open_relay(
    session: aiohttp.ClientSession, fake: FakeProvider, ends: list[RelayEnd]
) -> Relay:
    resp = await session.post(fake.url + "/v1/messages", json=BODY)
    return Relay(resp, 200, [("content-type", "text/event-stream")], b"", StreamMeter(
        "anthropic", "anthropic"), "anthropic", 5.0, ends.append)  # fmt: skip


async def test_parked_stream_is_fetched_once_by_its_token(fake, handoff) -> None:
    ends: list[RelayEnd] = []
    async with aiohttp.ClientSession() as s:
        token = handoff.park(await open_relay(s, fake, ends))
        url = f"http://127.0.0.1:{handoff.port}/"
        async with s.get(url, headers={TOKEN_HEADER: "wrong"}) as r:
            assert r.status == 404
        arrivals = []
        async with s.get(url, headers={TOKEN_HEADER: token}) as r:
            assert r.status == 200
            async for chunk in r.content.iter_any():
                arrivals.append((asyncio.get_running_loop().time(), chunk))
        async with s.get(url, headers={TOKEN_HEADER: token}) as r:
            assert r.status == 404  # used
    body = b"".join(c for _, c in arrivals)
    assert body.count(b"event: content_block_delta") == 4 and b"message_stop" in body
    assert arrivals[-1][0] - arrivals[0][0] > 0.1  # relayed as it came, not buffered
    assert len(ends) == 1 and ends[0].outcome is Outcome.OK and ends[0].bytes == len(body)
    assert handoff.pending == 0


async def test_an_unfetched_stream_is_released(fake, handoff) -> None:
    ends: list[RelayEnd] = []
    async with aiohttp.ClientSession() as s:
        handoff.park(await open_relay(s, fake, ends))
        assert handoff.pending == 1
        for _ in range(100):  # the sweep runs every ttl
            if ends:
                break
            await asyncio.sleep(0.1)
    assert handoff.pending == 0
    assert ends and ends[0].outcome is Outcome.CLIENT_CLOSED


async def test_listens_on_loopback_only(handoff) -> None:
    assert handoff._runner is not None
    assert [a[0] for a in handoff._runner.addresses] == ["127.0.0.1"]


async def test_a_cut_after_commit_ends_with_a_terminal_error_event() -> None:
    fake = FakeProvider("a", default=Behaviour(kind="cut", after_deltas=2))
    await fake.start()
    try:
        body, end = await pump_from(fake.url + "/v1/messages", idle=5.0)
    finally:
        await fake.stop()
    assert body.count(b"event: content_block_delta") == 2
    last = body.strip().split(b"\n\n")[-1]
    assert last.startswith(b"event: error\n")
    error = json.loads(last.split(b"data: ", 1)[1])
    expected = {"type": "api_error", "message": "upstream stream interrupted"}
    assert error == {"type": "error", "error": expected}
    assert end.outcome is Outcome.TRUNCATED


START = b'event: message_start\ndata: {"type":"message_start","message":{"id":"m"}}\n\n'
DELTA = (b'event: content_block_delta\ndata: {"type":"content_block_delta","index":0,'
         b'"delta":{"type":"text_delta","text":"hi"}}\n\n')  # fmt: skip
STOP = b'event: message_stop\ndata: {"type":"message_stop"}\n\n'


async def relay_raw(parts: list[bytes], then: str) -> tuple[bytes, RelayEnd]:
    """Relay a hand-made upstream stream that sends `parts` and then `then`s (reset|hang)."""
    from aiohttp import web

    async def handler(request: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse(headers={"content-type": "text/event-stream"})
        await resp.prepare(request)
        for p in parts:
            await resp.write(p)
            await asyncio.sleep(0.02)
        if then == "reset":
            assert request.transport is not None
            request.transport.abort()
        else:
            await asyncio.sleep(30)
        return resp

    runner = web.AppRunner(web.Application(), handle_signals=False, shutdown_timeout=0.5)
    runner.app.router.add_post("/v1/messages", handler)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        return await pump_from(f"http://127.0.0.1:{runner.addresses[0][1]}/v1/messages", 0.5)
    finally:
        await runner.cleanup()


async def pump_from(url: str, idle: float) -> tuple[bytes, RelayEnd]:
    """Relay the stream `url` answers into memory, as the handoff would to a client."""
    ends: list[RelayEnd] = []
    out: list[bytes] = []

    async def write(data: bytes) -> None:
        out.append(data)

    async with aiohttp.ClientSession() as s:
        resp = await s.post(url, json=BODY)
        meter = StreamMeter("anthropic", "anthropic")
        await Relay(resp, 200, [], b"", meter, "anthropic", idle, ends.append).pump(write)
    return b"".join(out), ends[0]


async def test_a_cut_mid_event_drops_the_half_event_before_the_error_event() -> None:
    body, end = await relay_raw([START, DELTA, DELTA[:40]], "reset")
    assert body.startswith(START + DELTA)
    assert DELTA[:40] not in body[len(START + DELTA) :]
    events = body.split(b"\n\n")
    assert events[-2].startswith(b"event: error\ndata: ")  # a whole event the SDK can parse
    json.loads(events[-2].split(b"data: ", 1)[1])
    assert end.outcome is Outcome.TRUNCATED


@pytest.mark.parametrize("then", ["reset", "hang"])
async def test_an_unclean_close_after_the_final_event_is_not_a_truncation(then: str) -> None:
    body, end = await relay_raw([START, DELTA, STOP], then)
    assert body == START + DELTA + STOP
    assert end.outcome is Outcome.OK
