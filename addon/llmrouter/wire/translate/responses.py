"""Non-streamed answers and error bodies, either direction.

The streamed translators build exactly what these build, block for block (the tests check it
with both official SDKs): thinking first, then text, then tool calls; the same tool-id
fallbacks; zero usage when the provider reported none.
"""

from __future__ import annotations

import json
from typing import Any

from llmrouter.wire.apis import ApiName, error_body
from llmrouter.wire.translate.common import (
    JSONObj,
    anthropic_stop,
    anthropic_tool_id,
    anthropic_usage,
    error_message,
    openai_finish,
    openai_usage,
    provider_usage,
)

REASONING_FIELDS = ("reasoning_content", "reasoning", "thinking")
# Anthropic's wording: Claude Code compacts the conversation when it sees it.
_TOO_LONG = "prompt is too long"


def reasoning_text(delta: JSONObj) -> str | None:
    """DeepSeek says `reasoning_content`, OpenRouter, vLLM and Ollama `reasoning`, some
    `thinking`. Read the first that is a non-empty string."""
    for name in REASONING_FIELDS:
        value = delta.get(name)
        if isinstance(value, str) and value:
            return value
    return None


def openai_to_anthropic_body(obj: JSONObj, *, model: str | None = None, seed: str = "0") -> JSONObj:
    choices = obj.get("choices") or [{}]
    choice = choices[0] if isinstance(choices[0], dict) else {}
    msg = choice.get("message") if isinstance(choice.get("message"), dict) else {}
    content: list[JSONObj] = []
    reasoning = reasoning_text(msg)
    if reasoning:
        content.append({"type": "thinking", "thinking": reasoning, "signature": ""})
    text = msg.get("content") if isinstance(msg.get("content"), str) else ""
    text += msg.get("refusal") if isinstance(msg.get("refusal"), str) else ""
    if text:
        content.append({"type": "text", "text": text})
    calls = [c for c in msg.get("tool_calls") or () if isinstance(c, dict)]
    for i, call in enumerate(calls):
        fn = call.get("function") if isinstance(call.get("function"), dict) else {}
        content.append(
            {
                "type": "tool_use",
                "id": anthropic_tool_id(call.get("id"), f"toolu_{seed}_{i}"),
                "name": fn.get("name") or "",
                "input": _arguments(fn.get("arguments")),
            }
        )
    finish = choice.get("finish_reason")
    if msg.get("refusal") and finish in (None, "stop"):
        finish = "content_filter"
    return {
        "id": obj.get("id") or f"msg_{seed}",
        "type": "message",
        "role": "assistant",
        "model": obj.get("model") or model or "",
        "content": content,
        "stop_reason": anthropic_stop(finish, bool(calls)),
        "stop_sequence": None,
        "usage": anthropic_usage(provider_usage("openai", obj.get("usage"))),
    }


def _arguments(raw: Any) -> Any:
    """Tool input as Anthropic wants it: a JSON object ({} for empty or broken arguments)."""
    if isinstance(raw, dict):
        return raw
    try:
        value = json.loads(raw) if isinstance(raw, str) and raw.strip() else {}
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def anthropic_to_openai_body(obj: JSONObj, *, created: int = 0) -> JSONObj:
    texts: list[str] = []
    thinking: list[str] = []
    calls: list[JSONObj] = []
    for b in obj.get("content") or ():
        kind = b.get("type") if isinstance(b, dict) else None
        if kind == "text":
            texts.append(b.get("text") or "")
        elif kind == "thinking":
            thinking.append(b.get("thinking") or "")
        elif kind == "tool_use":
            args = json.dumps(b.get("input") or {}, separators=(",", ":"))
            fn = {"name": b.get("name") or "", "arguments": args}
            calls.append({"id": b.get("id") or "", "type": "function", "function": fn})
    message: JSONObj = {"role": "assistant", "content": "".join(texts) if texts else None}
    if "".join(thinking):
        message["reasoning_content"] = "".join(thinking)
    if calls:
        message["tool_calls"] = calls
    return {
        "id": obj.get("id") or "",
        "object": "chat.completion",
        "created": created,
        "model": obj.get("model") or "",
        "choices": [
            {
                "index": 0,
                "message": message,
                "logprobs": None,
                "finish_reason": openai_finish(obj.get("stop_reason"), bool(calls)),
            }
        ],
        "usage": openai_usage(provider_usage("anthropic", obj.get("usage"))),
    }


def client_status(status: int, client_api: ApiName) -> int:
    """The status the client sees: 529 (Anthropic's overloaded) is 503 to OpenAI clients; an
    error inside a 2xx answer is a 502."""
    if status < 400:
        return 502
    if client_api == "openai" and status == 529:
        return 503
    return status


def translate_error(
    body: bytes, status: int, provider_api: ApiName, client_api: ApiName
) -> tuple[int, bytes]:
    """An upstream error body, in the client API's error shape. Returns (status, body)."""
    try:
        obj = json.loads(body)
    except ValueError:
        obj = None
    message, kind = error_message(obj)
    if not message:
        message = f"upstream {provider_api} provider answered HTTP {status}"
    too_long = kind == "context_length_exceeded" or "maximum context length" in message
    if client_api == "anthropic" and too_long and not message.startswith(_TOO_LONG):
        message = f"{_TOO_LONG}: {message}"
    if client_api == "openai" and message.startswith(_TOO_LONG):
        kind = "context_length_exceeded"
    out = client_status(status, client_api)
    return out, error_body(client_api, out, message, kind or "upstream_error")


def translate_response(
    body: bytes,
    status: int,
    provider_api: ApiName,
    client_api: ApiName,
    *,
    model: str | None = None,
    created: int = 0,
    seed: str = "0",
) -> tuple[int, bytes]:
    """A non-streamed answer (or error) in the client's API. Returns (status, body)."""
    if provider_api == client_api:
        return status, body
    if status >= 400:
        return translate_error(body, status, provider_api, client_api)
    try:
        obj = json.loads(body)
    except ValueError:
        obj = None
    if not isinstance(obj, dict):
        msg = f"upstream {provider_api} provider sent an answer that is not JSON"
        return 502, error_body(client_api, 502, msg, "upstream_error")
    if obj.get("error") or obj.get("type") == "error" or obj.get("object") == "error":
        return translate_error(body, 502, provider_api, client_api)
    if provider_api == "openai":
        out = openai_to_anthropic_body(obj, model=model, seed=seed)
    else:
        out = anthropic_to_openai_body(obj, created=created)
    return status, json.dumps(out).encode()
