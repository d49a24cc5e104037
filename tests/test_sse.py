"""SSE parsing across chunk splits, the streaming commit point, in-band errors and usage."""

from __future__ import annotations

import itertools
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from llmrouter.wire.apis import Usage
from llmrouter.wire.sse import SSEParser, StreamMeter


def ev(name: str | None, obj: object) -> bytes:
    head = f"event: {name}\n".encode() if name else b""
    data = obj if isinstance(obj, bytes) else json.dumps(obj).encode()
    return head + b"data: " + data + b"\n\n"


ANTHROPIC_STREAM = (
    ev("message_start", {"type": "message_start", "message": {"usage": {"input_tokens": 3}}})
    + ev("content_block_start", {"type": "content_block_start", "index": 0})
    + ev("ping", {"type": "ping"})
    + ev("content_block_delta", {"type": "content_block_delta", "delta": {"text": "Hel"}})
    + ev("content_block_delta", {"type": "content_block_delta", "delta": {"text": "lo"}})
    + ev("content_block_stop", {"type": "content_block_stop", "index": 0})
    + ev("message_delta", {"type": "message_delta", "usage": {"output_tokens": 2}})
    + ev("message_stop", {"type": "message_stop"})
)

CHAT_STREAM = (
    ev(None, {"choices": [{"delta": {"role": "assistant", "content": ""}}]})
    + b": keep-alive comment\n\n"
    + ev(None, {"choices": [{"delta": {"content": "Hi"}}]})
    + ev(None, {"choices": [{"delta": {"content": " there"}}]})
    + ev(None, {"choices": [], "usage": {"prompt_tokens": 4, "completion_tokens": 2}})
    + b"data: [DONE]\n\n"
)


def parse_all(chunks: list[bytes]) -> list[tuple[bytes | None, bytes]]:
    p = SSEParser()
    out = []
    for c in chunks:
        out.extend(p.feed(c))
    return out


