"""Anthropic Messages request -> OpenAI Chat Completions request.

Choices that are not obvious (all listed in docs/TRANSLATION.md):
- `tool_result` blocks become `role: tool` messages in order, right after the assistant's
  tool calls. A tool message carries text only, so images (and documents) of a tool result go,
  labelled with the tool call's id, into ONE user message after the tool messages, together
  with the user's own blocks of that turn. They are never flattened to text.
- `is_error: true` has no field in OpenAI: the tool message text starts with "Error: ".
- Thinking blocks are dropped (no OpenAI-format provider verifies Anthropic's signatures),
  except for models that want their reasoning back (DeepSeek, Kimi K2): every assistant
  message then carries `reasoning_content`, its thinking text or "".
- Claude Code's attribution block (`x-anthropic-billing-header: …`) in `system` is metadata for
  Anthropic, not prompt text, and is dropped.
- Gemini 3 gets Google's documented `skip_thought_signature_validator` on the first tool call
  of each assistant turn: its real thought signatures are not carried through Anthropic
  clients, and without one it answers 400.
- Text-only user and system content is sent as one string: several OpenAI-compatible servers
  (DeepSeek among them) reject content arrays.
"""

from __future__ import annotations

from typing import Any

from llmrouter.wire.translate.common import Dropped, JSONObj, dumps
from llmrouter.wire.translate.models import (
    MaxTokensField,
    openai_rules,
    reasoning_echo,
    wants_thought_signature,
)

_HANDLED = {
    "model",
    "messages",
    "system",
    "max_tokens",
    "metadata",
    "stop_sequences",
    "stream",
    "temperature",
    "top_p",
    "tools",
    "tool_choice",
    "thinking",
    "output_config",
    "output_format",
}
_BILLING = "x-anthropic-billing-header:"
_EFFORTS = {"low": "low", "medium": "medium", "high": "high", "xhigh": "high", "max": "high"}


def anthropic_to_openai(
    payload: JSONObj,
    *,
    model: str | None,
    max_tokens_field: MaxTokensField | None = None,
    reasoning_model: bool | None = None,
    reasoning_field: str | None = None,
) -> tuple[JSONObj, list[str]]:
    """(OpenAI payload, names of what had no equivalent and was dropped). `reasoning_field`:
    where to echo earlier thinking in assistant messages; None by model, "" never."""
    dropped = Dropped()
    rules = openai_rules(model, max_tokens_field, reasoning_model)
    echo = reasoning_echo(model) if reasoning_field is None else reasoning_field or None
    out: JSONObj = {"model": model if model is not None else payload.get("model")}
    messages: list[JSONObj] = []
    system = _system_text(payload.get("system"), dropped)
    if system:
        messages.append({"role": "system", "content": system})
    for m in payload.get("messages") or ():
        if isinstance(m, dict):
            messages.extend(_message(m, dropped, echo))
    out["messages"] = messages

    if isinstance(payload.get("max_tokens"), int):
        out[rules.max_tokens_field] = payload["max_tokens"]
    for name in ("temperature", "top_p"):
        value = payload.get(name)
        if value is None:
            continue
        if rules.sampling or value == 1:
            out[name] = value
        else:
            dropped.add(name)
    stops = payload.get("stop_sequences")
    if isinstance(stops, list) and stops:
        if not rules.stop:
            dropped.add("stop_sequences")
        else:
            out["stop"] = stops[:4]  # OpenAI accepts at most 4
            if len(stops) > 4:
                dropped.add("stop_sequences[4:]")
    meta = payload.get("metadata")
    if isinstance(meta, dict):
        if isinstance(meta.get("user_id"), str) and meta["user_id"]:
            out["user"] = meta["user_id"]
        for key in meta:
            if key != "user_id":
                dropped.add(f"metadata.{key}")
    if payload.get("stream") is True:
        out["stream"] = True
        out["stream_options"] = {"include_usage": True}  # else the stream reports no usage
    elif "stream" in payload:
        out["stream"] = False
    _tools(payload, out, dropped)
    _reasoning(payload, out, rules.sampling, dropped)
    if wants_thought_signature(model):
        _sign_tool_calls(messages)
    for key in payload:
        if key not in _HANDLED:
            dropped.add(key)
    return out, list(dropped)


