"""LLM requests and answers as a person reads them: the text behind mitmproxy's "LLM" view.

`render_request` and `render_response` take raw bodies of the Anthropic and OpenAI APIs, whole
or streamed (SSE), and return plain text. The relayed-stream copy kept in a flow may end with
`truncation_marker(...)`, an SSE comment that parsers skip; the view reports it. Pure: no I/O,
no mitmproxy imports.
"""

from __future__ import annotations

import json
from typing import Any

from llmrouter.wire._renderans import fold_json, fold_stream, render_folded
from llmrouter.wire._renderreq import render_request as _render_request

__all__ = ["TRUNCATED", "api_of_path", "render_request", "render_response", "truncation_marker"]

TRUNCATED = b"\n: llmrouter: copy truncated at "
_SUFFIXES = (
    ("/messages", "anthropic"),
    ("/chat/completions", "chat"),
    ("/completions", "completions"),
    ("/responses", "responses"),
    ("/embeddings", "embeddings"),
)
_LABELS = {"anthropic": "anthropic", "chat": "openai chat", "completions": "openai completions",
           "responses": "openai responses", "embeddings": "openai embeddings"}  # fmt: skip


def truncation_marker(limit: int) -> bytes:
    """Appended to a flow's copy of a stream that outgrew `limit` bytes (the client got it all)."""
    return TRUNCATED + f"{limit:,} bytes: the rest reached the client but is not kept\n\n".encode()


def api_of_path(path: str | None) -> str | None:
    """anthropic | chat | completions | responses | embeddings for an inference path, by suffix:
    providers put a prefix before it (/anthropic/v1/messages, /api/v1/chat/completions)."""
    if not path:
        return None
    bare = path.split("?", 1)[0].rstrip("/")
    return next((api for suffix, api in _SUFFIXES if bare.endswith(suffix)), None)


def _sniff_request(obj: dict[str, Any]) -> str:
    if "messages" in obj:
        if "system" in obj or any(
            isinstance(m, dict) and isinstance(m.get("content"), list)
            and any(isinstance(b, dict) and b.get("type") in ("tool_use", "tool_result", "image")
                    for b in m["content"])
            for m in obj["messages"] if isinstance(obj["messages"], list)
        ):  # fmt: skip
            return "anthropic"
        return "chat"
    if "input" in obj:
        return "responses"
    return "completions" if "prompt" in obj else "chat"


def render_request(body: bytes, path: str | None = None) -> str:
    """Raises ValueError when the body is not a JSON object."""
    obj = json.loads(body)
    if not isinstance(obj, dict):
        raise ValueError("not a JSON object")
    api = api_of_path(path)
    if api is None or (api == "completions" and "prompt" not in obj and "messages" in obj):
        api = _sniff_request(obj)
    return _render_request(obj, _LABELS[api])


def is_stream(body: bytes, content_type: str | None) -> bool:
    if content_type == "text/event-stream":
        return True
    head = body[:64].lstrip()
    return head.startswith((b"event:", b"data:", b":"))


def render_response(body: bytes, content_type: str | None = None, path: str | None = None) -> str:
    """An answer, whole or streamed. Raises ValueError when it is neither JSON nor SSE."""
    note = None
    cut = body.find(TRUNCATED)
    if cut >= 0:
        tail = body[cut + len(b"\n: llmrouter: ") :].split(b"\n", 1)[0]
        note = f"[{tail.decode(errors='replace')}]"
        body = body[:cut]
    hint = api_of_path(path)
    if is_stream(body, content_type):
        return render_folded(fold_stream(body, hint), True, note)
    obj = json.loads(body)
    if not isinstance(obj, dict):
        raise ValueError("not a JSON object")
    return render_folded(fold_json(obj, hint), False, note)
