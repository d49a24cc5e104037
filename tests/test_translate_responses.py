"""Non-streamed answers, usage arithmetic, error bodies and the translators' edge cases."""

from __future__ import annotations

import json
from typing import Any

import anthropic
import openai
import pytest
from llmrouter.wire.apis import Usage
from llmrouter.wire.translate import (
    response_headers,
    stream_translator,
    translate_error,
    translate_response,
)
from llmrouter.wire.translate.common import anthropic_usage, openai_usage, provider_usage
from translate_fixtures import sdks


def test_usage_arithmetic_never_double_counts_the_cache() -> None:
    # OpenAI: prompt_tokens INCLUDES the cached tokens.
    u = provider_usage(
        "openai",
        {
            "prompt_tokens": 2048,
            "completion_tokens": 10,
            "prompt_tokens_details": {"cached_tokens": 1920, "cache_write_tokens": 100},
        },
    )
    assert u == Usage(2048, 10, 1920, 100)
    assert anthropic_usage(u) == {
        "input_tokens": 28,  # 2048 - 1920 read - 100 written
        "output_tokens": 10,
        "cache_read_input_tokens": 1920,
        "cache_creation_input_tokens": 100,
    }
    # Anthropic: input_tokens EXCLUDES cache reads and writes.
    a = provider_usage(
        "anthropic",
        {
            "input_tokens": 12,
            "output_tokens": 5,
            "cache_read_input_tokens": 4000,
            "cache_creation_input_tokens": 300,
        },
    )
    assert a == Usage(4312, 5, 4000, 300)
    assert openai_usage(a) == {
        "prompt_tokens": 4312,
        "completion_tokens": 5,
        "total_tokens": 4317,
        "prompt_tokens_details": {"cached_tokens": 4000, "cache_write_tokens": 300},
    }
    # DeepSeek's own field names
    d = provider_usage("openai", {"prompt_tokens": 64, "prompt_cache_hit_tokens": 60})
    assert d.cache_read_tokens == 60


def body(obj: dict[str, Any]) -> bytes:
    return json.dumps(obj).encode()


def test_an_openai_answer_for_an_anthropic_client() -> None:
    answer = {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "model": "deepseek-reasoner",
        "choices": [
            {
                "index": 0,
                "finish_reason": "stop",
                "message": {
                    "role": "assistant",
                    "content": "ok",
                    "reasoning_content": "think",
                    "tool_calls": [
                        {
                            "id": "call:1",
                            "type": "function",
                            "function": {"name": "w", "arguments": "not json"},
                        }
                    ],
                },
            }
        ],
        "usage": {"prompt_tokens": 10, "completion_tokens": 3},
    }
    status, out = translate_response(body(answer), 200, "openai", "anthropic", seed="r9")
    msg = sdks.anthropic_body(out)
    assert status == 200
    assert [b.type for b in msg.content] == ["thinking", "text", "tool_use"]
    assert msg.content[0].signature == ""  # unsigned: scrubbed before it could reach Anthropic
    assert msg.content[2].id == "call_1" and msg.content[2].input == {}
    assert msg.stop_reason == "tool_use"  # "stop" with tool calls is tool use
    assert msg.usage.input_tokens == 10 and msg.usage.output_tokens == 3


def test_an_anthropic_answer_for_an_openai_client() -> None:
    answer = {
        "id": "msg_1",
        "type": "message",
        "role": "assistant",
        "model": "claude-x",
        "content": [
            {"type": "thinking", "thinking": "hm", "signature": "sig"},
            {"type": "redacted_thinking", "data": "xx"},
            {"type": "text", "text": "a"},
            {"type": "server_tool_use", "id": "srv_1", "name": "web_search", "input": {}},
            {"type": "text", "text": "b"},
        ],
        "stop_reason": "max_tokens",
        "stop_sequence": None,
        "usage": {"input_tokens": 3, "output_tokens": 9, "cache_read_input_tokens": 7},
    }
    _, out = translate_response(body(answer), 200, "anthropic", "openai", created=17)
    c = sdks.openai_body(out)
    assert c.choices[0].message.content == "ab"
    assert c.choices[0].message.model_extra["reasoning_content"] == "hm"
    assert c.choices[0].finish_reason == "length" and c.created == 17
    assert c.usage.prompt_tokens == 10 and c.usage.prompt_tokens_details.cached_tokens == 7


