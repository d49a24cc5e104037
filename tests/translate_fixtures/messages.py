"""Anthropic Messages fixtures, in the documented event shapes: `message_start` with the input
and cache usage, `ping`, thinking with a `signature_delta`, tool_use whose first
`input_json_delta` is empty, `message_delta` with the output usage, in-band `overloaded_error`.
"""

from __future__ import annotations

import json
from typing import Any

from translate_fixtures.base import Fixture, Split, Tool, split

Step = tuple[Any, ...]
MODEL = "claude-sonnet-4-5-20250929"
SIG = "EqQBCgIYAhIMxR3zAbqf2V5kLmNoGgwE0a1b2c3d4e5f6g7h8i9j0kAb=="


def _ev(name: str, obj: dict[str, Any]) -> bytes:
    return (
        f"event: {name}\ndata: ".encode() + json.dumps(obj, ensure_ascii=False).encode() + b"\n\n"
    )


def _usage(inp: int, out: int, read: int, write: int) -> dict[str, Any]:
    return {
        "input_tokens": inp,
        "cache_creation_input_tokens": write,
        "cache_read_input_tokens": read,
        "output_tokens": out,
        "service_tier": "standard",
    }


def build(
    name: str,
    script: list[Step],
    *,
    stop: str | None,
    client_stop: str | None,
    usage: tuple[int, int, int, int],
    end: str = "stop",
    how: Split = "events",
    full_delta_usage: bool = False,
) -> Fixture:
    """usage: (input, output, cache read, cache write) as Anthropic reports them."""
    msg_id = f"msg_01{name.replace('-', '')[:16]}"
    start = {
        "id": msg_id,
        "type": "message",
        "role": "assistant",
        "model": MODEL,
        "content": [],
        "stop_reason": None,
        "stop_sequence": None,
        "usage": _usage(usage[0], 1, usage[2], usage[3]),
    }
    events = [_ev("message_start", {"type": "message_start", "message": start})]
    content: list[dict[str, Any]] = []
    tools: list[Tool] = []
    text, thinking = [], []
    fails = None
    for step in script:
        kind = step[0]
        if kind == "ping":
            events.append(_ev("ping", {"type": "ping"}))
            continue
        if kind == "error":
            err = {"type": "error", "error": {"type": step[1], "message": step[2]}}
            events.append(_ev("error", err))
            fails = "error"
            break
        i = len(content)
        if kind == "text":
            block: dict[str, Any] = {"type": "text", "text": ""}
            deltas = [{"type": "text_delta", "text": t} for t in step[1]]
            content.append({"type": "text", "text": "".join(step[1])})
            text.append("".join(step[1]))
        elif kind == "thinking":
            block = {"type": "thinking", "thinking": "", "signature": ""}
            deltas = [{"type": "thinking_delta", "thinking": t} for t in step[1]]
            deltas.append({"type": "signature_delta", "signature": SIG})
            content.append({"type": "thinking", "thinking": "".join(step[1]), "signature": SIG})
            thinking.append("".join(step[1]))
        else:  # ("tool", id, name, fragments)
            block = {"type": "tool_use", "id": step[1], "name": step[2], "input": {}}
            deltas = [{"type": "input_json_delta", "partial_json": p} for p in ["", *step[3]]]
            raw = "".join(step[3])
            value = json.loads(raw) if raw else {}
            content.append({"type": "tool_use", "id": step[1], "name": step[2], "input": value})
            tools.append(Tool(step[1], step[2], value))
        events.append(
            _ev(
                "content_block_start",
                {"type": "content_block_start", "index": i, "content_block": block},
            )
        )
        for d in deltas:
            events.append(
                _ev("content_block_delta", {"type": "content_block_delta", "index": i, "delta": d})
            )
        events.append(_ev("content_block_stop", {"type": "content_block_stop", "index": i}))
    final = _usage(*usage[:2], *usage[2:]) if full_delta_usage else {"output_tokens": usage[1]}
    if fails is None and end in ("stop", "delta"):
        delta = {"stop_reason": stop, "stop_sequence": None}
        events.append(
            _ev("message_delta", {"type": "message_delta", "delta": delta, "usage": final})
        )
    if fails is None and end == "stop":
        events.append(_ev("message_stop", {"type": "message_stop"}))
    else:
        fails = fails or "cut"
    body = None
    if fails is None:
        body = {
            **start,
            "content": content,
            "stop_reason": stop,
            "usage": _usage(usage[0], usage[1], usage[2], usage[3]),
        }
    inp, out, read, write = usage
    expect = {"prompt_tokens": inp + read + write, "completion_tokens": out, "cached_tokens": read}
    return Fixture(
        name=f"anthropic-{name}",
        api="anthropic",
        chunks=split(events, how),
        body=body,
        text="".join(text),
        reasoning="".join(thinking),
        tools=tuple(tools),
        stop=client_stop,
        usage=expect,
        fails=fails,
    )


PARIS = ['{"city": "', 'Paris"}']

MESSAGES_FIXTURES: list[Fixture] = [
    build(
        "text",
        [("text", ["Hello", ", wörld 👋"]), ("ping",)],
        stop="end_turn",
        client_stop="stop",
        usage=(25, 15, 0, 0),
    ),
    build(
        "cached",
        [("text", ["From the cache."])],
        stop="end_turn",
        client_stop="stop",
        usage=(12, 5, 4000, 300),
        full_delta_usage=True,
    ),
    build(
        "thinking-text-tool",
        [
            ("thinking", ["Weather needs", " a tool."]),
            ("text", ["Checking."]),
            ("tool", "toolu_01A09q90qw90lq917835lq9", "get_weather", PARIS),
        ],
        stop="tool_use",
        client_stop="tool_calls",
        usage=(400, 90, 0, 0),
        how="pairs",
    ),
    build(
        "parallel-tools",
        [
            ("tool", "toolu_01Aa", "get_weather", PARIS),
            ("tool", "toolu_01Bb", "get_time", ['{"tz":', ' "Europe/Paris"}']),
        ],
        stop="tool_use",
        client_stop="tool_calls",
        usage=(300, 60, 0, 0),
    ),
    build(
        "empty-arguments",
        [("tool", "toolu_01Ee", "list_files", [])],
        stop="tool_use",
        client_stop="tool_calls",
        usage=(50, 10, 0, 0),
    ),
    build(
        "max-tokens",
        [("text", ["A long answer that"])],
        stop="max_tokens",
        client_stop="length",
        usage=(10, 4, 0, 0),
    ),
    build(
        "refusal",
        [("text", ["I can't help with that."])],
        stop="refusal",
        client_stop="content_filter",
        usage=(30, 8, 0, 0),
    ),
    build(
        "split-utf8",
        [("text", ["naïve ", "日本語", " 🎉"])],
        stop="end_turn",
        client_stop="stop",
        usage=(9, 6, 0, 0),
        how=5,
    ),
    build(
        "mid-stream-error",
        [("text", ["Part"]), ("error", "overloaded_error", "Overloaded")],
        stop=None,
        client_stop=None,
        usage=(9, 6, 0, 0),
    ),
    build(
        "cut",
        [("text", ["Partial ans"])],
        stop=None,
        client_stop=None,
        usage=(9, 6, 0, 0),
        end="cut",
    ),
    build(
        "cut-after-delta",
        [("text", ["Whole answer"])],
        stop="end_turn",
        client_stop=None,
        usage=(9, 6, 0, 0),
        end="delta",
    ),
]