_SKIP_SIGNATURE = {"google": {"thought_signature": "skip_thought_signature_validator"}}


def _sign_tool_calls(messages: list[JSONObj]) -> None:
    """Gemini 3 checks a signature on the first tool call of each assistant turn."""
    for m in messages:
        calls = m.get("tool_calls")
        if calls:
            calls[0]["extra_content"] = _SKIP_SIGNATURE


def _text_of(content: Any, dropped: Dropped, sep: str = "\n\n") -> str:
    if isinstance(content, str):
        return content
    parts = []
    for b in content or ():
        if isinstance(b, dict) and b.get("type") == "text":
            if "cache_control" in b:
                dropped.add("cache_control")
            parts.append(b.get("text") or "")
    return sep.join(parts)


def _system_text(system: Any, dropped: Dropped) -> str:
    if isinstance(system, list):
        kept = []
        for b in system:
            if isinstance(b, dict) and str(b.get("text", "")).startswith(_BILLING):
                dropped.add("system.x-anthropic-billing-header")
                continue
            kept.append(b)
        system = kept
    return _text_of(system, dropped)


def _image_part(block: JSONObj, dropped: Dropped) -> JSONObj | None:
    src = block.get("source") or {}
    if src.get("type") == "base64":
        url = f"data:{src.get('media_type', 'image/png')};base64,{src.get('data', '')}"
        return {"type": "image_url", "image_url": {"url": url}}
    if src.get("type") == "url":
        return {"type": "image_url", "image_url": {"url": src.get("url", "")}}
    dropped.add(f"image source {src.get('type')}")
    return None


def _document_part(block: JSONObj, dropped: Dropped) -> JSONObj | None:
    src = block.get("source") or {}
    if src.get("type") == "base64":
        data = f"data:{src.get('media_type', 'application/pdf')};base64,{src.get('data', '')}"
        name = block.get("title") or "document.pdf"
        return {"type": "file", "file": {"filename": name, "file_data": data}}
    if src.get("type") == "text":
        return {"type": "text", "text": src.get("data", "")}
    dropped.add(f"document source {src.get('type')}")
    return None


def _user_part(block: Any, dropped: Dropped) -> JSONObj | None:
    if not isinstance(block, dict):
        return None
    kind = block.get("type")
    if "cache_control" in block:
        dropped.add("cache_control")
    if kind == "text":
        return {"type": "text", "text": block.get("text") or ""}
    if kind == "image":
        return _image_part(block, dropped)
    if kind == "document":
        return _document_part(block, dropped)
    dropped.add(f"{kind} blocks")
    return None


def _content(parts: list[JSONObj]) -> str | list[JSONObj]:
    if all(p["type"] == "text" for p in parts):
        return "\n\n".join(p["text"] for p in parts)
    return parts


def _message(m: JSONObj, dropped: Dropped, echo: str | None) -> list[JSONObj]:
    role, content = m.get("role"), m.get("content")
    if role == "system":
        return [{"role": "system", "content": _text_of(content, dropped)}]
    if role == "assistant":
        return [_assistant(content, dropped, echo)]
    if isinstance(content, str):
        return [{"role": "user", "content": content}]
    out: list[JSONObj] = []
    parts: list[JSONObj] = []
    for block in content or ():
        if isinstance(block, dict) and block.get("type") == "tool_result":
            tool_msg, extra = _tool_result(block, dropped)
            out.append(tool_msg)
            parts.extend(extra)
        else:
            part = _user_part(block, dropped)
            if part is not None:
                parts.append(part)
    if parts or not out:
        out.append({"role": "user", "content": _content(parts)})
    return out


def _tool_result(block: JSONObj, dropped: Dropped) -> tuple[JSONObj, list[JSONObj]]:
    """The tool message, and the parts it cannot carry (images, documents) with a label."""
    tool_id = block.get("tool_use_id") or ""
    content = block.get("content")
    texts: list[str] = []
    media: list[JSONObj] = []
    if isinstance(content, str):
        texts.append(content)
    for b in content if isinstance(content, list) else ():
        part = _user_part(b, dropped)
        if part is None:
            continue
        if part["type"] == "text":
            texts.append(part["text"])
        else:
            media.append(part)
    text = "\n\n".join(texts)
    if block.get("is_error") and not text.lower().startswith("error"):
        text = f"Error: {text}"
    extra: list[JSONObj] = []
    if media:
        text += f"\n[{len(media)} attachment(s) of this result follow in the next user message]"
        label = f"Attachment(s) returned by tool call {tool_id}:"
        extra = [{"type": "text", "text": label}, *media]
    return {"role": "tool", "tool_call_id": tool_id, "content": text}, extra