@pytest.mark.parametrize(
    ("provider", "status", "upstream", "client", "want_status", "want_type", "text"),
    [
        (
            "anthropic",
            529,
            {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}},
            "openai",
            503,
            openai.InternalServerError,
            "Overloaded",
        ),
        (
            "anthropic",
            429,
            {"type": "error", "error": {"type": "rate_limit_error", "message": "slow down"}},
            "openai",
            429,
            openai.RateLimitError,
            "slow down",
        ),
        (
            "openai",
            400,
            {
                "error": {
                    "message": "This model's maximum context length is 8192",
                    "type": "invalid_request_error",
                    "code": "context_length_exceeded",
                }
            },
            "anthropic",
            400,
            anthropic.BadRequestError,
            "prompt is too long: This model's",
        ),
        (
            "openai",
            401,
            {"error": {"message": "bad key", "type": "invalid_request_error"}},
            "anthropic",
            401,
            anthropic.AuthenticationError,
            "bad key",
        ),
        (
            "openai",
            500,
            {"object": "error", "message": "vLLM broke", "type": "InternalError"},
            "anthropic",
            500,
            anthropic.InternalServerError,
            "vLLM broke",
        ),
        (
            "openai",
            404,
            {"error": "model 'x' not found"},
            "anthropic",
            404,
            anthropic.NotFoundError,
            "model 'x' not found",
        ),
        (
            "openai",
            502,
            b"<html>bad gateway</html>",
            "anthropic",
            502,
            anthropic.InternalServerError,
            "answered HTTP 502",
        ),
        (
            "openai",
            200,
            {"error": {"message": "quota", "code": 429}},
            "anthropic",
            502,
            anthropic.InternalServerError,
            "quota",
        ),
        ("anthropic", 200, b"not json", "openai", 502, openai.InternalServerError, "not JSON"),
    ],
)
def test_errors_take_the_clients_shape(
    provider: str,
    status: int,
    upstream: Any,
    client: str,
    want_status: int,
    want_type: type,
    text: str,
) -> None:
    raw = upstream if isinstance(upstream, bytes) else body(upstream)
    got_status, out = translate_response(raw, status, provider, client)  # type: ignore[arg-type]
    assert got_status == want_status
    call = sdks.anthropic_body if client == "anthropic" else sdks.openai_body
    with pytest.raises(want_type) as e:
        call(out, got_status)
    assert text in str(e.value)


def test_anthropic_prompt_too_long_is_context_length_exceeded_for_openai() -> None:
    err = {
        "type": "error",
        "error": {
            "type": "invalid_request_error",
            "message": "prompt is too long: 210000 tokens > 200000",
        },
    }
    status, out = translate_error(body(err), 400, "anthropic", "openai")
    assert status == 400
    assert json.loads(out)["error"]["code"] == "context_length_exceeded"


def test_same_api_answers_pass_through() -> None:
    assert translate_response(b"raw", 200, "openai", "openai") == (200, b"raw")


def test_response_headers_drop_what_translation_voids() -> None:
    got = response_headers(
        [
            ("Content-Length", "9"),
            ("content-encoding", "gzip"),
            ("Content-Type", "application/json"),
            ("x-request-id", "r1"),
            ("retry-after", "3"),
        ],
        stream=True,
    )
    assert got == [
        ("x-request-id", "r1"),
        ("retry-after", "3"),
        ("content-type", "text/event-stream"),
    ]


def chat(obj: dict[str, Any]) -> bytes:
    return b"data: " + json.dumps(obj).encode() + b"\n\n"


def test_nothing_goes_out_before_content_and_errors_before_commit_are_not_committed() -> None:
    t = stream_translator("openai", "anthropic")
    assert (
        t.feed(chat({"id": "x", "choices": [{"index": 0, "delta": {"role": "assistant"}}]})) == b""
    )
    out = t.feed(chat({"error": {"message": "overloaded", "type": "server_error", "code": 503}}))
    assert b"event: error" in out and b"overloaded_error" in out
    assert t.error == "server_error" and not t.committed
    assert t.feed(b"data: [DONE]\n\n") == b"" and t.finish() == b""


def test_abort_after_content_is_the_terminal_error_and_then_nothing() -> None:
    t = stream_translator("anthropic", "openai", request={"model": "gpt-4o"})
    start = {"type": "message_start", "message": {"id": "m", "model": "c", "usage": {}}}
    t.feed(b"event: message_start\ndata: " + json.dumps(start).encode() + b"\n\n")
    delta = {
        "type": "content_block_delta",
        "index": 0,
        "delta": {"type": "text_delta", "text": "x"},
    }
    assert b'"content":"x"' in t.feed(
        b"event: content_block_delta\ndata: " + json.dumps(delta).encode() + b"\n\n"
    )
    assert t.committed and not t.finished
    out = t.abort("upstream stalled")
    assert out.startswith(b'data: {"error"') and b"upstream stalled" in out
    assert t.abort("again") == b"" and t.finish() == b""


