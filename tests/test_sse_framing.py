"""SSE framing: every valid line ending (LF, CRLF, lone CR, cut anywhere), event boundaries the
relay forwards by, and work linear in the size of one event however it is cut.

"Linear" is checked without a clock: with tracemalloc, the bytes allocated per chunk fed. A
parser or relay that re-joins its whole pending buffer for each chunk allocates the square of
the event's size; one that keeps a list of chunks allocates each byte about once.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import tracemalloc
from collections.abc import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from llmrouter.proxy.relay import Relay, RelayEnd, hold_until_commit
from llmrouter.wire.outcome import Outcome
from llmrouter.wire.sse import SSEParser, StreamMeter


def anthropic_stream(eol: bytes) -> bytes:
    events = [
        ("message_start", {"type": "message_start", "message": {"usage": {"input_tokens": 5}}}),
        ("ping", {"type": "ping"}),
        ("content_block_delta", {"type": "content_block_delta", "index": 0,
                                 "delta": {"type": "text_delta", "text": "Hi"}}),
        ("message_delta", {"type": "message_delta", "usage": {"output_tokens": 2}}),
        ("message_stop", {"type": "message_stop"}),
    ]  # fmt: skip
    return b"".join(
        b"event: " + n.encode() + eol + b"data: " + json.dumps(o).encode() + eol + eol
        for n, o in events
    )


@pytest.mark.parametrize("eol", [b"\n", b"\r\n", b"\r"])
def test_every_line_ending_gives_the_same_events(eol: bytes) -> None:
    meter = StreamMeter("anthropic", "anthropic")
    data = anthropic_stream(eol)
    meter.feed(data)
    assert meter.committed and meter.finished and meter.content_events == 1
    assert (meter.usage.input_tokens, meter.usage.output_tokens) == (5, 2)
    assert meter.boundary == len(data)


@given(
    eol=st.sampled_from([b"\n", b"\r\n", b"\r"]),
    cuts=st.lists(st.integers(min_value=0, max_value=600), max_size=30),
)
@settings(max_examples=200, deadline=None)
def test_any_cut_gives_the_same_events_and_boundaries(eol: bytes, cuts: list[int]) -> None:
    data = anthropic_stream(eol)
    whole = SSEParser()
    expected = whole.feed(data)
    parser, got, bounds = SSEParser(), [], set()
    points = sorted({min(c, len(data)) for c in cuts} | {0, len(data)})
    for a, b in itertools.pairwise(points):
        got += parser.feed(data[a:b])
        bounds.add(parser.boundary)
    assert got == expected and parser.boundary == len(data)
    # each boundary is the end of a whole event: what precedes it parses to whole events only
    for b in bounds:
        assert b == 0 or data[:b].endswith(eol + eol), (b, data[:b][-10:])


def test_a_crlf_cut_between_its_cr_and_lf_is_one_line_end() -> None:
    p = SSEParser()
    assert p.feed(b"event: ping\r\ndata: {}\r\n\r") == [(b"ping", b"{}")]
    # A CRLF stream: the event's end waits for its LF, so a relay never cuts a CRLF in two.
    assert p.boundary == 0
    assert p.feed(b"\n") == [] and p.boundary == len(b"event: ping\r\ndata: {}\r\n\r\n")
    assert p.feed(b"data: x\r\n\r\n") == [(None, b"x")]  # the LF did not open an empty line
    # A CR-only stream never waits: its CR is the whole line end.
    q = SSEParser()
    assert q.feed(b"data: y\r\r") == [(None, b"y")] and q.boundary == 9


def test_cr_only_stream_commits_before_its_end() -> None:
    meter = StreamMeter("anthropic", "anthropic")
    data = anthropic_stream(b"\r")
    head = data[: data.index(b"event: message_delta")]
    meter.feed(head)
    assert meter.committed and not meter.finished


def allocated_per_chunk(feed: Callable[[bytes], object], chunk: bytes, n: int) -> int:
    """Bytes allocated (not kept) over `n` feeds of `chunk`: the sum of each call's peak."""
    total = 0
    tracemalloc.start()
    try:
        for _ in range(n):
            tracemalloc.reset_peak()
            before = tracemalloc.get_traced_memory()[0]
            feed(chunk)
            total += tracemalloc.get_traced_memory()[1] - before
    finally:
        tracemalloc.stop()
    return total


