"""The LLM view's renderer: requests and answers of both APIs, whole and streamed."""

from __future__ import annotations

import json

import pytest
from llm_bodies import (
    anthropic_stream,
    chat_request,
    chat_stream,
    claude_code_request,
    responses_request,
    responses_stream,
)
from llmrouter.tools._fakepayloads import APIS, Reply, split_text
from llmrouter.wire.render import (
    api_of_path,
    render_request,
    render_response,
    truncation_marker,
)


def _dump(obj: object) -> bytes:
    return json.dumps(obj).encode()


def test_api_of_path() -> None:
    assert api_of_path("/v1/messages?beta=true") == "anthropic"
    assert api_of_path("/anthropic/v1/messages") == "anthropic"
    assert api_of_path("/api/v1/chat/completions") == "chat"
    assert api_of_path("/v1/completions") == "completions"
    assert api_of_path("/v1/responses") == "responses"
    assert api_of_path("/v1/embeddings") == "embeddings"
    assert api_of_path("/api/claude_code/settings") is None and api_of_path(None) is None


def test_claude_code_request() -> None:
    text = render_request(_dump(claude_code_request()), "/v1/messages?beta=true")
    lines = text.splitlines()
    assert lines[0] == (
        "anthropic request · model claude-sonnet-4-5-20250929 · stream · max_tokens 32,000 · "
        "thinking adaptive · effort high"
    )
    assert lines[1].startswith("tools (14): Bash, Read, Edit, Write,") and "(+2)" in lines[1]
    # The system prompt is cut short, each block on its own line, with its full size said.
    assert lines[2].startswith("system (2 blocks, ")
    assert lines[3] == "  x-anthropic-billing-header: cc_version=2.1.197; cc_entrypoint=cli;"
    assert lines[4].startswith("  You are Claude Code") and lines[4].endswith(" chars]")
    assert len(lines[4]) < 400
    assert "[1] user\n  <system-reminder>context</system-reminder>\n  Why does test_report fail?" \
        "\n  [image]" in text  # fmt: skip
    assert '  [thinking, 38 chars]\n  Let me read the test.\n  → Read {"file_path":' in text
    assert "(toolu_01A)" in text
    result = next(ln for ln in lines if "← toolu_01A" in ln)
    assert result.startswith("  ← toolu_01A: 1 import json 2 import os") and len(result) < 260
    assert _png_not_shown(text)


def _png_not_shown(text: str) -> bool:
    return "iVBOR" not in text and "base64" not in text


def test_openai_chat_request() -> None:
    text = render_request(_dump(chat_request()), "/v1/chat/completions")
    assert text.startswith("openai chat request · model gpt-4o · stream · max_completion_tokens")
    assert "tools (2): get_weather, get_time" in text
    assert "[1] system\n  You are terse." in text
    assert "[2] user\n  What is in this picture, and the weather in Paris?\n  [image]" in text
    assert '[3] assistant\n  → get_weather {"city": "Paris"}  (call_1)' in text
    assert '[4] tool\n  ← call_1: {"temp_c": 18}' in text
    assert _png_not_shown(text)


def test_responses_request() -> None:
    text = render_request(_dump(responses_request()), "/v1/responses")
    assert text.startswith("openai responses request · model gpt-5-codex · stream · effort medium")
    assert "system (1 block, " in text  # instructions
    assert "[1] user\n  list the files" in text
    assert '[2] function_call\n  → shell {"command": ["ls"]}  (call_9)' in text
    assert "[3] function_call_output\n  ← call_9: README.md src" in text
    assert "[4] reasoning\n  [reasoning: Listed.]" in text


