"""Request bodies in the shape real clients send, for route, key and estimate tests.

`main_loop` follows Claude Code 2.1.197's main-loop call as captured on loopback (headers,
`metadata.user_id` JSON string, attribution block as system[0], cache_control blocks, about 30
tools, `thinking: adaptive` + `output_config.effort: high`, `{"role": "system"}` messages
mid-conversation, tool loops with thinking signatures). Its text is not Claude Code's: prose
and code come from this repository, so that byte/token ratios stay realistic without shipping
anyone's prompt. `codex_turn` follows Codex CLI 0.171.0's Responses call the same way.
"""

from __future__ import annotations

import base64
import hashlib
import json
import random
from functools import cache
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
SESSION = "d1f3fad2-2306-4e8e-a6ba-4b737431ad3c"
DEVICE = hashlib.sha256(b"device").hexdigest()
AGENT = "a8460801810a55966"
ATTRIBUTION = "x-anthropic-billing-header: cc_version=2.1.197.1c0; cc_entrypoint=cli;"
EPHEMERAL = {"type": "ephemeral"}


@cache
def _prose() -> list[str]:
    text = (REPO / "README.md").read_text() + (REPO / "docs" / "BENCHMARKS.md").read_text()
    return [p.strip() for p in text.split("\n\n") if len(p.strip()) > 80]


@cache
def _code() -> list[tuple[str, str]]:
    files = sorted((REPO / "addon" / "llmrouter").rglob("*.py"))
    return [(str(f.relative_to(REPO)), f.read_text()) for f in files if f.stat().st_size > 2000]


def _paragraphs(rng: random.Random, n: int) -> str:
    prose = _prose()
    return "\n\n".join(rng.choice(prose) for _ in range(n))


def _tool(rng: random.Random, i: int) -> dict[str, Any]:
    props = {
        f"arg_{j}": {
            "description": _paragraphs(rng, 1)[:200],
            "type": rng.choice(["string", "integer", "boolean"]),
        }
        for j in range(rng.randint(1, 4))
    }
    return {
        "name": f"Tool{i}",
        "description": _paragraphs(rng, 2)[:1200],
        "input_schema": {
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "type": "object",
            "properties": props,
            "required": list(props)[:1],
            "additionalProperties": False,
        },
    }


def user_id_json(session: str = SESSION) -> str:
    return json.dumps(
        {"device_id": DEVICE, "account_uuid": "", "session_id": session}, separators=(",", ":")
    )


def user_id_legacy(session: str = SESSION) -> str:
    return f"user_{DEVICE}_account_4f2c1a9e-0000-4000-8000-1234567890ab_session_{session}"


def headers(session: str = SESSION, **extra: str) -> list[tuple[str, str]]:
    h = [
        ("Accept", "application/json"),
        ("Content-Type", "application/json"),
        ("User-Agent", "claude-cli/2.1.197 (external, cli)"),
        ("X-Claude-Code-Session-Id", session),
        ("X-Stainless-Lang", "js"),
        (
            "anthropic-beta",
            "claude-code-20250219,interleaved-thinking-2025-05-14,effort-2025-11-24",
        ),
        ("anthropic-version", "2023-06-01"),
        ("x-api-key", "sk-ant-test"),
        ("x-app", "cli"),
    ]
    return h + list(extra.items())