def test_one_huge_event_is_parsed_in_linear_work() -> None:
    meter = StreamMeter("anthropic", "anthropic")
    meter.feed(b"event: content_block_delta\ndata: ")
    chunk, n = b"x" * 65536, 256  # one 16 MB line, cut in 64 KB chunks
    work = allocated_per_chunk(meter.feed, chunk, n)
    assert work < 4 * len(chunk) * n, f"{work / 2**20:.0f} MB allocated for a 16 MB event"
    meter.feed(b"\n\n")
    assert meter.committed and meter.boundary == len(b"event: content_block_delta\ndata: ") + (
        len(chunk) * n + 2
    )


class FakeContent:
    def __init__(self, chunks: list[bytes]) -> None:
        self.chunks = list(chunks)

    async def readany(self) -> bytes:
        return self.chunks.pop(0) if self.chunks else b""


class FakeResponse:
    def __init__(self, chunks: list[bytes]) -> None:
        self.content = FakeContent(chunks)
        self.closed = False

    def close(self) -> None:
        self.closed = True


START = b'event: message_start\ndata: {"type":"message_start","message":{}}\n\n'
DELTA = b'event: content_block_delta\ndata: {"type":"content_block_delta"}\n\n'
STOP = b'event: message_stop\ndata: {"type":"message_stop"}\n\n'


def run_relay(chunks: list[bytes], cap: int = 64 * 2**20) -> tuple[list[bytes], RelayEnd]:
    meter = StreamMeter("anthropic", "anthropic")
    meter.feed(START + DELTA)
    ends: list[RelayEnd] = []
    out: list[bytes] = []

    async def write(data: bytes) -> None:
        out.append(data)

    relay = Relay(FakeResponse(chunks), 200, [], [START, DELTA], meter, "anthropic", 5.0,  # type: ignore[arg-type]
                  ends.append, cap)  # fmt: skip
    asyncio.run(relay.pump(write))
    return out, ends[0]


def test_the_relay_forwards_whole_events_with_any_line_ending() -> None:
    cr = DELTA.replace(b"\n", b"\r")
    out, end = run_relay([cr[:10], cr[10:] + STOP[:5], STOP[5:]])
    assert b"".join(out) == START + DELTA + cr + STOP and end.outcome is Outcome.OK
    assert out[1] == cr  # the CR-only event went out whole, once it was whole


class MeteredContent(FakeContent):
    """Sums the bytes allocated between reads: the relay's work on each chunk."""

    work = 0

    async def readany(self) -> bytes:
        current, peak = tracemalloc.get_traced_memory()
        self.work += peak - getattr(self, "_before", current)
        tracemalloc.reset_peak()
        self._before = tracemalloc.get_traced_memory()[0]
        return await super().readany()


def test_the_relay_forwards_one_huge_event_in_linear_work() -> None:
    big = b"event: content_block_delta\ndata: " + b"x" * (16 * 2**20) + b"\n\n"
    chunks = [big[i : i + 65536] for i in range(0, len(big), 65536)] + [STOP]
    resp = FakeResponse([])
    resp.content = content = MeteredContent(chunks)
    meter = StreamMeter("anthropic", "anthropic")
    meter.feed(START + DELTA)
    sent: list[int] = []

    async def write(data: bytes) -> None:
        sent.append(len(data))

    relay = Relay(resp, 200, [], START + DELTA, meter, "anthropic", 5.0, lambda end: None)  # type: ignore[arg-type]
    tracemalloc.start()
    try:
        asyncio.run(relay.pump(write))
    finally:
        tracemalloc.stop()
    assert sent == [len(START + DELTA), len(big), len(STOP)]
    assert content.work < 6 * len(big), f"{content.work / 2**20:.0f} MB allocated for 16 MB"


def test_an_event_over_the_cap_ends_the_stream_with_an_error_event() -> None:
    endless = [b"event: content_block_delta\ndata: " + b"x" * 1000] + [b"x" * 1000] * 50
    out, end = run_relay(endless, cap=20_000)
    assert end.outcome is Outcome.TRUNCATED and end.error == "an event over 0.0190735 MB"
    body = b"".join(out)
    assert body.startswith(START + DELTA) and body.endswith(b"\n\n")
    assert b"event: error" in body and b"xxx" not in body


def test_bytes_before_the_first_token_are_capped() -> None:
    pings = [b'event: ping\ndata: {"type": "ping"}\n\n' * 100] * 100
    meter = StreamMeter("anthropic", "anthropic")
    held, error = asyncio.run(hold_until_commit(FakeResponse(pings), meter, 5.0, 50_000))  # type: ignore[arg-type]
    assert error == (Outcome.INBAND_ERROR, "over 0.0476837 MB before the first token")
    assert sum(map(len, held)) <= 50_000 + len(pings[0])