def test_request_sniffed_without_path_and_legacy_forms() -> None:
    assert render_request(_dump(claude_code_request())).startswith("anthropic request")
    assert render_request(_dump(chat_request())).startswith("openai chat request")
    assert render_request(_dump(responses_request())).startswith("openai responses request")
    text = render_request(_dump({"model": "m", "input": "hi"}), "/v1/responses")
    assert "[1] user\n  hi" in text
    text = render_request(_dump({"model": "m", "prompt": "Say this"}), "/v1/completions")
    assert text.startswith("openai completions request") and "[1] prompt\n  Say this" in text
    text = render_request(_dump({"model": "e", "input": ["a", "b", "c"]}), "/v1/embeddings")
    assert "input: 3 item(s)" in text and "[3] input\n  c" in text
    with pytest.raises(ValueError):
        render_request(b"not json", "/v1/messages")
    with pytest.raises(ValueError):
        render_request(b"[1, 2]", "/v1/messages")


def test_anthropic_stream() -> None:
    text = render_response(anthropic_stream(), "text/event-stream", "/v1/messages")
    assert text == (
        "anthropic answer · model claude-sonnet-4-5-20250929 · streamed, 18 events\n\n"
        "[thinking] Check the bucket width.\n\n"
        "The test expects 1 s buckets; I'll run it.\n\n"
        '→ Bash {"command": "pytest tests/test_report.py"}  (toolu_02B)\n\n'
        "stop: tool_use\n"
        "usage: input 40,112 (cache read 40,000, cache write 100) · output 87\n"
    )


def test_anthropic_stream_cut_and_inband_error() -> None:
    text = render_response(anthropic_stream(cut_after=9), "text/event-stream", "/v1/messages")
    assert "The test expects 1 s\n" in text
    assert "stream: no final event (cut short, or still running)" in text
    error = b'{"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}'
    overloaded = anthropic_stream(cut_after=1) + b"event: error\ndata: " + error + b"\n\n"
    text = render_response(overloaded, "text/event-stream", "/v1/messages")
    assert "error: overloaded_error: Overloaded" in text and "no final event" not in text


def test_chat_stream_parallel_tool_calls() -> None:
    text = render_response(chat_stream(), "text/event-stream", "/v1/chat/completions")
    assert text.startswith("openai chat answer · model gpt-4o-2024 · streamed, 10 events\n")
    assert "Checking both.\n\n" in text
    assert '→ get_weather {"city": "Paris"}  (call_a)' in text
    assert '→ get_time {"tz": "Europe/Paris"}  (call_b)' in text
    assert text.index("get_weather") < text.index("get_time")
    assert "stop: tool_calls\nusage: input 2,000 (cache read 1,536) · output 40\n" in text


def test_responses_stream() -> None:
    text = render_response(responses_stream(), "text/event-stream", "/v1/responses")
    assert text.startswith("openai responses answer · model gpt-5-codex · streamed, 8 events")
    assert "Two files: README.md and src.\n" in text
    assert '→ shell {"command": ["cat", "README.md"]}  (call_10)' in text
    assert "stop: completed\nusage: input 900 (cache read 512) · output 30" in text


@pytest.mark.parametrize("api", ["anthropic", "chat", "completions", "responses"])
def test_fake_provider_answers_whole_and_streamed(api: str) -> None:
    """The exact bytes the fake provider sends, both ways, read the same."""
    b = APIS[api]
    r = Reply(id=b.id_prefix + "1", model="m-1", pieces=split_text("steady", 6),
              input_tokens=120, output_tokens=7, cache_read=100, include_usage=True)  # fmt: skip
    stream = b"".join([*b.opening(r), *(b.delta(r, i) for i in range(6)), *b.closing(r)])
    whole = render_response(_dump(b.body(r)), "application/json", b.suffix)
    streamed = render_response(stream, "text/event-stream", b.suffix)
    for text in (whole, streamed):
        assert "\nHello from steady. lorem ipsum dolor\n" in text
        assert "model m-1" in text and "\nstop: " in text and "output 7" in text
    assert "streamed" in streamed and "streamed" not in whole
    assert whole.split("\n", 1)[1] == streamed.split("\n", 1)[1]  # same body, other header


