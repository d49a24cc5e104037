"""Request bodies: decoded within max_request_mb whatever the content-encoding (a small bomb
stops at the cap, in bounded memory), and the model changed in place, byte for byte, when
that is the only change."""

from __future__ import annotations

import gzip
import json
import tracemalloc
import zlib

import brotli
import pytest
from llmrouter.proxy.body import BodyError, decode, set_model

try:
    from compression import zstd  # type: ignore[import-not-found]
except ImportError:
    from backports import zstd  # type: ignore[no-redef]

DATA = json.dumps({"model": "m", "messages": [{"role": "user", "content": "hi" * 500}]}).encode()
ENCODED = {
    "gzip": gzip.compress(DATA),
    "x-gzip": gzip.compress(DATA),
    "deflate": zlib.compress(DATA),
    "br": brotli.compress(DATA),
    "zstd": zstd.compress(DATA),
}


@pytest.mark.parametrize("encoding", [*ENCODED, "identity", "", None])
def test_every_encoding_decodes_within_the_cap(encoding: str | None) -> None:
    raw = ENCODED.get(encoding or "", DATA)
    assert decode(raw, encoding, len(DATA)) == DATA
    with pytest.raises(BodyError) as e:
        decode(raw, encoding, len(DATA) - 1)
    assert e.value.status == 413 and "max_request_mb" in str(e.value)


def test_raw_deflate_and_concatenated_members_decode() -> None:
    raw_deflate = zlib.compress(DATA)[2:-4]  # no zlib header: servers in the wild send it
    assert decode(raw_deflate, "deflate", 10**6) == DATA
    assert decode(gzip.compress(DATA) + gzip.compress(DATA), "gzip", 10**6) == DATA * 2
    assert decode(zstd.compress(DATA) + zstd.compress(DATA), "zstd", 10**6) == DATA * 2


@pytest.mark.parametrize("encoding", list(ENCODED))
def test_truncated_or_garbage_bodies_are_a_400(encoding: str) -> None:
    for raw in (ENCODED[encoding][:-8], b"not compressed at all"):
        with pytest.raises(BodyError) as e:
            decode(raw, encoding, 10**6)
        assert e.value.status == 400


def test_an_unknown_encoding_is_a_400() -> None:
    with pytest.raises(BodyError, match="unsupported content-encoding 'gzip, br'") as e:
        decode(b"x", "gzip, br", 100)
    assert e.value.status == 400


@pytest.mark.parametrize("encoding", ["gzip", "br", "zstd"])
def test_a_bomb_stops_at_the_cap_in_bounded_memory(encoding: str) -> None:
    zeros = b"\0" * (64 * 2**20)
    raw = {"gzip": gzip.compress, "br": brotli.compress, "zstd": zstd.compress}[encoding](zeros)
    assert len(raw) < 2**20
    cap = 2**20
    tracemalloc.start()
    try:
        with pytest.raises(BodyError) as e:
            decode(raw, encoding, cap)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert e.value.status == 413
    assert peak < 4 * cap, f"{peak / 2**20:.1f} MB to refuse a body capped at 1 MB"


BODY = (
    b'{"model": "claude-x", "messages": [{"role": "user", "content": "say \\"model\\": '
    b'\\"claude-x\\""}], "tools": [{"name": "Task", "input_schema": {"properties": '
    b'{"model": {"type": "string"}}}}], "stream": true}'
)


def test_set_model_changes_only_the_top_level_model() -> None:
    out = set_model(BODY, "claude-x", "deepseek-chat")
    assert out == BODY.replace(b'"model": "claude-x"', b'"model": "deepseek-chat"', 1)
    assert json.loads(out)["messages"] == json.loads(BODY)["messages"]
    # escapes and odd spacing of the client's JSON are kept; the new name is JSON-escaped
    odd = b'{"messages":[],\n "model" :\t"claude\\u002dx","n":1}'
    assert set_model(odd, "claude-x", 'a"b') == b'{"messages":[],\n "model" :\t"a\\"b","n":1}'


def test_set_model_gives_up_when_the_place_is_ambiguous() -> None:
    # an earlier assistant turn called a tool with the same model name: re-serialize instead
    turn = {"role": "assistant", "content": [{"type": "tool_use", "input": {"model": "claude-x"}}]}
    body = json.dumps({"messages": [turn], "model": "claude-x"}).encode()
    assert set_model(body, "claude-x", "other") is None
    assert set_model(b'{"model": "else"}', "claude-x", "other") is None


def test_the_head_of_claude_codes_key_order_is_read_without_parsing() -> None:
    from llmrouter.proxy.body import read_head

    body = b'{"model":"claude-x","messages":[{"model":"nested","stream":false}],"stream":true}'
    assert read_head(body).model == "claude-x" and read_head(body).stream is True
    # a last member of a nested object, or text that looks like one, is not the root's
    assert read_head(b'{"model":"m","x":{"stream":true}}').stream is None
    assert read_head(b'{"model":"m","x":"a \\"stream\\":true}"}').stream is None
    # any other order is read by the full decoder, to the same answer
    assert read_head(b'{"stream":true,"model":"m","messages":[]}').stream is True
    assert read_head(b'{"messages":[{"model":"n"}],"model":"m"}').model == "m"
    assert read_head(b'{"model":"claude-\\ud800","stream":false}').model == "claude-\ud800"
    assert read_head(b'{"model":1,"stream":"true"}').stream == "true"
    for bad in (b"", b"[1]", b"not json", b'{"model":"m"'):
        assert not read_head(bad).is_object
