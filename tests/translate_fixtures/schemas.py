"""What each API documents for a request, as allow-lists: a translated request must not carry a
field the target does not know (OpenAI answers 400 to unknown parameters), and must keep each
API's structural rules (tool results right after their calls, ids that pair up)."""

from __future__ import annotations

import re
from typing import Any

_OPENAI_TOP = {
    "model", "messages", "max_tokens", "max_completion_tokens", "temperature", "top_p", "stop",
    "stream", "stream_options", "tools", "tool_choice", "parallel_tool_calls", "user",
    "reasoning_effort", "response_format",
}  # fmt: skip
_OPENAI_MSG = {
    "system": {"role", "content"},
    "user": {"role", "content"},
    "assistant": {"role", "content", "tool_calls"},
    "tool": {"role", "tool_call_id", "content"},
}
_OPENAI_PART = {
    "text": {"type", "text"},
    "image_url": {"type", "image_url"},
    "file": {"type", "file"},
}
_ANTHROPIC_TOP = {
    "model", "messages", "system", "max_tokens", "metadata", "stop_sequences", "stream",
    "temperature", "top_p", "tools", "tool_choice", "thinking",
}  # fmt: skip
_ANTHROPIC_BLOCK = {
    "text": {"type", "text"},
    "image": {"type", "source"},
    "document": {"type", "source", "title"},
    "tool_use": {"type", "id", "name", "input"},
    "tool_result": {"type", "tool_use_id", "content", "is_error"},
    "thinking": {"type", "thinking", "signature"},
    "redacted_thinking": {"type", "data"},
}
_TOOL_ID = re.compile(r"^[a-zA-Z0-9_-]+$")


def _only(obj: dict[str, Any], allowed: set[str], where: str) -> None:
    extra = set(obj) - allowed
    assert not extra, f"{where}: unknown fields {sorted(extra)}"


def check_openai(req: dict[str, Any], echo: str | None = None, gemini: bool = False) -> None:
    """`echo`: the one extra assistant field a model that wants its reasoning back accepts;
    `gemini`: Gemini's `extra_content` on tool calls."""
    _only(req, _OPENAI_TOP, "request")
    extra_call = {"extra_content"} if gemini else set()
    pending: set[str] = set()
    for i, m in enumerate(req["messages"]):
        role = m["role"]
        allowed = _OPENAI_MSG[role] | ({echo} if echo and role == "assistant" else set())
        _only(m, allowed, f"messages[{i}]")
        if role == "tool":
            assert m["tool_call_id"] in pending, f"messages[{i}]: tool result without its call"
            pending.discard(m["tool_call_id"])
            assert isinstance(m["content"], str)
            continue
        assert not pending, f"messages[{i}]: tool calls {pending} have no result before it"
        content = m.get("content")
        if isinstance(content, list):
            assert role == "user", f"messages[{i}]: content parts only in user messages"
            for p in content:
                _only(p, _OPENAI_PART[p["type"]], f"messages[{i}].content")
        else:
            assert content is None or isinstance(content, str)
        for call in m.get("tool_calls") or ():
            _only(call, {"id", "type", "function"} | extra_call, f"messages[{i}].tool_calls")
            _only(call["function"], {"name", "arguments"}, "function")
            assert isinstance(call["function"]["arguments"], str)
            pending.add(call["id"])
    for t in req.get("tools") or ():
        _only(t, {"type", "function"}, "tools")
        _only(t["function"], {"name", "description", "parameters"}, "tools.function")
    if req.get("stop") is not None:
        assert len(req["stop"]) <= 4


def check_anthropic(req: dict[str, Any]) -> None:
    _only(req, _ANTHROPIC_TOP, "request")
    assert isinstance(req["max_tokens"], int) and req["max_tokens"] > 0
    if "metadata" in req:
        _only(req["metadata"], {"user_id"}, "metadata")
    assert 0 <= req.get("temperature", 0) <= 1
    prev_calls: set[str] = set()
    for i, m in enumerate(req["messages"]):
        assert m["role"] in ("user", "assistant"), f"messages[{i}]: role {m['role']}"
        if i:
            assert m["role"] != req["messages"][i - 1]["role"], f"messages[{i}]: same role twice"
        content = m["content"]
        blocks = [{"type": "text", "text": content}] if isinstance(content, str) else content
        assert blocks, f"messages[{i}]: empty content"
        results = [b["tool_use_id"] for b in blocks if b["type"] == "tool_result"]
        kinds = [b["type"] for b in blocks]
        assert kinds[: len(results)] == ["tool_result"] * len(results), "tool results first"
        assert set(results) == prev_calls, f"messages[{i}]: results {results} for {prev_calls}"
        prev_calls = set()
        for b in blocks:
            _only(b, _ANTHROPIC_BLOCK[b["type"]], f"messages[{i}].content")
            if b["type"] == "text":
                assert b["text"], f"messages[{i}]: empty text block"
            if b["type"] == "tool_use":
                assert _TOOL_ID.match(b["id"]) and isinstance(b["input"], dict)
                prev_calls.add(b["id"])
    if req["messages"] and req["messages"][-1]["role"] == "assistant":
        last = req["messages"][-1]["content"]
        text = last if isinstance(last, str) else (last[-1].get("text") or "x")
        assert text == text.rstrip(), "a final assistant message may not end in whitespace"
    for t in req.get("tools") or ():
        _only(t, {"name", "description", "input_schema"}, "tools")
