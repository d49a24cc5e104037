"""What translation costs in CPU, per streamed answer and per request.

Normal runs have `--benchmark-disable` (each runs once, as a smoke test). Figures:
    .venv/bin/pytest tests/test_bench_translate.py --benchmark-enable
The translator replaces the relay's StreamMeter on a translated stream (it reports the same
commit/usage/error facts), so the cost translation ADDS is translator minus meter. Issue 12's
target is <= 10 % of the router's CPU per streamed request; `make bench` puts that at several
ms per request (docs/BENCHMARKS.md), against which these figures are read.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from llmrouter.wire.sse import StreamMeter
from llmrouter.wire.translate import stream_translator, translate_request

WORDS = ["The", "quick", "brown", "fox", "jumps", "over", "the", "lazy", "dog,", "and", "then"]


def _chat(delta: dict[str, Any], finish: str | None = None) -> bytes:
    obj = {
        "id": "chatcmpl-x",
        "object": "chat.completion.chunk",
        "created": 1,
        "model": "gpt-4o",
        "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
    }
    return b"data: " + json.dumps(obj, separators=(",", ":")).encode() + b"\n\n"


def _ant(name: str, obj: dict[str, Any]) -> bytes:
    return f"event: {name}\ndata: {json.dumps(obj, separators=(',', ':'))}\n\n".encode()


def openai_stream(events: int = 300, arg_chars: int = 8000) -> list[bytes]:
    """A Claude-Code-sized answer: `events` text deltas, then a Write-like tool call whose
    arguments arrive in ~40-char fragments, then usage. One network read per event."""
    out = [_chat({"role": "assistant", "content": ""})]
    out += [_chat({"content": " " + WORDS[i % len(WORDS)]}) for i in range(events)]
    args = json.dumps({"path": "a.py", "content": "x = 1\n" * (arg_chars // 6)})
    out.append(
        _chat(
            {
                "tool_calls": [
                    {
                        "index": 0,
                        "id": "call_1",
                        "type": "function",
                        "function": {"name": "Write", "arguments": ""},
                    }
                ]
            }
        )
    )
    for i in range(0, len(args), 40):
        out.append(
            _chat({"tool_calls": [{"index": 0, "function": {"arguments": args[i : i + 40]}}]})
        )
    out.append(_chat({}, "tool_calls"))
    usage = {
        "prompt_tokens": 90000,
        "completion_tokens": 2500,
        "prompt_tokens_details": {"cached_tokens": 80000},
    }
    out.append(
        b"data: "
        + json.dumps({"id": "chatcmpl-x", "choices": [], "usage": usage}).encode()
        + b"\n\n"
    )
    return [*out, b"data: [DONE]\n\n"]


def anthropic_stream(events: int = 300, arg_chars: int = 8000) -> list[bytes]:
    msg = {
        "id": "msg_1",
        "type": "message",
        "role": "assistant",
        "model": "claude-x",
        "content": [],
        "usage": {"input_tokens": 10, "cache_read_input_tokens": 80000, "output_tokens": 1},
    }
    out = [_ant("message_start", {"type": "message_start", "message": msg})]
    out.append(
        _ant(
            "content_block_start",
            {
                "type": "content_block_start",
                "index": 0,
                "content_block": {"type": "text", "text": ""},
            },
        )
    )
    for i in range(events):
        d = {"type": "text_delta", "text": " " + WORDS[i % len(WORDS)]}
        out.append(
            _ant("content_block_delta", {"type": "content_block_delta", "index": 0, "delta": d})
        )
    out.append(_ant("content_block_stop", {"type": "content_block_stop", "index": 0}))
    block = {"type": "tool_use", "id": "toolu_1", "name": "Write", "input": {}}
    out.append(
        _ant(
            "content_block_start",
            {"type": "content_block_start", "index": 1, "content_block": block},
        )
    )
    args = json.dumps({"path": "a.py", "content": "x = 1\n" * (arg_chars // 6)})
    for i in range(0, len(args), 40):
        d = {"type": "input_json_delta", "partial_json": args[i : i + 40]}
        out.append(
            _ant("content_block_delta", {"type": "content_block_delta", "index": 1, "delta": d})
        )
    out.append(_ant("content_block_stop", {"type": "content_block_stop", "index": 1}))
    out.append(
        _ant(
            "message_delta",
            {
                "type": "message_delta",
                "delta": {"stop_reason": "tool_use"},
                "usage": {"output_tokens": 2500},
            },
        )
    )
    return [*out, _ant("message_stop", {"type": "message_stop"})]


STREAMS = {"openai": openai_stream(), "anthropic": anthropic_stream()}
CLIENT = {"openai": "anthropic", "anthropic": "openai"}


def translate(provider: str, chunks: list[bytes]) -> int:
    t = stream_translator(provider, CLIENT[provider], request={"model": "m"})  # type: ignore[arg-type]
    n = sum(len(t.feed(c)) for c in chunks) + len(t.finish())
    assert t.finished and t.committed
    return n


def meter(provider: str, chunks: list[bytes]) -> None:
    m = StreamMeter(provider, "chat" if provider == "openai" else provider)  # type: ignore[arg-type]
    for c in chunks:
        m.feed(c)
    assert m.finished


@pytest.mark.parametrize("provider", ["openai", "anthropic"])
def test_bench_stream_translation(benchmark: Any, provider: str) -> None:
    benchmark.group = f"one streamed answer from {provider} ({len(STREAMS[provider])} events)"
    assert benchmark(translate, provider, STREAMS[provider]) > 0


@pytest.mark.parametrize("provider", ["openai", "anthropic"])
def test_bench_stream_meter_alone(benchmark: Any, provider: str) -> None:
    """The relay's meter on the same stream: what an untranslated stream already costs."""
    benchmark.group = f"one streamed answer from {provider} ({len(STREAMS[provider])} events)"
    benchmark(meter, provider, STREAMS[provider])


