"""Realistic request and answer bodies of the Anthropic and OpenAI APIs, for the LLM view tests.

Shapes follow what Claude Code, the official SDKs and the APIs send (see DESIGN-NOTES.md):
attribution and cache_control system blocks, tool use and results, images, thinking, SSE
streams with parallel tool calls and a usage chunk.
"""

from __future__ import annotations

import json
from typing import Any

PNG_B64 = (
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5E"
    "rkJggg=="
)
SYSTEM_PROMPT = (
    "You are Claude Code, Anthropic's official CLI for Claude. You are an interactive CLI tool "
    "that helps users with software engineering tasks. " * 40
)


def sse(data: dict[str, Any] | str, event: str | None = None) -> bytes:
    payload = data if isinstance(data, str) else json.dumps(data)
    return (f"event: {event}\n" if event else "").encode() + f"data: {payload}\n\n".encode()


def claude_code_request(turns: int = 3, filler: int = 0) -> dict[str, Any]:
    """A Claude Code main-loop call: tools, thinking, a tool round trip, an image."""
    tools = [
        {"name": n, "description": f"The {n} tool. " * 20, "input_schema": {"type": "object"}}
        for n in ("Bash", "Read", "Edit", "Write", "Glob", "Grep", "WebFetch", "TodoWrite",
                  "Task", "NotebookEdit", "WebSearch", "BashOutput", "KillShell", "ExitPlanMode")
    ]  # fmt: skip
    messages: list[dict[str, Any]] = [
        {"role": "user", "content": [
            {"type": "text", "text": "<system-reminder>context</system-reminder>"},
            {"type": "text", "text": "Why does test_report fail?"},
            {"type": "image", "source": {"type": "base64", "media_type": "image/png",
                                         "data": PNG_B64}},
        ]},
        {"role": "assistant", "content": [
            {"type": "thinking", "thinking": "The user wants me to look at the test.",
             "signature": "sig"},
            {"type": "text", "text": "Let me read the test."},
            {"type": "tool_use", "id": "toolu_01A", "name": "Read",
             "input": {"file_path": "/repo/tests/test_report.py"}},
        ]},
        {"role": "user", "content": [
            {"type": "tool_result", "tool_use_id": "toolu_01A",
             "content": "1\timport json\n2\timport os\n" + "x = 1\n" * 2000},
        ]},
    ]  # fmt: skip
    for i in range(turns - 3):  # more tool round trips: a file read per pair of turns
        if i % 2 == 0:
            messages.append({"role": "assistant", "content": [
                {"type": "text", "text": f"Reading file {i}."},
                {"type": "tool_use", "id": f"toolu_{i}", "name": "Read",
                 "input": {"file_path": f"/repo/f{i}.py"}}]})  # fmt: skip
        else:
            messages.append({"role": "user", "content": [
                {"type": "tool_result", "tool_use_id": f"toolu_{i - 1}",
                 "content": f"turn {i} " + "lorem ipsum " * filler}]})  # fmt: skip
    return {
        "model": "claude-sonnet-4-5-20250929",
        "max_tokens": 32000,
        "stream": True,
        "system": [
            {
                "type": "text",
                "text": "x-anthropic-billing-header: cc_version=2.1.197; cc_entrypoint=cli;",
            },
            {"type": "text", "text": SYSTEM_PROMPT, "cache_control": {"type": "ephemeral"}},
        ],
        "messages": messages,
        "tools": tools,
        "thinking": {"type": "adaptive"},
        "output_config": {"effort": "high"},
        "metadata": {"user_id": json.dumps({"device_id": "0" * 64, "session_id": "s"})},
    }


def anthropic_stream(cut_after: int | None = None) -> bytes:
    """Thinking, text, then a tool call whose JSON arrives in pieces; usage at both ends."""
    events = [
        sse({"type": "message_start", "message": {
            "id": "msg_01", "type": "message", "role": "assistant",
            "model": "claude-sonnet-4-5-20250929", "content": [], "stop_reason": None,
            "usage": {"input_tokens": 12, "cache_creation_input_tokens": 100,
                      "cache_read_input_tokens": 40_000, "output_tokens": 1}}},
            "message_start"),
        sse({"type": "content_block_start", "index": 0,
             "content_block": {"type": "thinking", "thinking": ""}}, "content_block_start"),
        sse({"type": "content_block_delta", "index": 0,
             "delta": {"type": "thinking_delta", "thinking": "Check the "}},
            "content_block_delta"),
        sse({"type": "content_block_delta", "index": 0,
             "delta": {"type": "thinking_delta", "thinking": "bucket width."}},
            "content_block_delta"),
        sse({"type": "content_block_stop", "index": 0}, "content_block_stop"),
        sse({"type": "ping"}, "ping"),
        sse({"type": "content_block_start", "index": 1,
             "content_block": {"type": "text", "text": ""}}, "content_block_start"),
    ]  # fmt: skip
    for piece in ("The test", " expects 1 s", " buckets; ", "I'll run it."):
        events.append(sse({"type": "content_block_delta", "index": 1,
                           "delta": {"type": "text_delta", "text": piece}},
                          "content_block_delta"))  # fmt: skip
    events += [
        sse({"type": "content_block_stop", "index": 1}, "content_block_stop"),
        sse({"type": "content_block_start", "index": 2, "content_block": {
            "type": "tool_use", "id": "toolu_02B", "name": "Bash", "input": {}}},
            "content_block_start"),
        sse({"type": "content_block_delta", "index": 2,
             "delta": {"type": "input_json_delta", "partial_json": '{"command": "pytest '}},
            "content_block_delta"),
        sse({"type": "content_block_delta", "index": 2,
             "delta": {"type": "input_json_delta", "partial_json": 'tests/test_report.py"}'}},
            "content_block_delta"),
        sse({"type": "content_block_stop", "index": 2}, "content_block_stop"),
        sse({"type": "message_delta", "delta": {"stop_reason": "tool_use",
             "stop_sequence": None}, "usage": {"output_tokens": 87}}, "message_delta"),
        sse({"type": "message_stop"}, "message_stop"),
    ]  # fmt: skip
    return b"".join(events[:cut_after] if cut_after else events)


