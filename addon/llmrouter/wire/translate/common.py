"""What both directions share: stop reasons, usage arithmetic, ids, error text, SSE framing.

Usage is where other translators go wrong most: Anthropic's `input_tokens` EXCLUDES cache reads
and cache writes, OpenAI's `prompt_tokens` INCLUDES cached tokens. Everything here converts
through the router's normalised `Usage` (whose `input_tokens` counts all input).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

from llmrouter.wire.apis import Usage, json_int, usage_from

JSONObj = dict[str, Any]


class Dropped(list[str]):
    """Names of what had no equivalent, each once, in the order met."""

    def add(self, name: str) -> None:
        if name not in self:
            self.append(name)


# OpenAI finish_reason -> Anthropic stop_reason. A `stop` with tool calls seen is tool_use:
# providers such as Gemini and older Ollama end tool calls with "stop", and mapping that to
# end_turn makes an agent stop instead of running the tool.
_TO_ANTHROPIC_STOP = {
    "stop": "end_turn",
    "length": "max_tokens",
    "tool_calls": "tool_use",
    "function_call": "tool_use",
    "content_filter": "refusal",
}
_TO_OPENAI_FINISH = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "pause_turn": "stop",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "tool_use": "tool_calls",
    "refusal": "content_filter",
}


def anthropic_stop(finish: str | None, saw_tools: bool) -> str:
    if saw_tools and finish in (None, "stop", "tool_calls", "function_call", "end_turn"):
        return "tool_use"
    return _TO_ANTHROPIC_STOP.get(finish or "stop", "end_turn")


def openai_finish(stop: str | None, saw_tools: bool) -> str:
    if saw_tools and stop in (None, "end_turn", "tool_use", "stop_sequence"):
        return "tool_calls"
    return _TO_OPENAI_FINISH.get(stop or "end_turn", "stop")


def provider_usage(api: str, usage: Any) -> Usage:
    """The router's `Usage` from either API's usage object, including the OpenAI-format
    dialects: DeepSeek's `prompt_cache_hit_tokens`, OpenRouter's `cache_write_tokens`."""
    if api == "anthropic" or not isinstance(usage, dict):
        return usage_from("anthropic", usage)  # the same fields the meter reads
    details = usage.get("prompt_tokens_details")
    details = details if isinstance(details, dict) else {}
    read = json_int(details.get("cached_tokens"))
    if read is None:
        read = json_int(usage.get("prompt_cache_hit_tokens"))
    write = json_int(details.get("cache_write_tokens"))
    return Usage(
        json_int(usage.get("prompt_tokens")), json_int(usage.get("completion_tokens")), read, write
    )


def anthropic_usage(u: Usage) -> JSONObj:
    """Anthropic usage: input_tokens = prompt - cache reads - cache writes (never below 0)."""
    read, write = u.cache_read_tokens or 0, u.cache_write_tokens or 0
    return {
        "input_tokens": max(0, (u.input_tokens or 0) - read - write),
        "output_tokens": u.output_tokens or 0,
        "cache_creation_input_tokens": write,
        "cache_read_input_tokens": read,
    }


def openai_usage(u: Usage) -> JSONObj:
    """OpenAI usage: prompt_tokens = input + cache reads + cache writes (what Usage holds)."""
    prompt, completion = u.input_tokens or 0, u.output_tokens or 0
    details: JSONObj = {"cached_tokens": u.cache_read_tokens or 0}
    if u.cache_write_tokens:
        details["cache_write_tokens"] = u.cache_write_tokens  # OpenRouter's name for it
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
        "prompt_tokens_details": details,
    }


_ID_BAD = re.compile(r"[^a-zA-Z0-9_-]")


def anthropic_tool_id(tool_id: Any, fallback: str) -> str:
    """Anthropic requires tool_use ids to match ^[a-zA-Z0-9_-]+$; other providers' ids may not.
    The same id maps to the same result both in the answer and in the next request."""
    if not isinstance(tool_id, str) or not tool_id:
        return fallback
    return _ID_BAD.sub("_", tool_id)


def error_message(body: Any) -> tuple[str, str | None]:
    """(message, type or code) from any provider's error body: Anthropic, OpenAI, vLLM
    (`{"object":"error","message":…}`), Ollama (`{"error":"…"}`), FastAPI (`{"detail":…}`)."""
    if isinstance(body, dict):
        err = body.get("error", body)
        if isinstance(err, str):
            return err, None
        if isinstance(err, dict):
            msg = err.get("message") or err.get("msg") or body.get("detail") or ""
            # OpenAI's `code` (context_length_exceeded) says more than its `type`.
            code = err.get("code")
            kind = code if isinstance(code, str) and code else err.get("type")
            kind = None if kind == "error" else kind
            if not isinstance(msg, str):
                msg = json.dumps(msg)
            return msg, str(kind) if kind not in (None, "") else None
    return "", None


# json's C string encoder: what json.dumps does for a str, without its per-call set-up.
jstr: Callable[[str], str] = json.encoder.encode_basestring_ascii  # type: ignore[attr-defined]


def dumps(obj: Any) -> str:
    """Compact JSON, ASCII-escaped: a lone surrogate from upstream JSON cannot break encode."""
    return json.dumps(obj, separators=(",", ":"))


def anthropic_event(name: str, obj: JSONObj) -> bytes:
    return f"event: {name}\ndata: {dumps(obj)}\n\n".encode()


def sse_data(obj: JSONObj) -> bytes:
    return f"data: {dumps(obj)}\n\n".encode()


def loads(data: bytes | str) -> Any:
    try:
        return json.loads(data)
    except ValueError:
        return None
