"""Property tests of request translation: any conversation survives Anthropic -> OpenAI ->
Anthropic (and the reverse) up to the documented losses, and every translated request keeps
the target's schema and pairing rules."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from llmrouter.wire.translate import translate_request
from translate_fixtures.schemas import check_anthropic, check_openai

TEXT = st.text(
    st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")), min_size=1, max_size=20
).filter(lambda s: s.strip() == s and s.strip())
IDS = st.text("abcdefghijklmnopqrstuvwxyzABC0123456789_-", min_size=4, max_size=12)
JSONV = st.recursive(
    st.none() | st.booleans() | st.integers(-99, 99) | TEXT,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(TEXT, inner, max_size=3),
    max_leaves=6,
)
INPUTS = st.dictionaries(TEXT, JSONV, max_size=3)
PNG = {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="}
IMAGES = st.sampled_from([PNG, {"type": "url", "url": "https://x.test/i.png"}]).map(
    lambda s: {"type": "image", "source": s}
)
A_USER_BLOCKS = st.lists(
    TEXT.map(lambda t: {"type": "text", "text": t}) | IMAGES, min_size=1, max_size=3
)


@st.composite
def anthropic_conversations(draw: st.DrawFn) -> dict[str, Any]:
    messages: list[dict[str, Any]] = [{"role": "user", "content": draw(A_USER_BLOCKS | TEXT)}]
    used: set[str] = set()
    for _ in range(draw(st.integers(0, 3))):
        blocks: list[dict[str, Any]] = []
        if draw(st.booleans()):
            blocks.append({"type": "thinking", "thinking": draw(TEXT), "signature": "EqQBsig"})
        if draw(st.booleans()):
            blocks.append({"type": "text", "text": draw(TEXT)})
        calls = [i for i in draw(st.lists(IDS, max_size=3, unique=True)) if i not in used]
        used.update(calls)
        for i in calls:
            blocks.append({"type": "tool_use", "id": i, "name": draw(TEXT), "input": draw(INPUTS)})
        if not any(b["type"] != "thinking" for b in blocks):
            blocks.append({"type": "text", "text": draw(TEXT)})
        messages.append({"role": "assistant", "content": blocks})
        reply: list[dict[str, Any]] = []
        for i in calls:
            result: dict[str, Any] = {"type": "tool_result", "tool_use_id": i}
            content = draw(st.none() | TEXT | st.lists(TEXT, min_size=1, max_size=2))
            if isinstance(content, list):
                result["content"] = [{"type": "text", "text": t} for t in content]
            elif content is not None:
                result["content"] = content
            if draw(st.booleans()):
                result["is_error"] = True
            reply.append(result)
        if not calls or draw(st.booleans()):
            reply.extend(draw(A_USER_BLOCKS))
        messages.append({"role": "user", "content": reply})
    payload = {"model": "claude-x", "max_tokens": draw(st.integers(1, 9999)), "messages": messages}
    system = draw(st.none() | TEXT | st.lists(TEXT, min_size=1, max_size=2))
    if isinstance(system, list):
        payload["system"] = [{"type": "text", "text": t} for t in system]
    elif system is not None:
        payload["system"] = system
    return payload


def _texts(blocks: list[dict[str, Any]], sep: str) -> list[Any]:
    """Adjacent text blocks as one string: what a text-only OpenAI message can say."""
    out: list[Any] = []
    for b in blocks:
        if b["type"] == "text" and out and isinstance(out[-1], str):
            out[-1] += sep + b["text"]
        else:
            out.append(b["text"] if b["type"] == "text" else b)
    return out


def norm_anthropic(p: dict[str, Any]) -> dict[str, Any]:
    """The documented losses applied: thinking dropped, text blocks joined, is_error as text."""
    system = p.get("system")
    if isinstance(system, list):
        system = "\n\n".join(b["text"] for b in system)
    msgs = []
    for m in p["messages"]:
        blocks = m["content"]
        if isinstance(blocks, str):
            blocks = [{"type": "text", "text": blocks}]
        if m["role"] == "assistant":
            text = "".join(b["text"] for b in blocks if b["type"] == "text")
            tools = [(b["id"], b["name"], b["input"]) for b in blocks if b["type"] == "tool_use"]
            msgs.append(("assistant", text, tools))
            continue
        results, rest = [], []
        for b in blocks:
            if b["type"] != "tool_result":
                rest.append(b)
                continue
            c = b.get("content") or ""
            c = c if isinstance(c, str) else "\n\n".join(x["text"] for x in c)
            if b.get("is_error") and not c.lower().startswith("error"):
                c = f"Error: {c}"
            results.append((b["tool_use_id"], c))
        msgs.append(("user", results, _texts(rest, "\n\n")))
    return {"system": system or None, "messages": msgs, "max_tokens": p["max_tokens"]}


@settings(max_examples=150, deadline=None)
@given(anthropic_conversations())
def test_anthropic_to_openai_and_back(payload: dict[str, Any]) -> None:
    there, _ = translate_request(payload, "anthropic", "openai", model="gpt-4o")
    check_openai(there)
    back, dropped = translate_request(there, "openai", "anthropic", model="claude-x")
    check_anthropic(back)
    assert dropped == []
    assert norm_anthropic(back) == norm_anthropic(payload)


OPENAI_PARTS = st.lists(
    TEXT.map(lambda t: {"type": "text", "text": t})
    | st.sampled_from(["data:image/png;base64,iVBORw0KGgo=", "https://x.test/i.png"]).map(
        lambda u: {"type": "image_url", "image_url": {"url": u}}
    ),
    min_size=1,
    max_size=3,
)


@st.composite
def openai_conversations(draw: st.DrawFn) -> dict[str, Any]:
    msgs: list[dict[str, Any]] = []
    if draw(st.booleans()):
        msgs.append({"role": "system", "content": draw(TEXT)})
    msgs.append({"role": "user", "content": draw(TEXT | OPENAI_PARTS)})
    used: set[str] = set()
    for _ in range(draw(st.integers(0, 3))):
        calls = [i for i in draw(st.lists(IDS, max_size=3, unique=True)) if i not in used]
        used.update(calls)
        text = draw(TEXT) if not calls or draw(st.booleans()) else None
        msg: dict[str, Any] = {"role": "assistant", "content": text}
        if calls:
            msg["tool_calls"] = [
                {
                    "id": i,
                    "type": "function",
                    "function": {"name": draw(TEXT), "arguments": json.dumps(draw(INPUTS))},
                }
                for i in calls
            ]
        msgs.append(msg)
        msgs.extend({"role": "tool", "tool_call_id": i, "content": draw(TEXT)} for i in calls)
        if not calls or draw(st.booleans()):
            msgs.append({"role": "user", "content": draw(TEXT | OPENAI_PARTS)})
    if msgs[-1]["role"] == "assistant":
        msgs.append({"role": "user", "content": "go on"})
    return {"model": "gpt-4o", "messages": msgs, "max_tokens": draw(st.integers(1, 9999))}


def norm_openai(p: dict[str, Any]) -> list[Any]:
    out: list[Any] = []
    for m in p["messages"]:
        content = m.get("content")
        if isinstance(content, list):
            content = _texts(content, "\n\n")
            content = content[0] if len(content) == 1 and isinstance(content[0], str) else content
        calls = [
            (c["id"], c["function"]["name"], json.loads(c["function"]["arguments"]))
            for c in m.get("tool_calls") or ()
        ]
        out.append((m["role"], m.get("tool_call_id"), content or None, calls))
    return out


@settings(max_examples=150, deadline=None)
@given(openai_conversations())
def test_openai_to_anthropic_and_back(payload: dict[str, Any]) -> None:
    there, dropped = translate_request(payload, "openai", "anthropic", model="claude-x")
    check_anthropic(there)
    assert dropped == []
    back, _ = translate_request(there, "anthropic", "openai", model="gpt-4o")
    check_openai(back)
    assert norm_openai(back) == norm_openai(payload)
    assert back["max_tokens"] == payload["max_tokens"]
