"""The oracle: for every provider fixture, the client's official SDK accumulates the same final
message from the translated stream as from the translated non-streamed answer, and any
chunking of the provider's bytes gives the same translated bytes."""

from __future__ import annotations

import itertools
import json
from typing import Any

import anthropic
import openai
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from llmrouter.wire.translate import StreamTranslator, stream_translator, translate_response
from translate_fixtures import ALL, Fixture, sdks

OK = [f for f in ALL if f.fails is None]
FAILING = [f for f in ALL if f.fails is not None]
SEED = "req1"
CLIENT_REQUEST: dict[str, dict[str, Any]] = {
    "anthropic": {"model": "claude-sonnet-4-5", "stream": True},
    "openai": {"model": "gpt-4o", "stream": True, "stream_options": {"include_usage": True}},
}


def client_of(fx: Fixture) -> str:
    return "anthropic" if fx.api == "openai" else "openai"


def run(fx: Fixture, chunks: Any) -> tuple[bytes, StreamTranslator]:
    client = client_of(fx)
    t = stream_translator(
        fx.api, client, request=CLIENT_REQUEST[client], created=1731000000, seed=SEED
    )  # type: ignore[arg-type]
    out = b"".join(t.feed(c) for c in chunks) + t.finish()
    return out, t


def whole(fx: Fixture) -> bytes:
    assert fx.body is not None
    status, body = translate_response(
        json.dumps(fx.body).encode(),
        200,
        fx.api,
        client_of(fx),  # type: ignore[arg-type]
        model=CLIENT_REQUEST[client_of(fx)]["model"],
        created=1731000000,
        seed=SEED,
    )
    assert status == 200
    return body


def anthropic_view(msg: Any) -> dict[str, Any]:
    blocks = []
    for b in msg.content:
        if b.type == "text":
            blocks.append(("text", b.text))
        elif b.type == "thinking":
            blocks.append(("thinking", b.thinking, b.signature))
        else:
            blocks.append(("tool_use", b.id, b.name, b.input))
    u = msg.usage
    usage = {
        "input_tokens": u.input_tokens,
        "output_tokens": u.output_tokens,
        "cache_read_input_tokens": u.cache_read_input_tokens,
        "cache_creation_input_tokens": u.cache_creation_input_tokens,
    }
    return {
        "id": msg.id,
        "model": msg.model,
        "role": msg.role,
        "content": blocks,
        "stop_reason": msg.stop_reason,
        "stop_sequence": msg.stop_sequence,
        "usage": usage,
    }


def openai_view(c: Any) -> dict[str, Any]:
    choice = c.choices[0]
    m = choice.message
    calls = [
        (t.id, t.type, t.function.name, json.loads(t.function.arguments or "{}"))
        for t in m.tool_calls or ()
    ]
    u = c.usage
    usage = None
    if u is not None:
        cached = u.prompt_tokens_details.cached_tokens if u.prompt_tokens_details else None
        usage = {
            "prompt_tokens": u.prompt_tokens,
            "completion_tokens": u.completion_tokens,
            "total_tokens": u.total_tokens,
            "cached_tokens": cached,
        }
    extra = m.model_extra or {}
    return {
        "id": c.id,
        "model": c.model,
        "created": c.created,
        "role": m.role,
        "content": m.content,
        "reasoning": extra.get("reasoning_content"),
        "tools": calls,
        "finish_reason": choice.finish_reason,
        "usage": usage,
    }


@pytest.mark.parametrize("fx", OK, ids=lambda f: f.name)
def test_streamed_and_whole_answers_accumulate_to_the_same_message(fx: Fixture) -> None:
    out, t = run(fx, fx.chunks)
    if client_of(fx) == "anthropic":
        streamed = anthropic_view(sdks.anthropic_streamed(out))
        assert streamed == anthropic_view(sdks.anthropic_body(whole(fx)))
    else:
        streamed = openai_view(sdks.openai_streamed(out))
        assert streamed == openai_view(sdks.openai_body(whole(fx)))
    assert t.finished and t.error is None
    assert t.committed == bool(fx.text or fx.reasoning or fx.tools)


@pytest.mark.parametrize("fx", OK, ids=lambda f: f.name)
def test_the_client_gets_what_the_provider_said(fx: Fixture) -> None:
    """Checked against the fixture's own statement, not against the other translation."""
    out, _ = run(fx, fx.chunks)
    if client_of(fx) == "anthropic":
        msg = sdks.anthropic_streamed(out)
        texts = "".join(b.text for b in msg.content if b.type == "text")
        thinking = "".join(b.thinking for b in msg.content if b.type == "thinking")
        tools = [(b.id, b.name, b.input) for b in msg.content if b.type == "tool_use"]
        kinds = [b.type for b in msg.content]
        assert kinds == sorted(kinds, key=["thinking", "text", "tool_use"].index)
        assert msg.stop_reason == fx.stop
        assert msg.usage.model_dump(include=set(fx.usage)) == fx.usage
    else:
        c = sdks.openai_streamed(out)
        m = c.choices[0].message
        texts, thinking = m.content or "", (m.model_extra or {}).get("reasoning_content") or ""
        tools = [
            (t.id, t.function.name, json.loads(t.function.arguments)) for t in m.tool_calls or ()
        ]
        assert c.choices[0].finish_reason == fx.stop
        u = c.usage
        got = {
            "prompt_tokens": u.prompt_tokens,
            "completion_tokens": u.completion_tokens,
            "cached_tokens": u.prompt_tokens_details.cached_tokens,
        }
        assert got == fx.usage
    assert texts == fx.text
    assert thinking == fx.reasoning
    assert [(name, args) for _, name, args in tools] == [(x.name, x.input) for x in fx.tools]
    for (got_id, *_), want in zip(tools, fx.tools, strict=True):
        if want.id is not None:
            assert got_id == want.id  # ids kept: the next turn's tool results must pair up
        else:
            assert got_id.startswith(f"toolu_{SEED}_")
    assert len({i for i, *_ in tools}) == len(tools)