def claude_code_request(turns: int = 60) -> dict[str, Any]:
    """About 300 KB, the shape Claude Code sends: system blocks, ~40 tools, a long tool loop."""
    schema = {
        "type": "object",
        "properties": {f"p{i}": {"type": "string", "description": "d" * 80} for i in range(6)},
    }
    tools = [
        {"name": f"Tool{i}", "description": "x" * 600, "input_schema": schema} for i in range(40)
    ]
    messages: list[dict[str, Any]] = [
        {"role": "user", "content": [{"type": "text", "text": "fix the bug"}]}
    ]
    for i in range(turns):
        messages.append(
            {
                "role": "assistant",
                "content": [
                    {"type": "text", "text": "Let me look. " * 10},
                    {
                        "type": "tool_use",
                        "id": f"toolu_{i}",
                        "name": "Read",
                        "input": {"path": f"f{i}.py"},
                    },
                ],
            }
        )
        messages.append(
            {
                "role": "user",
                "content": [
                    {"type": "tool_result", "tool_use_id": f"toolu_{i}", "content": "line\n" * 600}
                ],
            }
        )
    system = [
        {"type": "text", "text": "x-anthropic-billing-header: cc_version=2;"},
        {"type": "text", "text": "You are Claude Code. " * 800},
    ]
    return {
        "model": "claude-sonnet-4-5",
        "max_tokens": 32000,
        "stream": True,
        "system": system,
        "tools": tools,
        "messages": messages,
        "metadata": {"user_id": "u"},
    }


REQUEST = claude_code_request()
REQUEST_BYTES = json.dumps(REQUEST).encode()


def request_roundtrip() -> int:
    """What the engine would do: translate the parsed payload and serialise it for the wire."""
    out, _ = translate_request(REQUEST, "anthropic", "openai", model="gpt-4o")
    return len(json.dumps(out).encode())


def test_bench_request_translation(benchmark: Any) -> None:
    benchmark.group = f"Claude Code request of {len(REQUEST_BYTES) // 1024} KB"
    assert benchmark(request_roundtrip) > 0


def test_bench_request_parse_alone(benchmark: Any) -> None:
    """Parsing the client's JSON, which the router already does for every request."""
    benchmark.group = f"Claude Code request of {len(REQUEST_BYTES) // 1024} KB"
    benchmark(json.loads, REQUEST_BYTES)