def test_a_late_usage_chunk_is_waited_for_and_a_clean_eof_after_finish_ends_the_message() -> None:
    t = stream_translator("openai", "anthropic")
    t.feed(chat({"id": "x", "choices": [{"index": 0, "delta": {"content": "hi"}}]}))
    held = t.feed(
        chat({"id": "x", "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})
    )
    assert b"message_delta" not in held and b"content_block_stop" in held  # waits for usage
    assert t.finished
    end = t.finish()  # the provider closed after finish_reason, without usage or [DONE]
    assert b'"stop_reason":"end_turn"' in end and end.endswith(
        b'event: message_stop\ndata: {"type":"message_stop"}\n\n'
    )


def test_openai_clients_get_a_usage_chunk_only_when_they_asked() -> None:
    events = [
        (
            "message_start",
            {
                "type": "message_start",
                "message": {"id": "m", "model": "c", "usage": {"input_tokens": 4}},
            },
        ),
        (
            "content_block_start",
            {
                "type": "content_block_start",
                "index": 0,
                "content_block": {"type": "text", "text": ""},
            },
        ),
        (
            "content_block_delta",
            {
                "type": "content_block_delta",
                "index": 0,
                "delta": {"type": "text_delta", "text": "x"},
            },
        ),
        (
            "message_delta",
            {
                "type": "message_delta",
                "delta": {"stop_reason": "end_turn"},
                "usage": {"output_tokens": 2},
            },
        ),
        ("message_stop", {"type": "message_stop"}),
    ]
    raw = b"".join(f"event: {n}\ndata: {json.dumps(o)}\n\n".encode() for n, o in events)
    plain = stream_translator("anthropic", "openai", request={"model": "m"})
    out = plain.feed(raw)
    assert b'"usage"' not in out and out.endswith(b"data: [DONE]\n\n")
    asked = stream_translator(
        "anthropic", "openai", request={"stream_options": {"include_usage": True}}
    )
    out = asked.feed(raw)
    assert b'"choices":[],"usage":{"prompt_tokens":4,"completion_tokens":2' in out
    assert asked.usage == Usage(4, 2, None, None)


def test_no_translation_between_an_api_and_itself() -> None:
    with pytest.raises(ValueError):
        stream_translator("openai", "openai")


def test_vllm_style_in_band_errors_are_errors() -> None:
    t = stream_translator("openai", "anthropic")
    t.feed(chat({"id": "x", "choices": [{"index": 0, "delta": {"content": "hi"}}]}))
    err = {
        "object": "error",
        "message": "out of KV cache",
        "type": "InternalServerError",
        "param": None,
        "code": 500,
    }
    out = t.feed(chat(err))
    assert b"event: error" in out and b"out of KV cache" in out and t.error
    status, body_ = translate_response(json.dumps(err).encode(), 200, "openai", "anthropic")
    assert status == 502 and b"out of KV cache" in body_


def test_request_headers_and_paths() -> None:
    from llmrouter.wire.translate import request_headers, request_path

    claude = [
        ("anthropic-version", "2023-06-01"),
        ("anthropic-beta", "interleaved-thinking"),
        ("X-Claude-Code-Session-Id", "s1"),
        ("x-app", "cli"),
        ("Content-Length", "9"),
        ("user-agent", "claude-cli/2.1"),
        ("accept", "application/json"),
    ]
    assert request_headers(claude, "anthropic", "openai") == [
        ("user-agent", "claude-cli/2.1"),
        ("accept", "application/json"),
        ("content-type", "application/json"),
    ]
    sdk = [
        ("OpenAI-Organization", "org"),
        ("content-type", "application/json"),
        ("x-stainless-os", "Linux"),
    ]
    assert request_headers(sdk, "openai", "anthropic") == [
        ("x-stainless-os", "Linux"),
        ("content-type", "application/json"),
        ("anthropic-version", "2023-06-01"),
    ]
    assert request_headers(claude, "anthropic", "anthropic") is claude
    assert request_path("openai") == "/v1/chat/completions"
    assert request_path("anthropic") == "/v1/messages"
