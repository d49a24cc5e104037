"""Thinking blocks that Anthropic did not sign never reach Anthropic.

A thinking block that this router built from an OpenAI-format provider's reasoning has an
empty signature; Claude Code keeps it in the conversation and sends it back. Anthropic verifies
signatures and rejects the WHOLE request when one is invalid, so such blocks are removed on the
way to any Anthropic-format provider, translated or not. Anthropic also requires, with thinking
on, that the last assistant message of a tool loop start with a thinking block; when removing
an unsigned block breaks that, thinking is turned off for this one request.
"""

from __future__ import annotations

from typing import Any

from llmrouter.wire.translate.common import JSONObj

_THINKING = ("thinking", "redacted_thinking")


def signed(block: Any) -> bool:
    """A thinking block that Anthropic can verify: a non-empty signature (or redacted data)."""
    if not isinstance(block, dict):
        return False
    if block.get("type") == "redacted_thinking":
        return bool(block.get("data"))
    sig = block.get("signature")
    return isinstance(sig, str) and bool(sig.strip())


def _last_assistant(messages: list[Any]) -> int | None:
    for i in range(len(messages) - 1, -1, -1):
        m = messages[i]
        if isinstance(m, dict) and m.get("role") == "assistant":
            return i
    return None


def needs_leading_thinking(messages: list[Any]) -> bool:
    """True when the last assistant message holds tool_use but does not start with thinking:
    Anthropic rejects that while thinking is on."""
    i = _last_assistant(messages)
    if i is None:
        return False
    content = messages[i].get("content")
    if not isinstance(content, list) or not content:
        return False
    has_tool = any(isinstance(b, dict) and b.get("type") == "tool_use" for b in content)
    first = content[0]
    return has_tool and not (isinstance(first, dict) and first.get("type") in _THINKING)


def scrub_unsigned(payload: JSONObj) -> tuple[JSONObj, list[str]]:
    """Drop unsigned thinking blocks from an Anthropic request. Returns (payload, dropped).

    The payload is copied only where it changes, so the common case (nothing to drop) costs a
    scan and no allocation.
    """
    messages = payload.get("messages")
    if not isinstance(messages, list):
        return payload, []
    out: list[Any] | None = None
    dropped = 0
    for i, m in enumerate(messages):
        content = m.get("content") if isinstance(m, dict) else None
        if m is None or not isinstance(content, list) or m.get("role") != "assistant":
            continue
        keep = [b for b in content if not _unsigned_thinking(b)]
        if len(keep) == len(content):
            continue
        if out is None:
            out = list(messages)
        dropped += len(content) - len(keep)
        # A message left empty would be rejected: it goes (Anthropic merges the user turns).
        out[i] = {**m, "content": keep} if keep else None
    if out is None:
        return payload, []
    out = [m for m in out if m is not None]
    new = {**payload, "messages": out}
    names = [f"thinking blocks without an Anthropic signature ({dropped})"]
    thinking = payload.get("thinking")
    on = isinstance(thinking, dict) and thinking.get("type") not in (None, "disabled")
    if on and needs_leading_thinking(out):
        del new["thinking"]
        names.append("thinking (the tool loop's signed thinking is gone)")
    return new, names


def _unsigned_thinking(block: Any) -> bool:
    return isinstance(block, dict) and block.get("type") in _THINKING and not signed(block)