def chat_request() -> dict[str, Any]:
    return {
        "model": "gpt-4o",
        "stream": True,
        "stream_options": {"include_usage": True},
        "max_completion_tokens": 500,
        "messages": [
            {"role": "system", "content": "You are terse."},
            {"role": "user", "content": [
                {"type": "text", "text": "What is in this picture, and the weather in Paris?"},
                {"type": "image_url", "image_url": {"url": "data:image/png;base64," + PNG_B64}},
            ]},
            {"role": "assistant", "content": None, "tool_calls": [
                {"id": "call_1", "type": "function",
                 "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'}}]},
            {"role": "tool", "tool_call_id": "call_1", "content": '{"temp_c": 18}'},
        ],
        "tools": [{"type": "function", "function": {"name": "get_weather", "parameters": {}}},
                  {"type": "function", "function": {"name": "get_time", "parameters": {}}}],
    }  # fmt: skip


def chat_stream() -> bytes:
    """Two parallel tool calls whose arguments interleave, then finish_reason and usage."""

    def chunk(delta: dict[str, Any], finish: str | None = None) -> bytes:
        return sse({"id": "chatcmpl-1", "object": "chat.completion.chunk", "model": "gpt-4o-2024",
                    "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
                    "usage": None})  # fmt: skip

    def call(i: int, args: str, **first: Any) -> dict[str, Any]:
        fn = {"arguments": args} | ({"name": first["name"]} if first else {})
        return {"tool_calls": [{"index": i, **({"id": first["id"], "type": "function"}
                                               if first else {}), "function": fn}]}  # fmt: skip

    return b"".join([
        chunk({"role": "assistant", "content": ""}),
        chunk({"content": "Checking both."}),
        chunk(call(0, "", id="call_a", name="get_weather")),
        chunk(call(1, "", id="call_b", name="get_time")),
        chunk(call(0, '{"city": ')),
        chunk(call(1, '{"tz": "Europe/Paris"}')),
        chunk(call(0, '"Paris"}')),
        chunk({}, "tool_calls"),
        sse({"id": "chatcmpl-1", "object": "chat.completion.chunk", "model": "gpt-4o-2024",
             "choices": [], "usage": {"prompt_tokens": 2000, "completion_tokens": 40,
                                      "prompt_tokens_details": {"cached_tokens": 1536}}}),
        sse("[DONE]"),
    ])  # fmt: skip


def responses_request() -> dict[str, Any]:
    return {
        "model": "gpt-5-codex",
        "instructions": "You are Codex, based on GPT-5. " * 30,
        "input": [
            {"type": "message", "role": "user",
             "content": [{"type": "input_text", "text": "list the files"}]},
            {"type": "function_call", "call_id": "call_9", "name": "shell",
             "arguments": '{"command": ["ls"]}'},
            {"type": "function_call_output", "call_id": "call_9", "output": "README.md\nsrc\n"},
            {"type": "reasoning", "summary": [{"type": "summary_text", "text": "Listed."}]},
        ],
        "tools": [{"type": "function", "name": "shell"}],
        "reasoning": {"effort": "medium"},
        "stream": True,
    }  # fmt: skip


def responses_stream() -> bytes:
    def ev(kind: str, **data: Any) -> bytes:
        return sse({"type": kind, **data}, kind)

    return b"".join([
        ev("response.created", response={"id": "resp_1", "model": "gpt-5-codex",
                                         "status": "in_progress"}),
        ev("response.output_item.added", output_index=0, item={"type": "message"}),
        ev("response.output_text.delta", output_index=0, delta="Two files: "),
        ev("response.output_text.delta", output_index=0, delta="README.md and src."),
        ev("response.output_item.added", output_index=1,
           item={"type": "function_call", "name": "shell", "call_id": "call_10"}),
        ev("response.function_call_arguments.delta", output_index=1, delta='{"command": '),
        ev("response.function_call_arguments.delta", output_index=1, delta='["cat", "README.md"]}'),
        ev("response.completed", response={"id": "resp_1", "status": "completed",
           "usage": {"input_tokens": 900, "output_tokens": 30,
                     "input_tokens_details": {"cached_tokens": 512}}}),
    ])  # fmt: skip
