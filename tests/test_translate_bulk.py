"""The stream translator's bulk path: a read that carries many whole text events in OpenAI's
usual shape is taken in one regex pass per event, without the SSE parser. It must give exactly
what the event-by-event path gives, however the provider's bytes are cut."""

from __future__ import annotations

import itertools
import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from llmrouter.tools._fakepayloads import APIS, Reply
from llmrouter.wire.translate import stream_translator
from llmrouter.wire.translate.to_anthropic_stream import ToAnthropicStream

PIECES = ["Hello", " wörld", ' "quoted"', " back\\slash", " 日本", "", " \u2028 line", " end."]


def stream(pieces: list[str], *, usage: bool = True, tail: bytes = b"") -> bytes:
    r = Reply(id="chatcmpl-abc", model="gpt-4o", pieces=pieces, input_tokens=12,
              output_tokens=len(pieces), include_usage=usage, created=1731000000)  # fmt: skip
    chat = APIS["chat"]
    events = [*chat.opening(r), *(chat.delta(r, i) for i in range(len(pieces)))]
    return b"".join(events) + (tail or b"".join(chat.closing(r)))


class EventByEvent(ToAnthropicStream):
    """The translator with its bulk path off: every event goes through the SSE parser."""

    __slots__ = ()

    def _bulk_text(self, chunk: bytes, out: list[bytes]) -> int:
        return 0


def translate(chunks: list[bytes], bulk: bool) -> tuple[bytes, Any]:
    if bulk:
        t = stream_translator("openai", "anthropic", request={"model": "claude-x"}, seed="s")
    else:
        t = EventByEvent(model="claude-x", seed="s")
    return b"".join(t.feed(c) for c in chunks) + t.finish(), t


CASES = {
    "usage chunk": stream(PIECES * 5),
    "no usage": stream(PIECES * 5, usage=False),
    "in-band error": stream(PIECES * 3, tail=b'data: {"error":{"message":"boom","type":"x"}}\n\n'),
    "cut": stream(PIECES * 3, tail=b'data: {"id":"chatcmpl-abc","obj'),
}


@pytest.mark.parametrize("name", list(CASES))
def test_one_read_is_taken_in_bulk_and_says_what_the_parser_says(name: str) -> None:
    data = CASES[name]
    calls: list[int] = []
    original = ToAnthropicStream._bulk_text

    def counting(self: ToAnthropicStream, chunk: bytes, out: list[bytes]) -> int:
        calls.append(original(self, chunk, out))
        return calls[-1]

    ToAnthropicStream._bulk_text = counting  # type: ignore[method-assign]
    try:
        # the opening goes through the parser (it opens the text block), the rest in bulk
        head = data.index(b"data: ", data.index(b'"content":"Hello"'))
        fast, t = translate([data[:head], data[head:]], bulk=True)
    finally:
        ToAnthropicStream._bulk_text = original  # type: ignore[method-assign]
    slow, u = translate([data], bulk=False)
    assert max(calls) > 1000 and fast == slow  # most of the stream, in one pass
    assert (t.committed, t.finished, t.error, t.usage, t.content_events) == (
        u.committed, u.finished, u.error, u.usage, u.content_events)  # fmt: skip
    texts = [json.loads(x[6:])["delta"].get("text") for x in fast.split(b"\n")
             if x.startswith(b'data: {"type":"content_block_delta"')]  # fmt: skip
    assert "".join(t or "" for t in texts).startswith('Hello wörld "quoted" back\\slash 日本')


@pytest.mark.parametrize("name", list(CASES))
@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_any_chunking_gives_the_same_bytes(name: str, data: st.DataObject) -> None:
    raw = CASES[name]
    cuts = data.draw(st.sets(st.integers(1, len(raw) - 1), max_size=30))
    bounds = [0, *sorted(cuts), len(raw)]
    chunks = [raw[a:b] for a, b in itertools.pairwise(bounds)]
    assert translate(chunks, bulk=True)[0] == translate([raw], bulk=False)[0]


def test_crlf_and_other_shapes_go_through_the_parser() -> None:
    crlf = CASES["usage chunk"].replace(b"\n", b"\r\n")
    assert translate([crlf], bulk=True)[0] == translate([crlf], bulk=False)[0]
    spaced = CASES["usage chunk"].replace(b'"delta":{"content"', b'"delta": {"content"')
    assert translate([spaced], bulk=True)[0] == translate([spaced], bulk=False)[0]
