"""Request bodies of real size for `make bench`: the shape Claude Code 2.1.197 sends (see
shared DESIGN-NOTES, "What Claude Code sends"), grown by conversation history.

A first turn carries an attribution block and a long system prompt with `cache_control` (one
with `scope: global`), about 30 tool definitions with JSON schemas, and the user's prompt:
about 50 KB. The members come in Claude Code's order (`model` first, `stream` last, as a body
captured from 2.1.197 shows). Later turns add assistant text, tool calls and tool results
(file contents, command output) until the body reaches the size asked for. Deterministic:
the same size gives the same bytes, so (a) and (b) parse the same thing.
"""

from __future__ import annotations

import json
import random
from typing import Any

MODEL = "claude-sonnet-4-5-20250929"
SESSION = "6f1c0a52-9a8e-4d1e-b3a3-2f0c7e9d5b11"
_WORDS = [
    "the",
    "of",
    "and",
    "to",
    "in",
    "is",
    "you",
    "that",
    "it",
    "for",
    "be",
    "on",
    "with",
    "as",
    "this",
    "are",
    "not",
    "your",
    "use",
    "tool",
    "file",
    "when",
    "code",
    "can",
    "must",
    "should",
    "user",
    "task",
    "test",
    "run",
    "make",
    "sure",
    "before",
    "after",
    "each",
    "only",
    "never",
    "always",
    "change",
    "read",
    "write",
    "edit",
    "search",
    "result",
    "output",
    "command",
    "path",
    "line",
    "function",
    "class",
    "module",
    "error",
    "warning",
    "return",
    "value",
    "string",
    "number",
    "list",
    "object",
    "field",
    "name",
    "type",
    "description",
]


def _prose(rng: random.Random, chars: int) -> str:
    out: list[str] = []
    n = 0
    while n < chars:
        sentence = " ".join(rng.choice(_WORDS) for _ in range(rng.randint(6, 18)))
        sentence = sentence[0].upper() + sentence[1:] + ". "
        out.append(sentence)
        n += len(sentence)
    return "".join(out)[:chars]


def _code(rng: random.Random, lines: int) -> str:
    out = []
    for i in range(lines):
        indent = "    " * rng.randint(0, 3)
        name = "_".join(rng.choice(_WORDS) for _ in range(2))
        out.append(f'{i + 1:>6}\t{indent}{name} = compute("{rng.choice(_WORDS)}", {i})')
    return "\n".join(out)


def _tool(rng: random.Random, i: int) -> dict[str, Any]:
    props = {
        f"{rng.choice(_WORDS)}_{k}": {
            "type": rng.choice(["string", "number", "boolean"]),
            "description": _prose(rng, rng.randint(40, 160)),
        }
        for k in range(rng.randint(1, 4))
    }
    return {
        "name": f"Tool{i}",
        "description": _prose(rng, rng.randint(300, 900)),
        "input_schema": {
            "type": "object",
            "properties": props,
            "required": list(props)[:1],
            "additionalProperties": False,
            "$schema": "http://json-schema.org/draft-07/schema#",
        },
    }


def claude_code_body(size: int, *, stream: bool = False, seed: int = 1) -> bytes:
    """A Claude Code-shaped /v1/messages body of about `size` bytes (at least the first turn)."""
    rng = random.Random(seed)
    system = [
        {"type": "text", "text": "x-anthropic-billing-header: cc_version=2.1.197.4e1; "
                                 "cc_entrypoint=cli;"},
        {"type": "text", "text": "You are Claude Code, Anthropic's official CLI for Claude.",
         "cache_control": {"type": "ephemeral", "scope": "global"}},
        {"type": "text", "text": _prose(rng, 10_000), "cache_control": {"type": "ephemeral"}},
    ]  # fmt: skip
    tools = [_tool(rng, i) for i in range(30)]
    messages: list[dict[str, Any]] = [
        {"role": "user", "content": [
            {"type": "text", "text": "<system-reminder>" + _prose(rng, 1500) +
                                     "</system-reminder>"},
            {"type": "text", "text": "fix the failing test in the parser module",
             "cache_control": {"type": "ephemeral"}},
        ]},
    ]  # fmt: skip
    body: dict[str, Any] = {
        "model": MODEL,
        "messages": messages,
        "system": system,
        "tools": tools,
        "metadata": {"user_id": json.dumps({"device_id": f"{rng.getrandbits(256):064x}",
                                            "account_uuid": "", "session_id": SESSION})},
        "max_tokens": 32000,
        "thinking": {"type": "adaptive"},
        "context_management": {"edits": [{"type": "clear_thinking_20251015", "keep": "all"}]},
        "output_config": {"effort": "high"},
        "stream": stream,
    }  # fmt: skip
    turn = 0
    while len(json.dumps(body, separators=(",", ":"))) < size:
        turn += 1
        tool_id = f"toolu_{turn:04d}{rng.getrandbits(64):016x}"
        messages.append({"role": "assistant", "content": [
            {"type": "text", "text": _prose(rng, rng.randint(100, 600))},
            {"type": "tool_use", "id": tool_id, "name": f"Tool{rng.randrange(30)}",
             "input": {"file_path": f"/work/src/{rng.choice(_WORDS)}.py"}},
        ]})  # fmt: skip
        messages.append({"role": "user", "content": [
            {"type": "tool_result", "tool_use_id": tool_id,
             "content": _code(rng, rng.randint(40, 160))},
        ]})  # fmt: skip
    return json.dumps(body, separators=(",", ":")).encode()


if __name__ == "__main__":
    for n in (50_000, 500_000):
        b = claude_code_body(n)
        d = json.loads(b)
        print(n, len(b), len(d["tools"]), len(d["messages"]))
