"""Readable text of an LLM request (Anthropic messages, OpenAI chat, responses, completions,
embeddings): the model, the system prompt cut short, each turn's role and text, tool calls and
results in short form, images as `[image]`. Pure: plain data in, text out.
"""

from __future__ import annotations

import json
from typing import Any

TEXT_MAX = 2000  # chars of one text block in a request turn
SYSTEM_MAX = 300  # chars of each system block
TOOL_MAX = 200  # chars of a tool call's arguments or a tool result
INDENT = "  "
_TEXT_TYPES = ("text", "input_text", "output_text", "summary_text")


def clip(s: str, n: int) -> str:
    """`s` cut to about n chars, saying how much was cut."""
    if len(s) <= n:
        return s
    return f"{s[:n].rstrip()}… [+{len(s) - n:,} chars]"


def oneline(s: str, n: int) -> str:
    return clip(" ".join(s.split()), n)


def compact_json(v: Any) -> str:
    if isinstance(v, str):
        return v
    try:
        return json.dumps(v, ensure_ascii=False, separators=(",", ":"))
    except (TypeError, ValueError):
        return str(v)


def num(v: Any) -> str:
    return f"{v:,}" if isinstance(v, int) and not isinstance(v, bool) else str(v)


def indent(text: str, prefix: str = INDENT) -> str:
    return "\n".join(prefix + ln if ln else ln for ln in text.split("\n"))


# -- content blocks (Anthropic blocks and OpenAI parts and items, one walker) -----------------


def _media(kind: str, block: dict[str, Any]) -> str:
    src = block.get("source")
    media = src.get("media_type") if isinstance(src, dict) else None
    return f"[{kind}{' ' + media if isinstance(media, str) else ''}]"


def _tool_result_text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = []
        for b in content:
            if isinstance(b, dict) and b.get("type") in _TEXT_TYPES:
                parts.append(str(b.get("text", "")))
            elif isinstance(b, dict) and b.get("type") in ("image", "input_image", "image_url"):
                parts.append("[image]")
            elif isinstance(b, str):
                parts.append(b)
        return " ".join(parts)
    return compact_json(content)


def block_lines(block: Any) -> list[str]:
    """Display lines of one content block; text keeps its line breaks."""
    if isinstance(block, str):
        return [clip(block, TEXT_MAX)]
    if not isinstance(block, dict):
        return [oneline(compact_json(block), TOOL_MAX)]
    kind = block.get("type")
    if kind in _TEXT_TYPES or (kind is None and "text" in block):
        return [clip(str(block.get("text", "")), TEXT_MAX)]
    if kind in ("image", "input_image", "image_url"):
        return ["[image]"]
    if kind in ("document", "input_file", "file"):
        return [_media("document", block)]
    if kind == "input_audio":
        return ["[audio]"]
    if kind in ("tool_use", "server_tool_use", "function_call"):
        args = block.get("input", block.get("arguments"))
        call_id = block.get("id") or block.get("call_id")
        tail = f"  ({call_id})" if call_id else ""
        return [f"→ {block.get('name', '?')} {oneline(compact_json(args), TOOL_MAX)}{tail}"]
    if kind in ("tool_result", "function_call_output") or str(kind).endswith("_tool_result"):
        call_id = block.get("tool_use_id") or block.get("call_id") or ""
        body = _tool_result_text(block.get("content", block.get("output")))
        err = " error" if block.get("is_error") else ""
        return [f"← {call_id}{err}: {oneline(body, TOOL_MAX)}"]
    if kind == "thinking":
        return [f"[thinking, {len(str(block.get('thinking', ''))):,} chars]"]
    if kind == "redacted_thinking":
        return ["[redacted thinking]"]
    if kind == "reasoning":
        summary = _tool_result_text(block.get("summary") or [])
        return [f"[reasoning{': ' + oneline(summary, TOOL_MAX) if summary else ''}]"]
    return [f"[{kind}]"]


def content_lines(content: Any) -> list[str]:
    if content is None:
        return []
    if isinstance(content, list):
        return [ln for b in content for ln in block_lines(b)]
    return block_lines(content)