def png(size: int = 20_000) -> dict[str, Any]:
    data = base64.b64encode(random.Random(size).randbytes(size)).decode()
    return {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": data}}


def _assistant(rng: random.Random, n: int) -> dict[str, Any]:
    path, _ = rng.choice(_code())
    sig = base64.b64encode(rng.randbytes(rng.randint(200, 600))).decode()
    return {
        "role": "assistant",
        "content": [
            {"type": "thinking", "thinking": _paragraphs(rng, 1)[:400], "signature": sig},
            {"type": "text", "text": _paragraphs(rng, 1)[:300]},
            {
                "type": "tool_use",
                "id": f"toolu_{n:04d}",
                "name": "Read",
                "input": {"file_path": f"/work/{path}"},
            },
        ],
    }


def _result(rng: random.Random, n: int, image: bool) -> dict[str, Any]:
    _, code = rng.choice(_code())
    lines = code.splitlines()[: rng.randint(40, 160)]
    text = "\n".join(f"{i + 1:>6}\t{line}" for i, line in enumerate(lines))
    content: list[Any] = [{"type": "text", "text": text}]
    if image:
        content.append(png())
    return {
        "role": "user",
        "content": [{"type": "tool_result", "tool_use_id": f"toolu_{n:04d}", "content": content}],
    }


def main_loop(
    turns: int = 0,
    *,
    session: str = SESSION,
    model: str = "claude-opus-4-8",
    tools: int = 30,
    image_turns: tuple[int, ...] = (),
    prompt: str = "say hello",
    attribution: str = ATTRIBUTION,
    user_id: str | None = None,
    ttl: str | None = None,
    seed: int = 0,
) -> dict[str, Any]:
    """A Claude Code main-loop body after `turns` tool round trips. `image_turns`: which
    turns (0 = the first prompt, 1..turns = tool results) carry an image."""
    rng = random.Random(seed)
    cc: dict[str, Any] = dict(EPHEMERAL) | ({"ttl": ttl} if ttl else {})
    # The session's fixed part first, so that a later turn of one seed extends an earlier one.
    system_prompt = _paragraphs(rng, 12)[:5700]
    tool_defs = [_tool(rng, i) for i in range(tools)]
    first: list[Any] = [
        {"type": "text", "text": "<system-reminder>\nAs you answer the user's questions, you "
         "can use the following context:\n# currentDate\nToday's date is 2026-11-26.\n"
         "</system-reminder>\n"},
        {"type": "text", "text": prompt},
    ]  # fmt: skip
    if 0 in image_turns:
        first.insert(1, png())
    messages: list[dict[str, Any]] = [
        {"role": "user", "content": first},
        {"role": "system", "content": "Available agent types:\n" + _paragraphs(rng, 8)[:6000]},
    ]
    for n in range(1, turns + 1):
        messages.append(_assistant(rng, n))
        messages.append(_result(rng, n, n in image_turns))
        if n % 7 == 0:
            messages.append({"role": "system", "content": _paragraphs(rng, 1)[:500]})
    last_user = next(m for m in reversed(messages) if m["role"] == "user")
    last_user["content"][-1]["cache_control"] = cc
    return {
        "model": model,
        "messages": messages,
        "system": [
            {"type": "text", "text": attribution},
            {
                "type": "text",
                "text": "You are a Claude agent, built on Anthropic's Claude Agent SDK.",
                "cache_control": cc,
            },
            {
                "type": "text",
                "text": system_prompt,
                "cache_control": cc | {"scope": "global"},
            },
        ],
        "tools": tool_defs,
        "metadata": {"user_id": user_id if user_id is not None else user_id_json(session)},
        "max_tokens": 64000,
        "thinking": {"type": "adaptive"},
        "context_management": {"edits": [{"type": "clear_thinking_20251015", "keep": "all"}]},
        "output_config": {"effort": "high"},
        "stream": True,
    }


def haiku_side_call(session: str = SESSION) -> dict[str, Any]:
    """A small side call (title, summary): haiku model, short system, no tools."""
    return {
        "model": "claude-haiku-4-5-20251001",
        "max_tokens": 512,
        "system": [
            {"type": "text", "text": ATTRIBUTION},
            {"type": "text", "text": "Summarize this coding conversation in under 50 characters."},
        ],
        "messages": [{"role": "user", "content": "say hello"}],
        "metadata": {"user_id": user_id_json(session)},
        "stream": True,
    }


def web_search_call(session: str = SESSION) -> dict[str, Any]:
    """Claude Code's WebSearch tool: a separate call with the server tool, as captured."""
    return {
        "model": "claude-opus-4-8",
        "max_tokens": 32000,
        "system": [
            {"type": "text", "text": ATTRIBUTION},
            {"type": "text", "text": "You are an assistant for performing a web search tool use"},
        ],
        "messages": [{"role": "user", "content": "Perform a web search for the query: mitmproxy"}],
        "tools": [{"type": "web_search_20250305", "name": "web_search", "max_uses": 8}],
        "thinking": {"type": "disabled"},
        "metadata": {"user_id": user_id_json(session)},
        "stream": True,
    }


def codex_headers(session: str = "01a2183b-4b71-7e01-b19e-7012086487ac", thread: str | None = None,
                  **extra: str) -> list[tuple[str, str]]:  # fmt: skip
    return [
        ("session-id", session),
        ("thread-id", thread or session),
        ("x-client-request-id", session),
        ("x-codex-window-id", f"{session}:0"),
        ("originator", "codex_exec"),
        ("User-Agent", "codex_exec/0.171.0 (Debian 12.0.0; x86_64) xterm (codex_exec; 0.171.0)"),
        ("Authorization", "Bearer sk-test"),
        *extra.items(),
    ]


def codex_turn(session: str = "01a2183b-4b71-7e01-b19e-7012086487ac", effort: str | None = None,
               prompt: str = "say hi") -> dict[str, Any]:  # fmt: skip
    rng = random.Random(1)
    body: dict[str, Any] = {
        "model": "gpt-5.1-codex",
        "stream": True,
        "input": [
            {
                "type": "message",
                "role": "developer",
                "content": [{"type": "input_text", "text": _paragraphs(rng, 10)}],
            },
            {
                "type": "message",
                "role": "user",
                "content": [
                    {
                        "type": "input_text",
                        "text": "<environment_context>\n  <cwd>/work</cwd>\n</environment_context>",
                    }
                ],
            },
            {
                "type": "message",
                "role": "user",
                "content": [{"type": "input_text", "text": prompt}],
            },
        ],
        "tools": [
            {
                "type": "function",
                "name": "exec_command",
                "description": _paragraphs(rng, 2),
                "strict": False,
                "parameters": {"type": "object", "properties": {}},
            },
            {"type": "web_search", "external_web_access": False},
        ],
        "tool_choice": "auto",
        "parallel_tool_calls": True,
        "reasoning": {"summary": "auto"},
        "store": False,
        "include": ["reasoning.encrypted_content"],
        "prompt_cache_key": session,
    }
    if effort:
        body["reasoning"]["effort"] = effort
    return body


def encode(body: dict[str, Any]) -> bytes:
    """Compact JSON, as Claude Code (JSON.stringify) sends it."""
    return json.dumps(body, separators=(",", ":")).encode()
