"""The bounded copy of a relayed stream: whole below the limit, cut at an event end above it."""

from __future__ import annotations

from llm_bodies import anthropic_stream
from llmrouter.wire.render import render_response
from llmrouter.wire.streamcopy import StreamCopy


def _feed(copy: StreamCopy, data: bytes, step: int) -> None:
    for i in range(0, len(data), step):  # chunk boundaries are not event boundaries
        copy.add(data[i : i + step])


def test_whole_stream_below_the_limit() -> None:
    stream = anthropic_stream()
    copy = StreamCopy(limit=len(stream))
    _feed(copy, stream, 7)
    assert copy.body() == stream and not copy.truncated and copy.total == len(stream)


def test_cut_at_an_event_end_with_a_marker() -> None:
    stream = anthropic_stream()
    for limit in (1, 200, 700, 1500, len(stream) - 1):
        for step in (1, 13, 4096):
            copy = StreamCopy(limit=limit)
            _feed(copy, stream, step)
            body = copy.body()
            kept = body[: body.index(b"\n: llmrouter: ")]
            assert copy.truncated and copy.total == len(stream)
            assert len(kept) <= limit and stream.startswith(kept)
            assert kept == b"" or kept.endswith(b"\n\n"), (limit, step)  # whole events only
            assert f"copy truncated at {limit:,} bytes".encode() in body
    copy = StreamCopy(limit=900)
    _feed(copy, stream, 50)
    text = render_response(copy.body(), "text/event-stream", "/v1/messages")
    assert "[copy truncated at 900 bytes: the rest reached the client but is not kept]" in text
    assert text.startswith("anthropic answer · model claude-sonnet-4-5")


def test_tee_as_a_flow_stream_callable() -> None:
    from mitmproxy.test import tflow

    f = tflow.tflow(resp=True)
    assert f.response is not None
    response = f.response
    stream = anthropic_stream()
    copy = StreamCopy(limit=len(stream))
    response.stream = copy.tee(lambda body: setattr(response, "raw_content", body))
    out = [response.stream(stream[i : i + 100]) for i in range(0, len(stream), 100)]
    assert b"".join(out) == stream  # the client gets every byte, unchanged
    assert response.stream(b"") == b""
    assert response.raw_content == stream and response.get_text().startswith("event: ")
