"""Readable text of an LLM answer, whole or streamed (SSE): the assembled text, tool calls with
their arguments, the stop reason and the usage. Anthropic messages, OpenAI chat, completions,
responses and embeddings. Pure: plain data in, text out.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from llmrouter.wire._renderreq import TEXT_MAX, clip, compact_json, num
from llmrouter.wire.apis import usage_from
from llmrouter.wire.sse import SSEParser

ANSWER_MAX = 200_000  # chars of one assembled text block
ARGS_MAX = 4000  # chars of one tool call's arguments
_ANTHROPIC_EVENTS = frozenset(
    (b"message_start", b"content_block_start", b"content_block_delta", b"message_delta",
     b"message_stop", b"content_block_stop", b"ping")
)  # fmt: skip


@dataclass(slots=True)
class _Block:
    kind: str  # text | tool | thinking | refusal | note
    name: str = ""
    id: str = ""
    parts: list[str] = field(default_factory=list)


@dataclass(slots=True)
class Folded:
    """An answer folded into blocks, from a JSON body or an event stream."""

    api: str  # label: anthropic | openai chat | openai responses | ...
    usage_api: str = "openai"  # whose usage field names
    model: str | None = None
    blocks: dict[Any, _Block] = field(default_factory=dict)  # in order of first appearance
    stop: str | None = None
    usage: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    events: int = 0
    ended: bool = True  # a stream reached its final event

    def block(self, key: Any, kind: str, **kw: str) -> _Block:
        b = self.blocks.get(key)
        if b is None:
            b = self.blocks[key] = _Block(kind, **kw)
        for k, v in kw.items():
            if v and not getattr(b, k):
                setattr(b, k, v)
        return b

    def add_usage(self, usage: Any) -> None:
        if isinstance(usage, dict):
            self.usage.update({k: v for k, v in usage.items() if v is not None})


def _error_text(obj: Any) -> str:
    err = obj.get("error") if isinstance(obj, dict) else None
    if isinstance(err, dict):
        return f"{err.get('type') or err.get('code') or 'error'}: {err.get('message', '')}"
    if isinstance(obj, dict):
        return f"{obj.get('code') or obj.get('type') or 'error'}: {obj.get('message', '')}"
    return "error"


# -- whole bodies -------------------------------------------------------------------------------


def _anthropic_content(f: Folded, content: Any) -> None:
    for i, b in enumerate(content if isinstance(content, list) else []):
        if not isinstance(b, dict):
            continue
        kind = b.get("type")
        if kind == "text":
            f.block(i, "text").parts.append(str(b.get("text", "")))
        elif kind in ("tool_use", "server_tool_use"):
            blk = f.block(i, "tool", name=str(b.get("name", "?")), id=str(b.get("id", "")))
            blk.parts.append(compact_json(b.get("input", {})))
        elif kind == "thinking":
            f.block(i, "thinking").parts.append(str(b.get("thinking", "")))
        else:
            f.block(i, "note").parts.append(f"[{kind}]")


def _chat_message(f: Folded, msg: dict[str, Any], prefix: str = "") -> None:
    for key, kind in (("reasoning_content", "thinking"), ("reasoning", "thinking"),
                      ("content", "text"), ("refusal", "refusal")):  # fmt: skip
        if isinstance(msg.get(key), str) and msg[key]:
            f.block(f"{prefix}{key}", kind).parts.append(msg[key])
    for j, call in enumerate(msg.get("tool_calls") or ()):
        if isinstance(call, dict):
            fn = call.get("function") if isinstance(call.get("function"), dict) else {}
            blk = f.block(f"{prefix}tool{j}", "tool", name=str(fn.get("name", "?")),
                          id=str(call.get("id", "")))  # fmt: skip
            blk.parts.append(str(fn.get("arguments", "")))


def _responses_output(f: Folded, output: Any) -> None:
    for i, item in enumerate(output if isinstance(output, list) else []):
        if not isinstance(item, dict):
            continue
        kind = item.get("type")
        if kind == "message":
            for part in item.get("content") or ():
                if isinstance(part, dict) and part.get("type") == "output_text":
                    f.block(i, "text").parts.append(str(part.get("text", "")))
                elif isinstance(part, dict) and part.get("type") == "refusal":
                    f.block(i, "refusal").parts.append(str(part.get("refusal", "")))
        elif kind == "function_call":
            blk = f.block(i, "tool", name=str(item.get("name", "?")),
                          id=str(item.get("call_id", "")))  # fmt: skip
            blk.parts.append(str(item.get("arguments", "")))
        elif kind == "reasoning":
            summary = [str(s.get("text", "")) for s in item.get("summary") or ()
                       if isinstance(s, dict)]  # fmt: skip
            f.block(i, "thinking").parts.append(" ".join(summary) or "[reasoning]")
        else:
            f.block(i, "note").parts.append(f"[{kind}]")


def fold_json(obj: dict[str, Any], hint: str | None) -> Folded:
    if obj.get("error") or obj.get("type") == "error":
        f = Folded(hint or "error")
        f.error = _error_text(obj)
        return f
    # A translated flow shows the provider's path: an answer says what it is before the hint.
    if obj.get("type") == "message" or (hint == "anthropic" and "choices" not in obj):
        f = Folded("anthropic", "anthropic", obj.get("model"))
        _anthropic_content(f, obj.get("content"))
        f.stop = obj.get("stop_reason")
    elif obj.get("object") == "response" or hint == "responses":
        f = Folded("openai responses", "openai", obj.get("model"))
        _responses_output(f, obj.get("output"))
        status, details = obj.get("status"), obj.get("incomplete_details")
        f.stop = status if isinstance(status, str) else None
        if f.stop and isinstance(details, dict) and details.get("reason"):
            f.stop += f" ({details['reason']})"
    elif obj.get("object") == "list" and isinstance(obj.get("data"), list):
        f = Folded("openai embeddings", "openai", obj.get("model"))
        data = obj["data"]
        first = data[0].get("embedding") if data and isinstance(data[0], dict) else None
        dims = f"{len(first)} dimensions" if isinstance(first, list) else "base64"
        f.block(0, "note").parts.append(f"[{len(data)} embedding(s), {dims}]")
    else:
        f = Folded("openai chat", "openai", obj.get("model"))
        for i, choice in enumerate(obj.get("choices") or ()):
            if not isinstance(choice, dict):
                continue
            prefix = f"{i}:" if i else ""
            if isinstance(choice.get("message"), dict):
                _chat_message(f, choice["message"], prefix)
            elif isinstance(choice.get("text"), str):  # legacy completions
                f.api = "openai completions"
                f.block(f"{prefix}text", "text").parts.append(choice["text"])
            f.stop = choice.get("finish_reason") or f.stop
    f.add_usage(obj.get("usage"))
    return f


# -- event streams --------------------------------------------------------------------------


def _fold_anthropic(f: Folded, event: bytes | None, obj: Any) -> None:
    if not isinstance(obj, dict):
        return
    kind = obj.get("type") or (event or b"").decode(errors="replace")
    if kind == "message_start" and isinstance(obj.get("message"), dict):
        f.model = obj["message"].get("model")
        f.add_usage(obj["message"].get("usage"))
    elif kind == "content_block_start" and isinstance(obj.get("content_block"), dict):
        cb = obj["content_block"]
        t = cb.get("type")
        if t in ("tool_use", "server_tool_use"):
            f.block(obj.get("index"), "tool", name=str(cb.get("name", "?")), id=str(cb.get("id")))
        elif t in ("text", "thinking"):
            f.block(obj.get("index"), t)
        else:
            f.block(obj.get("index"), "note").parts.append(f"[{t}]")
    elif kind == "content_block_delta" and isinstance(obj.get("delta"), dict):
        d = obj["delta"]
        t = d.get("type")
        if t == "text_delta":
            f.block(obj.get("index"), "text").parts.append(str(d.get("text", "")))
        elif t == "input_json_delta":
            f.block(obj.get("index"), "tool").parts.append(str(d.get("partial_json", "")))
        elif t == "thinking_delta":
            f.block(obj.get("index"), "thinking").parts.append(str(d.get("thinking", "")))
    elif kind == "message_delta":
        if isinstance(obj.get("delta"), dict):
            f.stop = obj["delta"].get("stop_reason") or f.stop
        f.add_usage(obj.get("usage"))
    elif kind == "message_stop":
        f.ended = True
    elif kind == "error":
        f.error = _error_text(obj)


def _fold_chat(f: Folded, obj: Any) -> None:
    if not isinstance(obj, dict):
        return
    if obj.get("error"):
        f.error = _error_text(obj)
        return
    f.model = f.model or obj.get("model")
    f.add_usage(obj.get("usage"))
    for choice in obj.get("choices") or ():
        if not isinstance(choice, dict):
            continue
        i = choice.get("index", 0)
        prefix = f"{i}:" if i else ""
        delta = choice.get("delta")
        if isinstance(delta, dict):
            for key, kind in (("reasoning_content", "thinking"), ("reasoning", "thinking"),
                              ("content", "text"), ("refusal", "refusal")):  # fmt: skip
                if isinstance(delta.get(key), str) and delta[key]:
                    f.block(f"{prefix}{key}", kind).parts.append(delta[key])
            for call in delta.get("tool_calls") or ():
                if not isinstance(call, dict):
                    continue
                fn = call.get("function") if isinstance(call.get("function"), dict) else {}
                key, name = f"{prefix}tool{call.get('index', 0)}", str(fn.get("name") or "")
                blk = f.block(key, "tool", name=name, id=str(call.get("id") or ""))
                if fn.get("arguments"):
                    blk.parts.append(str(fn["arguments"]))
        elif isinstance(choice.get("text"), str):  # legacy completions
            f.api = "openai completions"
            f.block(f"{prefix}text", "text").parts.append(choice["text"])
        f.stop = choice.get("finish_reason") or f.stop


def _fold_responses(f: Folded, event: bytes | None, obj: Any) -> None:
    if not isinstance(obj, dict):
        return
    kind = obj.get("type") or (event or b"").decode(errors="replace")
    idx = obj.get("output_index", 0)
    if kind in ("response.created", "response.in_progress") and isinstance(obj.get("response"),
                                                                           dict):  # fmt: skip
        f.model = obj["response"].get("model") or f.model
    elif kind == "response.output_item.added" and isinstance(obj.get("item"), dict):
        item = obj["item"]
        if item.get("type") == "function_call":
            f.block(idx, "tool", name=str(item.get("name", "?")), id=str(item.get("call_id", "")))
        elif item.get("type") == "reasoning":
            f.block(idx, "thinking")
    elif kind == "response.output_text.delta":
        f.block(idx, "text").parts.append(str(obj.get("delta", "")))
    elif kind == "response.refusal.delta":
        f.block(idx, "refusal").parts.append(str(obj.get("delta", "")))
    elif kind == "response.function_call_arguments.delta":
        f.block(idx, "tool").parts.append(str(obj.get("delta", "")))
    elif kind in ("response.reasoning_summary_text.delta", "response.reasoning_text.delta"):
        f.block(idx, "thinking").parts.append(str(obj.get("delta", "")))
    elif kind in ("response.completed", "response.incomplete", "response.failed"):
        f.ended = True
        resp = obj.get("response") if isinstance(obj.get("response"), dict) else {}
        f.stop = resp.get("status") or kind.removeprefix("response.")
        details = resp.get("incomplete_details")
        if isinstance(details, dict) and details.get("reason"):
            f.stop = f"{f.stop} ({details['reason']})"
        f.add_usage(resp.get("usage"))
        if resp.get("error"):
            f.error = _error_text(resp)
    elif kind == "error":
        f.error = _error_text(obj)


def fold_stream(body: bytes, hint: str | None) -> Folded:
    events = SSEParser().feed(body if body.endswith(b"\n\n") else body + b"\n\n")
    names = {e for e, _ in events[:8] if e}
    chat = not names and b'"choices"' in body[:4096]  # Chat Completions chunks, whatever the path
    if names & _ANTHROPIC_EVENTS or (hint == "anthropic" and not chat):
        f = Folded("anthropic", "anthropic", ended=False)
    elif any(n.startswith(b"response.") for n in names) or hint == "responses":
        f = Folded("openai responses", "openai", ended=False)
    else:
        f = Folded("openai chat", "openai", ended=False)
    for event, data in events:
        f.events += 1
        if data.strip() == b"[DONE]":
            f.ended = True
            continue
        try:
            obj = json.loads(data)
        except ValueError:
            continue
        if f.usage_api == "anthropic":
            _fold_anthropic(f, event, obj)
        elif f.api == "openai responses":
            _fold_responses(f, event, obj)
        else:
            _fold_chat(f, obj)
    return f


# -- text -----------------------------------------------------------------------------------


def _usage_line(f: Folded) -> str | None:
    if not f.usage:
        return None
    u = usage_from("anthropic" if f.usage_api == "anthropic" else "openai", f.usage)
    parts = []
    if u.input_tokens is not None:
        cached = (("cache read", u.cache_read_tokens), ("cache write", u.cache_write_tokens))
        cache = [f"{k} {num(v)}" for k, v in cached if v]
        parts.append(f"input {num(u.input_tokens)}" + (f" ({', '.join(cache)})" if cache else ""))
    if u.output_tokens is not None:
        parts.append(f"output {num(u.output_tokens)}")
    return "usage: " + " · ".join(parts) if parts else None


def render_folded(f: Folded, stream: bool, note: str | None = None) -> str:
    head = [f"{f.api} answer"]
    if f.model:
        head.append(f"model {f.model}")
    if stream:
        head.append(f"streamed, {f.events:,} events")
    out = [" · ".join(head), ""]
    for b in f.blocks.values():
        text = "".join(b.parts)
        if b.kind == "text":
            out.append(clip(text, ANSWER_MAX))
        elif b.kind == "tool":
            tail = f"  ({b.id})" if b.id and b.id != "None" else ""
            out.append(f"→ {b.name or '?'} {clip(text, ARGS_MAX)}{tail}")
        elif b.kind == "thinking":
            out.append(f"[thinking] {clip(text, TEXT_MAX)}")
        elif b.kind == "refusal":
            out.append(f"[refusal] {clip(text, TEXT_MAX)}")
        else:
            out.append(text)
        out.append("")
    if f.error:
        out.append(f"error: {f.error}")
    if f.stop:
        out.append(f"stop: {f.stop}")
    if stream and not f.ended and not f.error and not note:
        out.append("stream: no final event (cut short, or still running)")
    if note:
        out.append(note)
    if usage := _usage_line(f):
        out.append(usage)
    return "\n".join(out).rstrip() + "\n"