def _openai_tool_calls(msg: dict[str, Any]) -> list[str]:
    out = []
    for call in msg.get("tool_calls") or ():
        if isinstance(call, dict):
            fn = call.get("function") if isinstance(call.get("function"), dict) else {}
            args = oneline(str(fn.get("arguments", "")), TOOL_MAX)
            out.append(f"→ {fn.get('name', '?')} {args}  ({call.get('id', '')})")
    fc = msg.get("function_call")
    if isinstance(fc, dict):
        out.append(f"→ {fc.get('name', '?')} {oneline(str(fc.get('arguments', '')), TOOL_MAX)}")
    return out


def _turn(i: int, item: Any) -> list[str]:
    """One conversation turn (or responses item) as a header line and indented body."""
    if not isinstance(item, dict):
        return [f"[{i}] ?", indent(oneline(compact_json(item), TOOL_MAX))]
    kind = item.get("type")
    if kind not in (None, "message") and "role" not in item:  # a responses item
        return [f"[{i}] {kind}", *(indent(ln) for ln in block_lines(item))]
    role = str(item.get("role", "?"))
    lines = content_lines(item.get("content"))
    lines += _openai_tool_calls(item)
    if role == "tool":
        lines = [f"← {item.get('tool_call_id', '')}: {oneline(' '.join(lines), TOOL_MAX)}"]
    head = f"[{i}] {role}" + (f" ({item['name']})" if isinstance(item.get("name"), str) else "")
    return [head, *(indent(ln) for ln in lines or ["(empty)"])]


def _system_lines(system: Any) -> list[str]:
    blocks = system if isinstance(system, list) else [system]
    texts = [_tool_result_text([b]) if isinstance(b, dict) else str(b) for b in blocks]
    total = sum(len(t) for t in texts)
    head = f"system ({len(blocks)} block{'s' if len(blocks) != 1 else ''}, {total:,} chars)"
    return [head, *(indent(oneline(t, SYSTEM_MAX)) for t in texts)]


def _settings(obj: dict[str, Any]) -> list[str]:
    out = []
    if obj.get("stream"):
        out.append("stream")
    for key in ("max_tokens", "max_completion_tokens", "max_output_tokens", "temperature"):
        if obj.get(key) is not None:
            out.append(f"{key} {num(obj[key])}")
    thinking = obj.get("thinking")
    if isinstance(thinking, dict):
        budget = thinking.get("budget_tokens")
        out.append(f"thinking {thinking.get('type', '?')}" + (f" {num(budget)}" if budget else ""))
    effort = obj.get("output_config", {}).get("effort") if isinstance(obj.get("output_config"),
                                                                        dict) else None  # fmt: skip
    reasoning = obj.get("reasoning")
    effort = effort or (reasoning.get("effort") if isinstance(reasoning, dict) else None)
    effort = effort or obj.get("reasoning_effort")
    if effort:
        out.append(f"effort {effort}")
    return out


def _tools_line(tools: Any) -> str | None:
    if not isinstance(tools, list) or not tools:
        return None
    names = []
    for t in tools:
        if isinstance(t, dict):
            fn = t.get("function") if isinstance(t.get("function"), dict) else t
            names.append(str(fn.get("name") or t.get("type") or "?"))
    shown = ", ".join(names[:12]) + (f", … (+{len(names) - 12})" if len(names) > 12 else "")
    return f"tools ({len(names)}): {shown}"


def render_request(obj: dict[str, Any], api: str) -> str:
    """The request as a person reads it; `api` labels the first line."""
    head = [f"{api} request", f"model {obj.get('model', '?')}", *_settings(obj)]
    out = [" · ".join(head)]
    if tools := _tools_line(obj.get("tools")):
        out.append(tools)
    system = obj.get("system", obj.get("instructions"))
    if system:
        out += _system_lines(system)
    turns = obj.get("messages")
    if turns is None:
        turns = obj.get("input")
    if isinstance(turns, str):
        turns = [{"role": "user", "content": turns}]
    if "prompt" in obj and turns is None:  # legacy completions
        prompt = obj["prompt"]
        turns = [{"role": "prompt", "content": p} for p in (prompt if isinstance(prompt, list)
                                                             else [prompt])]  # fmt: skip
    if isinstance(turns, list) and api.endswith("embeddings"):
        out.append(f"input: {len(turns):,} item(s)")
        turns = [
            {"role": "input", "content": oneline(compact_json(t), TOOL_MAX)} for t in turns[:5]
        ]
    if isinstance(turns, list):
        out.append("")
        for i, item in enumerate(turns, 1):
            out += _turn(i, item)
    return "\n".join(out)