def _assistant(content: Any, dropped: Dropped, echo: str | None) -> JSONObj:
    if isinstance(content, str):
        return {"role": "assistant", "content": content} | ({echo: ""} if echo else {})
    texts: list[str] = []
    thinking: list[str] = []
    calls: list[JSONObj] = []
    for b in content or ():
        kind = b.get("type") if isinstance(b, dict) else None
        if kind == "text":
            texts.append(b.get("text") or "")
        elif kind == "tool_use":
            args = dumps(b.get("input") if b.get("input") is not None else {})
            fn = {"name": b.get("name"), "arguments": args}
            calls.append({"id": b.get("id"), "type": "function", "function": fn})
        elif kind == "thinking" and echo:
            thinking.append(b.get("thinking") or "")
        elif kind in ("thinking", "redacted_thinking"):
            dropped.add("thinking blocks")
        else:
            dropped.add(f"{kind} blocks")
    msg: JSONObj = {"role": "assistant", "content": "".join(texts) if texts or not calls else None}
    if echo:
        msg[echo] = "".join(thinking)
    if calls:
        msg["tool_calls"] = calls
    return msg


def _tools(payload: JSONObj, out: JSONObj, dropped: Dropped) -> None:
    tools = []
    for t in payload.get("tools") or ():
        if not isinstance(t, dict):
            continue
        if t.get("type") not in (None, "custom") or "input_schema" not in t:
            dropped.add(f"tools[{t.get('name') or t.get('type')}]")  # server tools
            continue
        fn: JSONObj = {"name": t.get("name")}
        if t.get("description"):
            fn["description"] = t["description"]
        fn["parameters"] = t.get("input_schema") or {"type": "object", "properties": {}}
        for key in t:
            if key not in ("name", "description", "input_schema", "type"):
                dropped.add("cache_control" if key == "cache_control" else f"tools[].{key}")
        tools.append({"type": "function", "function": fn})
    choice = payload.get("tool_choice")
    if not tools:
        if isinstance(choice, dict) and choice.get("type") != "none":
            dropped.add("tool_choice")
        return
    out["tools"] = tools
    if not isinstance(choice, dict):
        return
    kind = choice.get("type")
    if kind == "auto":
        out["tool_choice"] = "auto"
    elif kind == "any":
        out["tool_choice"] = "required"
    elif kind == "none":
        out["tool_choice"] = "none"
    elif kind == "tool":
        out["tool_choice"] = {"type": "function", "function": {"name": choice.get("name")}}
    if choice.get("disable_parallel_tool_use") is True and kind != "none":
        out["parallel_tool_calls"] = False


def _reasoning(payload: JSONObj, out: JSONObj, sampling: bool, dropped: Dropped) -> None:
    """Reasoning models take `reasoning_effort`; other OpenAI-format models reject it."""
    thinking = payload.get("thinking")
    config = payload.get("output_config")
    config = config if isinstance(config, dict) else {}
    effort = _EFFORTS.get(str(config.get("effort")))
    if isinstance(thinking, dict) and thinking.get("type") == "enabled" and effort is None:
        budget = thinking.get("budget_tokens") or 0
        effort = "low" if budget <= 4096 else "medium" if budget <= 16384 else "high"
    disabled = isinstance(thinking, dict) and thinking.get("type") == "disabled"
    if disabled:
        effort = None
    if effort is not None and not sampling:
        out["reasoning_effort"] = effort
    elif thinking is not None and not disabled:
        dropped.add("thinking")
    if "effort" in config and "reasoning_effort" not in out:
        dropped.add("output_config.effort")
    fmt = config.get("format") or payload.get("output_format")
    if isinstance(fmt, dict) and fmt.get("type") == "json_schema":
        schema = {"name": "output", "schema": fmt.get("schema") or {}}
        out["response_format"] = {"type": "json_schema", "json_schema": schema}
    for key in config:
        if key not in ("effort", "format"):
            dropped.add(f"output_config.{key}")