@pytest.mark.parametrize("fx", FAILING, ids=lambda f: f.name)
def test_a_failed_stream_ends_in_the_clients_error_never_a_fake_completion(fx: Fixture) -> None:
    out, t = run(fx, fx.chunks)
    assert b"message_stop" not in out and b"[DONE]" not in out
    if client_of(fx) == "anthropic":
        with pytest.raises(anthropic.APIError):
            sdks.anthropic_streamed(out)
    else:
        with pytest.raises(openai.APIError):
            sdks.openai_streamed(out)
    if fx.fails == "error":
        assert t.error is not None
    else:
        assert t.error is None and not t.finished
    assert t.committed  # every failing fixture had content first: past the commit point


REFERENCE = {fx.name: run(fx, fx.chunks)[0] for fx in ALL}


@pytest.mark.parametrize("fx", ALL, ids=lambda f: f.name)
def test_byte_by_byte_gives_the_same_events(fx: Fixture) -> None:
    data = fx.stream
    assert run(fx, (data[i : i + 1] for i in range(len(data))))[0] == REFERENCE[fx.name]


@pytest.mark.parametrize("fx", ALL, ids=lambda f: f.name)
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_any_chunking_gives_the_same_events(fx: Fixture, data: st.DataObject) -> None:
    stream = fx.stream
    cuts = data.draw(st.sets(st.integers(1, len(stream) - 1), max_size=24))
    bounds = [0, *sorted(cuts), len(stream)]
    chunks = [stream[a:b] for a, b in itertools.pairwise(bounds)]
    assert run(fx, chunks)[0] == REFERENCE[fx.name]


def test_every_output_is_whole_events() -> None:
    """Each feed returns whole events: the relay can write it as it comes."""
    for fx in ALL:
        client = client_of(fx)
        t = stream_translator(fx.api, client, request=CLIENT_REQUEST[client])  # type: ignore[arg-type]
        stream = fx.stream
        for i in range(0, len(stream), 3):
            out = t.feed(stream[i : i + 3])
            assert not out or out.endswith(b"\n\n"), fx.name


@pytest.mark.parametrize("fx", [f for f in OK if "index" not in f.name], ids=lambda f: f.name)
def test_each_fixture_body_is_its_streams_non_streamed_twin(fx: Fixture) -> None:
    """The provider's own SDK accumulates the raw stream to the fixture's body: the two halves
    of the oracle describe one answer. (Not for Gemini's index-less calls, which the OpenAI
    SDK cannot accumulate: that is the bug translation has to absorb.)"""
    assert fx.body is not None
    if fx.api == "anthropic":
        raw = anthropic_view(sdks.anthropic_streamed(fx.stream))
        assert raw == anthropic_view(sdks.anthropic_body(json.dumps(fx.body).encode()))
        return
    raw = openai_view(sdks.openai_streamed(fx.stream))
    body = openai_view(sdks.openai_body(json.dumps(fx.body).encode()))
    for key in ("content", "tools", "finish_reason", "usage"):
        assert (raw[key] or None) == (body[key] or None), key


def _spaced(stream: bytes) -> bytes:
    """The same events, re-serialised with spaces: no byte-level fast path can match them."""
    out = []
    for line in stream.split(b"\n"):
        if line.startswith(b"data: {"):
            line = b"data: " + json.dumps(json.loads(line[6:]), separators=(", ", ": ")).encode()
        out.append(line)
    return b"\n".join(out)


@pytest.mark.parametrize("fx", ALL, ids=lambda f: f.name)
def test_the_fast_paths_say_what_the_parsed_path_says(fx: Fixture) -> None:
    """Plain text and argument fragments skip JSON decoding; the result must not differ
    (up to how non-ASCII text is escaped)."""
    fast, _ = run(fx, fx.chunks)
    slow, _ = run(fx, [_spaced(fx.stream)])

    def events(raw: bytes) -> list[Any]:
        return [json.loads(line[6:]) for line in raw.split(b"\n") if line.startswith(b"data: {")]

    assert events(fast) == events(slow)
    assert slow.count(b"\n\n") == fast.count(b"\n\n")


def test_the_split_utf8_fixtures_really_split_characters() -> None:
    for fx in ALL:
        if "utf8" in fx.name:
            broken = 0
            for c in fx.chunks:
                try:
                    c.decode()
                except UnicodeDecodeError:
                    broken += 1
            assert broken >= 2, fx.name
