"""OpenAI Chat Completions request -> Anthropic Messages request.

Choices that are not obvious (all listed in docs/TRANSLATION.md):
- Leading system/developer messages become `system`. A system message later in the
  conversation becomes a `<system-reminder>` text block in the user turn at its place (the
  convention Claude Code itself uses), since older Claude models reject mid-conversation
  system messages.
- `role: tool` messages become `tool_result` blocks, first in the next user turn, as Anthropic
  requires; consecutive turns of one role are merged.
- Reasoning that OpenAI-format clients keep in assistant messages (`reasoning_content`,
  `reasoning`) is dropped: Anthropic accepts only thinking it signed.
- Tool call ids are rewritten to Anthropic's alphabet ([a-zA-Z0-9_-]) the same way the answer's
  ids are, so calls and results still pair up.
- `max_tokens` is required by Anthropic: `default_max_tokens` (4096, which every Claude model
  accepts) when the client sent none.
- `reasoning_effort` turns on extended thinking for Claude models that have it, with a budget
  below max_tokens, unless the request forces a tool or sits in a tool loop without signed
  thinking (both of which Anthropic rejects); temperature/top_p that thinking forbids go.
"""

from __future__ import annotations

import json
from typing import Any

from llmrouter.wire.translate.common import Dropped, JSONObj, anthropic_tool_id
from llmrouter.wire.translate.models import claude_thinks
from llmrouter.wire.translate.thinking import needs_leading_thinking

_HANDLED = {
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
}
_BUDGETS = {"low": 2048, "medium": 8192, "high": 24576, "xhigh": 32768}


def openai_to_anthropic(
    payload: JSONObj, *, model: str | None, default_max_tokens: int = 4096
) -> tuple[JSONObj, list[str]]:
    """(Anthropic payload, names of what had no equivalent and was dropped)."""
    dropped = Dropped()
    out: JSONObj = {"model": model if model is not None else payload.get("model")}
    system, messages = _messages(payload.get("messages") or [], dropped)
    if system:
        out["system"] = system[0]["text"] if len(system) == 1 else system
    out["messages"] = messages
    limit = payload.get("max_completion_tokens") or payload.get("max_tokens")
    out["max_tokens"] = limit if isinstance(limit, int) and limit > 0 else default_max_tokens
    temp = payload.get("temperature")
    if isinstance(temp, int | float):
        out["temperature"] = min(1.0, max(0.0, float(temp)))
        if temp > 1:
            dropped.add("temperature above 1 (clamped)")
    if isinstance(payload.get("top_p"), int | float):
        out["top_p"] = payload["top_p"]
    stops = payload.get("stop")
    stops = [stops] if isinstance(stops, str) else stops if isinstance(stops, list) else []
    kept = [s for s in stops if isinstance(s, str) and s.strip()]
    if kept:
        out["stop_sequences"] = kept
    if len(kept) < len(stops):
        dropped.add("stop (whitespace-only sequences)")  # Anthropic rejects those
    user = payload.get("user") or payload.get("safety_identifier")
    if isinstance(user, str) and user:
        out["metadata"] = {"user_id": user}
    if "stream" in payload:
        out["stream"] = payload.get("stream") is True
    _tools(payload, out, dropped)
    _thinking(payload, out, dropped)
    if isinstance(payload.get("n"), int) and payload["n"] > 1:
        dropped.add("n")
    for key in payload:
        if key not in _HANDLED:
            dropped.add(key)
    return out, list(dropped)


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    parts = content if isinstance(content, list) else ()
    return "\n\n".join(
        str(p.get("text") or "") for p in parts if isinstance(p, dict) and p.get("type") == "text"
    )


def _data_url(url: str) -> tuple[str, str] | None:
    """(media type, base64 data) of a `data:…;base64,…` URL."""
    if not url.startswith("data:"):
        return None
    head, _, data = url[5:].partition(",")
    media, _, enc = head.partition(";")
    return (media or "application/octet-stream", data) if enc == "base64" else None


