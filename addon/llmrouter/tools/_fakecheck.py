"""What a strict fake provider refuses, as the real APIs do: the mistakes a translator makes.

Private helper of :mod:`llmrouter.tools.fakeprovider` (``FakeProvider(strict=True)``,
``--strict``). Each check returns None, or the error message of the real API's 400.

Anthropic:
- a thinking block whose signature no fake Anthropic provider issued (the real API rejects the
  whole request: a conversation that carries another vendor's reasoning can never come back);
- with thinking on, a final assistant turn of a tool loop that does not start with thinking.

OpenAI Chat Completions:
- an unknown top-level field (OpenAI: "Unrecognized request argument supplied");
- a content part of a type it does not know (an Anthropic block passed through untranslated);
- tool calls and tool messages that do not pair up, in order;
- `stream_options` without `stream`.
"""

from __future__ import annotations

from typing import Any

from llmrouter.tools._fakeanthropic import sign

_THINKING_FIRST = (
    "messages.{i}.content.0.type: Expected `thinking` or `redacted_thinking`, but found `{t}`. "
    "When `thinking` is enabled, a final `assistant` message must start with a thinking block "
    "(preceeding the lastmost set of `tool_use` and `tool_result` blocks). We recommend you "
    "include thinking blocks from previous turns. To avoid this requirement, disable `thinking`."
)
# The real API's lists, written out here and not taken from the translator: the fake checks the
# code under test, so it must not share its tables (to_anthropic_request._HANDLED is another list).
_CHAT_FIELDS = frozenset(
    [
        "model",
        "messages",
        "max_tokens",
        "max_completion_tokens",
        "temperature",
        "top_p",
        "stop",
        "stream",
        "stream_options",
        "tools",
        "tool_choice",
        "parallel_tool_calls",
        "user",
        "safety_identifier",
        "reasoning_effort",
        "n",
        "seed",
        "metadata",
        "store",
        "response_format",
        "logprobs",
        "top_logprobs",
        "logit_bias",
        "presence_penalty",
        "frequency_penalty",
        "service_tier",
        "prompt_cache_key",
        "modalities",
        "audio",
        "prediction",
        "web_search_options",
        "verbosity",
        "functions",
        "function_call",
    ]
)
_PART_TYPES = frozenset(("text", "image_url", "input_audio", "refusal", "audio", "file"))


def check(api: str, req: dict[str, Any]) -> str | None:
    if api == "anthropic":
        return _anthropic(req)
    if api == "chat":
        return _chat(req)
    return None


def _blocks(m: Any) -> list[Any]:
    content = m.get("content") if isinstance(m, dict) else None
    return content if isinstance(content, list) else []


def _anthropic(req: dict[str, Any]) -> str | None:
    messages = req.get("messages") if isinstance(req.get("messages"), list) else []
    last = None
    for i, m in enumerate(messages):
        if not isinstance(m, dict) or m.get("role") != "assistant":
            continue
        last = i
        for j, b in enumerate(_blocks(m)):
            if not isinstance(b, dict):
                continue
            if b.get("type") == "thinking" and b.get("signature") != sign(
                str(b.get("thinking", ""))
            ):
                return f"messages.{i}.content.{j}: Invalid `signature` in `thinking` block"
            if b.get("type") == "redacted_thinking" and not b.get("data"):
                return f"messages.{i}.content.{j}: Invalid `data` in `redacted_thinking` block"
    thinking = req.get("thinking")
    on = isinstance(thinking, dict) and thinking.get("type") in ("enabled", "adaptive")
    if on and last is not None:
        blocks = _blocks(messages[last])
        tools = any(isinstance(b, dict) and b.get("type") == "tool_use" for b in blocks)
        first = blocks[0].get("type") if blocks and isinstance(blocks[0], dict) else None
        if tools and first not in ("thinking", "redacted_thinking"):
            return _THINKING_FIRST.format(i=last, t=first)
    return None


def _chat(req: dict[str, Any]) -> str | None:
    unknown = sorted(set(req) - _CHAT_FIELDS)
    if unknown:
        return f"Unrecognized request argument supplied: {unknown[0]}"
    if "stream_options" in req and req.get("stream") is not True:
        return "The 'stream_options' parameter is only allowed when 'stream' is enabled."
    messages = req.get("messages") if isinstance(req.get("messages"), list) else []
    waiting: list[str] = []  # tool call ids still to be answered, in order
    for i, m in enumerate(messages):
        if not isinstance(m, dict):
            return f"Invalid type for 'messages[{i}]'"
        role = m.get("role")
        if role == "tool":
            if m.get("tool_call_id") not in waiting:
                return (
                    f"Invalid parameter: messages with role 'tool' must be a response to a "
                    f"preceeding message with 'tool_calls' (messages[{i}])."
                )
            waiting.remove(m["tool_call_id"])
            continue
        if waiting:
            return (
                "An assistant message with 'tool_calls' must be followed by tool messages "
                "responding to each 'tool_call_id'. The following tool_call_ids did not have "
                f"response messages: {', '.join(waiting)}"
            )
        for j, part in enumerate(_blocks(m)):
            kind = part.get("type") if isinstance(part, dict) else None
            if kind not in _PART_TYPES:
                return f"Invalid value: '{kind}'. Supported values are: {sorted(_PART_TYPES)} " \
                    f"(messages[{i}].content[{j}].type)"  # fmt: skip
        calls = m.get("tool_calls") if role == "assistant" else None
        if isinstance(calls, list):
            waiting = [c.get("id") for c in calls if isinstance(c, dict)]
    return None