@pytest.mark.parametrize(
    ("api", "path"), [("chat", "/v1/messages"), ("anthropic", "/v1/chat/completions")]
)
def test_a_translated_flow_shows_its_answer_in_the_clients_api(api: str, path: str) -> None:
    """mitmweb shows a translated flow's request as the provider got it (the other API's
    path), and the answer as the client got it: the answer's own shape wins over the path."""
    b = APIS[api]
    r = Reply(id=b.id_prefix + "1", model="m-1", pieces=split_text("steady", 4),
              input_tokens=12, output_tokens=4, include_usage=True)  # fmt: skip
    stream = b"".join([*b.opening(r), *(b.delta(r, i) for i in range(4)), *b.closing(r)])
    for text in (render_response(_dump(b.body(r)), "application/json", path),
                 render_response(stream, "text/event-stream", path)):  # fmt: skip
        assert "Hello from steady." in text and "output 4" in text
        assert text.startswith("openai chat" if api == "chat" else "anthropic"), text[:40]


def test_whole_answers_with_tools_and_errors() -> None:
    msg = {"type": "message", "model": "claude-x", "stop_reason": "tool_use", "content": [
        {"type": "text", "text": "Reading."},
        {"type": "tool_use", "id": "toolu_9", "name": "Read", "input": {"file_path": "/a"}}],
        "usage": {"input_tokens": 5, "output_tokens": 9}}  # fmt: skip
    text = render_response(_dump(msg), "application/json", "/v1/messages")
    assert 'Reading.\n\n→ Read {"file_path":"/a"}  (toolu_9)\n\nstop: tool_use' in text
    call = {"id": "c1", "type": "function", "function": {"name": "f", "arguments": '{"x": 1}'}}
    message = {"role": "assistant", "content": None, "tool_calls": [call]}
    choice = {"index": 0, "message": message, "finish_reason": "tool_calls"}
    chat = {"object": "chat.completion", "model": "gpt", "choices": [choice]}
    assert '→ f {"x": 1}  (c1)' in render_response(_dump(chat), "application/json")
    err = {"type": "error", "error": {"type": "rate_limit_error", "message": "slow down"}}
    assert "error: rate_limit_error: slow down" in render_response(_dump(err), None, "/v1/messages")
    oai = {"error": {"message": "bad key", "type": "invalid_request_error", "code": "invalid"}}
    assert "error: invalid_request_error: bad key" in render_response(_dump(oai))
    emb = {"object": "list", "data": [{"embedding": [0.1] * 8}] * 3, "model": "e"}
    assert "[3 embedding(s), 8 dimensions]" in render_response(_dump(emb), None, "/v1/embeddings")
    with pytest.raises(ValueError):
        render_response(b"<html>502 Bad Gateway</html>", "text/html")


def test_truncated_copy_is_reported() -> None:
    body = anthropic_stream()[:700] + truncation_marker(700)
    text = render_response(body, "text/event-stream", "/v1/messages")
    assert "[copy truncated at 700 bytes: the rest reached the client but is not kept]" in text
    assert "no final event" not in text  # the marker says why


def huge_request() -> bytes:
    body = _dump(claude_code_request(turns=203, filler=400))
    assert len(body) > 500_000
    return body


def huge_answer() -> bytes:
    delta = (b'event: content_block_delta\ndata: {"type": "content_block_delta", "index": 1, '
             b'"delta": {"type": "text_delta", "text": "word "}}\n\n')  # fmt: skip
    return anthropic_stream(cut_after=7) + delta * 20_000


def test_huge_bodies_render_whole_and_short() -> None:
    """A 500 KB Claude Code session: every turn shown, each cut short (speed: test_bench_render)."""
    body = huge_request()
    text = render_request(body, "/v1/messages")
    assert "[203] user\n  ← toolu_198: turn 199 lorem ipsum" in text
    assert len(text) < len(body) // 5
    text = render_response(huge_answer(), "text/event-stream", "/v1/messages")
    assert "word word" in text and "streamed, 20,007 events" in text