def _part(p: Any, dropped: Dropped) -> JSONObj | None:
    if not isinstance(p, dict):
        return None
    kind = p.get("type")
    if kind == "text":
        text = p.get("text") or ""
        return {"type": "text", "text": text} if text else None  # empty blocks are rejected
    if kind == "image_url":
        image = p.get("image_url")
        url = image.get("url", "") if isinstance(image, dict) else str(image or "")
        inline = _data_url(url)
        if inline:
            src = {"type": "base64", "media_type": inline[0], "data": inline[1]}
            return {"type": "image", "source": src}
        return {"type": "image", "source": {"type": "url", "url": url}}
    if kind == "file":
        f = p.get("file") or {}
        inline = _data_url(str(f.get("file_data") or ""))
        if inline:
            src = {"type": "base64", "media_type": inline[0], "data": inline[1]}
            block: JSONObj = {"type": "document", "source": src}
            if f.get("filename"):
                block["title"] = f["filename"]
            return block
        dropped.add("file parts by file_id")
        return None
    dropped.add(f"{kind} parts")
    return None


def _user_blocks(content: Any, dropped: Dropped) -> list[JSONObj]:
    if isinstance(content, str):
        return [{"type": "text", "text": content}] if content else []
    return [b for p in content or () if (b := _part(p, dropped)) is not None]


def _assistant_blocks(m: JSONObj, legacy: list[str], dropped: Dropped) -> list[JSONObj]:
    if m.get("reasoning_content") or m.get("reasoning") or m.get("thinking"):
        dropped.add("reasoning in assistant messages (unsigned)")
    blocks: list[JSONObj] = []
    content = m.get("content")
    texts = [content] if isinstance(content, str) else []
    for p in content if isinstance(content, list) else ():
        if isinstance(p, dict) and p.get("type") in ("text", "refusal"):
            texts.append(str(p.get("text") or p.get("refusal") or ""))
    text = "".join(texts)
    if text:
        blocks.append({"type": "text", "text": text})
    calls = list(m.get("tool_calls") or ())
    if isinstance(m.get("function_call"), dict):  # the legacy functions API
        legacy.append(f"call_legacy_{len(legacy)}")
        calls.append({"id": legacy[-1], "function": m["function_call"]})
    for i, call in enumerate(calls):
        if not isinstance(call, dict):
            continue
        fn = call.get("function") if isinstance(call.get("function"), dict) else {}
        raw = fn.get("arguments") or "{}"
        try:
            args = json.loads(raw) if isinstance(raw, str) else raw
        except ValueError:
            args = None
        if not isinstance(args, dict):
            dropped.add("tool call arguments that are not a JSON object")
            args = {}
        tool_id = anthropic_tool_id(call.get("id"), f"call_{i}")
        name = fn.get("name") or ""
        blocks.append({"type": "tool_use", "id": tool_id, "name": name, "input": args})
    return blocks


def _tool_result(m: JSONObj, legacy: list[str]) -> JSONObj:
    if m.get("role") == "function":
        tool_id = legacy.pop(0) if legacy else "call_legacy"
    else:
        tool_id = anthropic_tool_id(m.get("tool_call_id"), "call_0")
    block: JSONObj = {"type": "tool_result", "tool_use_id": tool_id}
    text = _text(m.get("content"))
    if text:
        block["content"] = text
    return block