def split_at(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({min(max(c, 0), len(data)) for c in cuts})
    bounds = [0, *points, len(data)]
    return [data[a:b] for a, b in itertools.pairwise(bounds)]


# -- parser -----------------------------------------------------------------------------------


def test_parser_basic_fields() -> None:
    events = parse_all(
        [
            b"event: a\ndata: 1\n\n"
            b"data: x\ndata: y\n\n"  # multi-line data joined by \n
            b": comment\n\n"  # comment only: no event
            b"id: 7\nretry: 100\ndata:nospace\n\n"  # id/retry ignored; space after colon optional
            b"event: e\r\ndata: crlf\r\n\r\n"  # CRLF lines
            b"data\n\n"  # field with no colon: empty data
        ]
    )
    assert events == [
        (b"a", b"1"),
        (None, b"x\ny"),
        (None, b"nospace"),
        (b"e", b"crlf"),
        (None, b""),
    ]


def test_parser_incomplete_event_is_held() -> None:
    p = SSEParser()
    assert p.feed(b"event: a\ndata: 1\n") == []
    assert p.feed(b"\n") == [(b"a", b"1")]
    assert p.feed(b"data: par") == []
    assert p.feed(b"tial\n\n") == [(None, b"partial")]


def test_parser_event_name_resets_after_dispatch() -> None:
    assert parse_all([b"event: a\ndata: 1\n\ndata: 2\n\n"]) == [(b"a", b"1"), (None, b"2")]


@pytest.mark.parametrize("stream", [ANTHROPIC_STREAM, CHAT_STREAM])
def test_parser_byte_by_byte(stream: bytes) -> None:
    one = parse_all([stream])
    assert one
    assert parse_all([bytes([b]) for b in stream]) == one


@settings(max_examples=300, deadline=None)
@given(
    stream=st.sampled_from(
        [ANTHROPIC_STREAM, CHAT_STREAM, ANTHROPIC_STREAM.replace(b"\n", b"\r\n")]
    ),
    cuts=st.lists(st.integers(min_value=0, max_value=2000), max_size=40),
)
def test_parser_any_split_gives_identical_events(stream: bytes, cuts: list[int]) -> None:
    assert parse_all(split_at(stream, cuts)) == parse_all([stream])


_line = st.binary(max_size=20).map(lambda b: b.replace(b"\n", b"").replace(b"\r", b""))


@settings(max_examples=200, deadline=None)
@given(
    events=st.lists(st.tuples(st.none() | _line, st.lists(_line, min_size=1, max_size=3))),
    cuts=st.lists(st.integers(min_value=0, max_value=4000), max_size=30),
)
def test_parser_roundtrips_generated_events(
    events: list[tuple[bytes | None, list[bytes]]], cuts: list[int]
) -> None:
    wire = b""
    expected = []
    for name, lines in events:
        if name is not None:
            wire += b"event: " + name + b"\n"
        for line in lines:
            wire += b"data: " + line + b"\n"
        wire += b"\n"
        expected.append((name, b"\n".join(lines)))
    assert parse_all(split_at(wire, cuts)) == expected


@settings(max_examples=200, deadline=None)
@given(cuts=st.lists(st.integers(min_value=0, max_value=2000), max_size=40))
def test_meter_state_independent_of_splits(cuts: list[int]) -> None:
    for api, flavor, stream in (
        ("anthropic", "anthropic", ANTHROPIC_STREAM),
        ("openai", "chat", CHAT_STREAM),
    ):
        whole = StreamMeter(api, flavor)  # type: ignore[arg-type]
        whole.feed(stream)
        parts = StreamMeter(api, flavor)  # type: ignore[arg-type]
        for chunk in split_at(stream, cuts):
            parts.feed(chunk)
        assert (
            parts.committed,
            parts.finished,
            parts.error,
            parts.content_events,
            parts.usage,
        ) == (
            whole.committed,
            whole.finished,
            whole.error,
            whole.content_events,
            whole.usage,
        )


# -- commit point: Anthropic ------------------------------------------------------------------


def test_anthropic_lifecycle_events_do_not_commit() -> None:
    m = StreamMeter("anthropic", "anthropic")
    m.feed(ev("message_start", {"type": "message_start", "message": {"usage": {}}}))
    m.feed(ev("content_block_start", {"type": "content_block_start"}))
    m.feed(ev("ping", {"type": "ping"}))
    m.feed(b": comment\n\n")
    assert not m.committed and m.content_events == 0 and not m.finished and m.error is None


def test_anthropic_content_block_delta_commits() -> None:
    m = StreamMeter("anthropic", "anthropic")
    m.feed(ev("message_start", {"type": "message_start", "message": {}}))
    m.feed(b"event: content_block_delta\ndata: {")  # not yet a whole event
    assert not m.committed
    m.feed(b'"type":"content_block_delta","delta":{"type":"input_json_delta"}}\n\n')
    assert m.committed and m.content_events == 1


def test_anthropic_full_stream() -> None:
    m = StreamMeter("anthropic", "anthropic")
    m.feed(ANTHROPIC_STREAM)
    assert m.committed and m.finished and m.error is None
    assert m.content_events == 2
    assert m.usage == Usage(3, 2)


@pytest.mark.parametrize("kind", ["overloaded_error", "api_error"])
def test_anthropic_inband_error_before_commit(kind: str) -> None:
    m = StreamMeter("anthropic", "anthropic")
    m.feed(ev("message_start", {"type": "message_start", "message": {}}))
    m.feed(ev("error", {"type": "error", "error": {"type": kind, "message": "Overloaded"}}))
    assert m.error == kind
    assert not m.committed and not m.finished


def test_anthropic_error_with_garbage_data() -> None:
    m = StreamMeter("anthropic", "anthropic")
    m.feed(b"event: error\ndata: not json\n\n")
    assert m.error == "error"


def test_anthropic_cut_stream_is_not_finished() -> None:
    m = StreamMeter("anthropic", "anthropic")
    m.feed(ANTHROPIC_STREAM[: ANTHROPIC_STREAM.index(b"event: message_stop")])
    assert m.committed and not m.finished


# -- commit point: OpenAI chat ----------------------------------------------------------------


@pytest.mark.parametrize(
    "delta",
    [
        {"role": "assistant"},
        {"role": "assistant", "content": ""},
        {"role": "assistant", "content": None},
        {"content": "", "tool_calls": []},
        {},
    ],
)
def test_chat_role_only_or_empty_deltas_do_not_commit(delta: dict[str, object]) -> None:
    m = StreamMeter("openai", "chat")
    m.feed(ev(None, {"choices": [{"index": 0, "delta": delta}]}))
    assert not m.committed


@pytest.mark.parametrize(
    "delta",
    [
        {"content": "Hi"},
        {"tool_calls": [{"index": 0, "function": {"name": "f", "arguments": ""}}]},
        {"function_call": {"name": "f"}},
        {"reasoning_content": "thinking"},
    ],
)
def test_chat_content_or_tool_calls_commit(delta: dict[str, object]) -> None:
    m = StreamMeter("openai", "chat")
    m.feed(ev(None, {"choices": [{"index": 0, "delta": delta}]}))
    assert m.committed and m.content_events == 1


def test_chat_legacy_completions_text_commits() -> None:
    m = StreamMeter("openai", "chat")
    m.feed(ev(None, {"choices": [{"text": ""}]}))
    assert not m.committed
    m.feed(ev(None, {"choices": [{"text": "x"}]}))
    assert m.committed


def test_chat_full_stream_counts_and_finishes() -> None:
    m = StreamMeter("openai", "chat")
    m.feed(CHAT_STREAM)
    assert m.committed and m.finished and m.error is None
    assert m.content_events == 2
    assert m.usage == Usage(4, 2)


def test_chat_error_chunk_before_and_after_commit() -> None:
    m = StreamMeter("openai", "chat")
    m.feed(ev(None, {"error": {"message": "overloaded", "type": "server_error"}}))
    assert m.error == "server_error" and not m.committed
    m = StreamMeter("openai", "chat")
    m.feed(ev(None, {"choices": [{"delta": {"content": "a"}}]}))
    m.feed(ev(None, {"error": {"message": "x", "code": "boom"}}))
    assert m.committed and m.error == "boom"


def test_chat_ignores_non_json_and_non_dict() -> None:
    m = StreamMeter("openai", "chat")
    m.feed(b'data: garbage\n\ndata: [1,2]\n\ndata: {"choices": [1, null]}\n\n')
    assert not m.committed and m.error is None and not m.finished


# -- commit point: OpenAI responses -----------------------------------------------------------


def test_responses_stream() -> None:
    m = StreamMeter("openai", "responses")
    m.feed(ev("response.created", {"type": "response.created"}))
    m.feed(ev("response.in_progress", {"type": "response.in_progress"}))
    m.feed(ev("response.output_item.added", {"type": "response.output_item.added"}))
    assert not m.committed
    m.feed(ev("response.output_text.delta", {"delta": "x"}))
    m.feed(ev("response.function_call_arguments.delta", {"delta": "{"}))
    assert m.committed and m.content_events == 2
    m.feed(ev("response.completed", {"response": {"usage": {"input_tokens": 2}}}))
    assert m.finished and m.usage == Usage(2)


@pytest.mark.parametrize("name", ["error", "response.failed"])
def test_responses_inband_error(name: str) -> None:
    m = StreamMeter("openai", "responses")
    m.feed(ev(name, {"type": name, "code": "server_error"}))
    assert m.error == "server_error"


def test_responses_incomplete_is_an_end() -> None:
    m = StreamMeter("openai", "responses")
    m.feed(ev("response.incomplete", {"response": {}}))
    assert m.finished


def test_responses_data_without_event_name_is_ignored() -> None:
    m = StreamMeter("openai", "responses")
    m.feed(ev(None, {"delta": "x"}))
    assert not m.committed
