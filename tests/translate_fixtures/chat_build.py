"""Build an OpenAI-format fixture from a script of deltas, in one family's shape.

Script steps:
    ("r", text)                      reasoning delta
    ("t", text)                      content delta
    ("tc", k, id, name, args)        first delta of logical tool call k (args None: no key)
    ("a", k, fragment)               argument fragment of call k
    ("tcs", [(k, id, name, args)…])  several calls in one delta
    ("finish", reason[, step])       the finish chunk, optionally carrying a tool step
    ("error", message)               an in-band error chunk (the stream then ends)
    ("comment", text)                an SSE comment line
"""

from __future__ import annotations

import json
from typing import Any, Literal

from translate_fixtures.base import Fixture, Split, Tool, split
from translate_fixtures.chat import FAMILIES, Family, Step

UsageMode = Literal["chunk", "finish", "absent"]
IndexMode = Literal["normal", "missing", "zero"]


class _Calls:
    def __init__(self) -> None:
        self.ids: dict[int, str | None] = {}
        self.names: dict[int, str] = {}
        self.args: dict[int, str] = {}

    def add(self, k: int, call_id: str | None, name: str | None, args: str | None) -> None:
        self.ids.setdefault(k, call_id)
        if name:
            self.names[k] = name
        self.args[k] = self.args.get(k, "") + (args or "")


def _entry(mode: IndexMode, k: int, call_id: str | None, fn: dict[str, Any]) -> dict[str, Any]:
    e: dict[str, Any] = {}
    if mode == "normal":
        e["index"] = k
    elif mode == "zero":
        e["index"] = 0
    if call_id is not None:
        e.update({"id": call_id, "type": "function"})
    e["function"] = fn
    return e


def build(
    name: str,
    family: str,
    script: list[Step],
    *,
    stop: str | None,
    usage: tuple[int, int, int] | None = None,
    usage_mode: UsageMode = "chunk",
    index_mode: IndexMode = "normal",
    end: Literal["done", "cut", "eof"] = "done",
    how: Split = "events",
    expect_usage: dict[str, int] | None = None,
) -> Fixture:
    fam: Family = FAMILIES[family]
    calls = _Calls()
    text, reasoning = [], []
    nulls = usage is not None and usage_mode == "chunk" and family == "openai"
    none: Any = None if nulls else "none"  # OpenAI sends "usage": null until the usage chunk
    events = [*fam.preamble(), fam.chunk(fam.choice(fam.first(), None), none)]
    finish: str | None = None
    fails: Literal["error", "cut"] | None = "cut" if end == "cut" else None

    def delta_of(step: Step) -> dict[str, Any]:
        kind = step[0]
        if kind == "r":
            reasoning.append(step[1])
            return fam.reasoning(step[1])
        if kind == "t":
            text.append(step[1])
            return fam.text(step[1])
        if kind == "a":
            calls.add(step[1], None, None, step[2])
            return {"tool_calls": [_entry(index_mode, step[1], None, {"arguments": step[2]})]}
        entries = []
        for k, call_id, tool, args in [step[1:]] if kind == "tc" else step[1]:
            calls.add(k, call_id, tool, args)
            fn = {"name": tool} | ({} if args is None else {"arguments": args})
            entries.append(_entry(index_mode, k, call_id, fn))
        return {"tool_calls": entries}

    for step in script:
        if step[0] == "comment":
            events.append(b": " + step[1].encode() + b"\n\n")
        elif step[0] == "error":
            events.append(fam.error(step[1]))
            fails = "error"
        elif step[0] == "finish":
            finish = step[1]
            delta = delta_of(step[2]) if len(step) > 2 else {}
            u = fam.usage(*usage) if usage and usage_mode == "finish" else none
            events.append(fam.chunk(fam.choice(delta, finish), u))
        else:
            events.append(fam.chunk(fam.choice(delta_of(step), None), none))
    if usage is not None and usage_mode == "chunk" and fails is None:
        events.append(fam.chunk(None, fam.usage(*usage)))
    if end == "done" and fails is None:
        events.append(b"data: [DONE]\n\n")

    tools = tuple(
        Tool(calls.ids[k], calls.names.get(k, ""), _input(calls.args[k])) for k in sorted(calls.ids)
    )
    body = None
    if fails is None:
        body = _body(fam, "".join(text), "".join(reasoning), calls, finish, usage, usage_mode)
    return Fixture(
        name=f"{family}-{name}",
        api="openai",
        chunks=split(events, how),
        body=body,
        text="".join(text),
        reasoning="".join(reasoning),
        tools=tools,
        stop=stop,
        usage=expect_usage or {},
        fails=fails,
    )


def _input(args: str) -> dict[str, Any]:
    try:
        return json.loads(args) if args.strip() else {}
    except ValueError:
        return {}  # a stream cut mid-arguments: no final input to expect


def _body(
    fam: Family,
    text: str,
    reasoning: str,
    calls: _Calls,
    finish: str | None,
    usage: tuple[int, int, int] | None,
    usage_mode: UsageMode,
) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": text or None}
    if reasoning:
        message[fam.reasoning_field] = reasoning
    if calls.ids:
        message["tool_calls"] = [
            {
                **({"id": calls.ids[k]} if calls.ids[k] is not None else {}),
                "type": "function",
                "function": {"name": calls.names.get(k, ""), "arguments": calls.args[k]},
            }
            for k in sorted(calls.ids)
        ]
    body: dict[str, Any] = {
        "id": fam.id,
        "object": "chat.completion",
        "created": 1731000000,
        "model": fam.model,
        "choices": [{"index": 0, "message": message, "logprobs": None, "finish_reason": finish}],
    }
    if usage is not None and usage_mode != "absent":
        body["usage"] = fam.usage(*usage)
    return body