def _messages(msgs: list[Any], dropped: Dropped) -> tuple[list[JSONObj], list[JSONObj]]:
    system: list[JSONObj] = []
    turns: list[JSONObj] = []
    legacy: list[str] = []
    for m in msgs:
        if not isinstance(m, dict):
            continue
        role = m.get("role")
        if "name" in m:
            dropped.add("messages[].name")
        if role in ("system", "developer"):
            text = _text(m.get("content"))
            if not turns:
                if text:
                    system.append({"type": "text", "text": text})
            elif text:
                reminder = f"<system-reminder>\n{text}\n</system-reminder>"
                _append(turns, "user", [{"type": "text", "text": reminder}])
        elif role == "assistant":
            _append(turns, "assistant", _assistant_blocks(m, legacy, dropped))
        elif role in ("tool", "function"):
            _append(turns, "user", [_tool_result(m, legacy)])
        else:
            _append(turns, "user", _user_blocks(m.get("content"), dropped))
    if turns and turns[-1]["role"] == "assistant":
        _strip_prefill(turns)
    return system, turns


def _append(turns: list[JSONObj], role: str, blocks: list[JSONObj]) -> None:
    """Merge into the previous turn of the same role; tool results go first in a user turn."""
    if not blocks:
        return
    if turns and turns[-1]["role"] == role:
        merged = turns[-1]["content"] + blocks
        if role == "user":
            results = [b for b in merged if b["type"] == "tool_result"]
            merged = results + [b for b in merged if b["type"] != "tool_result"]
        turns[-1]["content"] = merged
    else:
        turns.append({"role": role, "content": blocks})


def _strip_prefill(turns: list[JSONObj]) -> None:
    """Anthropic rejects a final assistant message that ends in whitespace."""
    last = turns[-1]["content"][-1]
    if last["type"] == "text":
        last["text"] = last["text"].rstrip()
        if not last["text"]:
            turns[-1]["content"].pop()
            if not turns[-1]["content"]:
                turns.pop()


def _tools(payload: JSONObj, out: JSONObj, dropped: Dropped) -> None:
    tools = []
    for t in payload.get("tools") or ():
        fn = t.get("function") if isinstance(t, dict) else None
        if not isinstance(fn, dict) or t.get("type", "function") != "function":
            dropped.add("non-function tools")
            continue
        tool: JSONObj = {"name": fn.get("name") or ""}
        if fn.get("description"):
            tool["description"] = fn["description"]
        schema = fn.get("parameters")
        tool["input_schema"] = schema if isinstance(schema, dict) else {"type": "object"}
        if "strict" in fn:
            dropped.add("tools[].function.strict")
        tools.append(tool)
    choice = payload.get("tool_choice")
    if not tools:
        if choice not in (None, "none"):
            dropped.add("tool_choice")
        return
    out["tools"] = tools
    tc: JSONObj | None = None
    if choice == "auto":
        tc = {"type": "auto"}
    elif choice == "required":
        tc = {"type": "any"}
    elif choice == "none":
        tc = {"type": "none"}
    elif isinstance(choice, dict):
        name = (choice.get("function") or {}).get("name")
        tc = {"type": "tool", "name": name} if name else None
    if payload.get("parallel_tool_calls") is False and (tc is None or tc["type"] != "none"):
        tc = {**(tc or {"type": "auto"}), "disable_parallel_tool_use": True}
    if tc is not None:
        out["tool_choice"] = tc


def _thinking(payload: JSONObj, out: JSONObj, dropped: Dropped) -> None:
    effort = payload.get("reasoning_effort")
    if effort is None or effort in ("none", "minimal"):
        return
    budget = min(_BUDGETS.get(str(effort), 8192), out["max_tokens"] - 1)
    forced = out.get("tool_choice", {}).get("type") in ("any", "tool")
    if (
        not claude_thinks(out.get("model"))
        or budget < 1024  # Anthropic's minimum budget
        or forced
        or needs_leading_thinking(out["messages"])
    ):
        dropped.add("reasoning_effort")
        return
    out["thinking"] = {"type": "enabled", "budget_tokens": budget}
    if out.get("temperature", 1) != 1:
        del out["temperature"]
        dropped.add("temperature (thinking needs 1)")
    if out.get("top_p", 1) < 0.95:
        del out["top_p"]
        dropped.add("top_p (thinking needs >= 0.95)")
