"""The conversation a request belongs to: a hashed key, for affinity and the usage history.

The first signal present wins:
  1. the `x-claude-code-session-id` header;
  2. the `session_id` in `metadata.user_id`: a JSON string (Claude Code 2.x,
     `{"device_id":…,"account_uuid":…,"session_id":…}`) or, in older versions,
     `user_<hash>_account_<uuid>_session_<uuid>`;
  3. Codex CLI's `session-id` header (0.171.0, captured on loopback; older releases sent
     `session_id`);
  4. OpenAI's `prompt_cache_key`;
  5. a hash of the system prompt and the first user message, without Claude Code's
     `x-anthropic-billing-header` block (its cc_version suffix changes per request) and without
     `<system-reminder>` blocks (they carry the date and other per-turn context).
Signals 1-4 name the same session id for one Claude Code or Codex session, so they give the same
key whichever of them a request happens to carry.

The key is scoped by profile and, for a subagent, by its agent id (`base`), and by route
(`key`): a subagent's or another route's prompt is another cache. Only a hash is kept: the raw
session id is never stored or logged.

Signals 2, 4 and 5 are in the body. When nothing else parses it, only the members they need are
decoded (`_Head`): the history is delimited, not built, and decoded up to the first user
message, about half a full parse of a 500 KB body.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import msgspec

from llmrouter.routing.signals import ATTRIBUTION_PREFIX, Signals

CACHE_TTL = 300.0  # Anthropic's default prompt cache; OpenAI clears after 5-10 min idle
CACHE_TTL_1H = 3600.0  # cache_control {"ttl": "1h"}
_TTL_TAIL = 3  # messages from the end whose blocks may carry the moving breakpoint
_REMINDER = re.compile(r"<system-reminder>.*?</system-reminder>\s*", re.DOTALL)
_LEGACY_SESSION = re.compile(r"_session_([0-9A-Za-z-]+)$")


@dataclass(frozen=True, slots=True)
class Conversation:
    base: str  # hex hash: profile + agent + signal; the same on every route (usage history)
    source: str  # which signal gave it, for explain: "header x-claude-code-session-id", ...
    subagent: bool  # scoped by an agent id
    compaction: bool  # the client says it is compacting: its cache is cold anyway
    ttl: float  # the cache TTL the request asks for (s): a binding's default lifetime

    def key(self, route: str | None) -> str:
        """The affinity key on `route` (None: the profile's own pool)."""
        return self.base if route is None else _digest(f"{self.base}\0{route}")

    def __str__(self) -> str:
        return self.base[:12]


class _Head(msgspec.Struct):
    """The body's members that name a conversation; every other member is skipped unbuilt."""

    metadata: Any = None
    prompt_cache_key: Any = None
    system: Any = None
    instructions: Any = None
    tools: msgspec.Raw = msgspec.Raw()
    messages: msgspec.Raw = msgspec.Raw()
    input: msgspec.Raw = msgspec.Raw()


_HEAD = msgspec.json.Decoder(_Head)
_ITEMS = msgspec.json.Decoder(list[msgspec.Raw])


@dataclass(frozen=True, slots=True)
class _Fields:
    """What the conversation key reads of a body, from a full parse or from `_Head`."""

    metadata: Any
    prompt_cache_key: Any
    system: Any
    instructions: Any
    input: Any  # only a bare string counts (Responses API)
    lead: list[Any]  # the messages up to and including the first user message
    hint: bool | None = None  # whether a 1 h cache TTL may be asked (None: not looked at)


def conversation_of(sig: Signals, profile: str) -> Conversation | None:
    """The conversation of a request, or None when it carries nothing to key on."""
    found, f = _session(sig)
    if found is None:
        f = f or _fields(sig)
        prefix = _prefix(f)
        if prefix is None:
            return None
        found = ("prefix", "p:" + prefix)
    source, raw = found
    agent = sig.agent_id
    scoped = f"{profile}\0{agent or ''}\0{raw}"
    ttl = cache_ttl(sig, f.hint if f is not None else None)
    return Conversation(_digest(scoped), source, agent is not None, sig.compaction, ttl)


def cache_ttl(sig: Signals, hint: bool | None = None) -> float:
    """1 h when a cache_control of the request asks for it, else 5 min.

    Looked for where clients put breakpoints: the tools, the system blocks and the last few
    messages (the breakpoint that moves with the conversation), not the whole history. A body
    without the string "1h" anywhere asks for no 1 h TTL: no parse needed (JSON writes that
    value as it is, whatever the spacing around it). `hint` False: the places were looked at
    already and none has it.
    """
    if hint is False or (hint is None and not sig.mentions(b'"1h"')):
        return CACHE_TTL
    p = sig.payload
    places: list[Any] = []
    for key in ("tools", "system"):
        v = p.get(key)
        if isinstance(v, list):
            places.extend(v)
    for msg in sig.messages[-_TTL_TAIL:]:
        content = msg.get("content") if isinstance(msg, dict) else None
        if isinstance(content, list):
            places.extend(content)
    return CACHE_TTL_1H if any(_asks_1h(b) for b in places) else CACHE_TTL


def _asks_1h(block: Any) -> bool:
    cc = block.get("cache_control") if isinstance(block, dict) else None
    return isinstance(cc, dict) and cc.get("ttl") == "1h"


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:32]


def _session(sig: Signals) -> tuple[tuple[str, str] | None, _Fields | None]:
    """Signals 1-4 in their order, and the body's fields when they were read."""
    h = sig.headers
    v = h.get("x-claude-code-session-id", "").strip()
    if v:
        return ("header x-claude-code-session-id", "s:" + v), None
    codex = next(((n, v) for n in ("session-id", "session_id") if (v := h.get(n, "").strip())),
                 None)  # fmt: skip
    f = None
    # metadata.user_id comes before Codex's header; a body without the word has none (Codex's
    # requests are not decoded for it).
    if codex is None or sig.mentions(b'"user_id"'):
        f = _fields(sig)
        meta = f.metadata
        uid = meta.get("user_id") if isinstance(meta, dict) else None
        v = session_from_user_id(uid if isinstance(uid, str) else None)
        if v:
            return ("metadata.user_id", "s:" + v), f
    if codex is not None:
        return (f"header {codex[0]}", "s:" + codex[1]), f
    f = f or _fields(sig)
    v = f.prompt_cache_key
    if isinstance(v, str) and v:
        return ("prompt_cache_key", "s:" + v), f
    return None, f


def _fields(sig: Signals) -> _Fields:
    if not sig.parsed:
        try:
            return _lite(sig.body)
        except (msgspec.DecodeError, msgspec.ValidationError):
            pass  # not an object, a lone surrogate...: the full parse says what it holds
    p = sig.payload
    text = p.get("input")
    return _Fields(p.get("metadata"), p.get("prompt_cache_key"), p.get("system"),
                   p.get("instructions"), text, _lead(sig.messages))  # fmt: skip


def _lite(body: bytes) -> _Fields:
    h = _HEAD.decode(body)
    items: list[Any] = []
    raw = h.messages if _kind(h.messages) not in (b"", b"n") else h.input  # absent or null
    if _kind(raw) == b"[":
        items = _ITEMS.decode(raw)
    text = msgspec.json.decode(h.input) if _kind(h.input) == b'"' else None
    # Where breakpoints sit (see cache_ttl), without "1h": no 1 h TTL, and no full parse.
    hint = any(b'"1h"' in bytes(r) for r in (h.tools, *items[-_TTL_TAIL:]))
    hint = hint or any(_asks_1h(b) for b in (h.system if isinstance(h.system, list) else ()))
    return _Fields(h.metadata, h.prompt_cache_key, h.system, h.instructions, text,
                   _lead(msgspec.json.decode(x) for x in items), hint)  # fmt: skip


def _kind(raw: msgspec.Raw) -> bytes:
    """A raw member's first byte: b"[" a list, b'"' a string, b"n" null, b"" absent."""
    return bytes(memoryview(raw)[:1])


def _lead(messages: Iterable[Any]) -> list[Any]:
    out = []
    for msg in messages:
        out.append(msg)
        if isinstance(msg, dict) and msg.get("role") == "user":
            break
    return out


def session_from_user_id(user_id: str | None) -> str | None:
    """`session_id` from either of Claude Code's `metadata.user_id` formats."""
    if not user_id:
        return None
    if user_id.startswith("{"):
        try:
            obj = json.loads(user_id)
        except ValueError:
            return None
        sid = obj.get("session_id") if isinstance(obj, dict) else None
        return sid if isinstance(sid, str) and sid else None
    m = _LEGACY_SESSION.search(user_id)
    return m.group(1) if m else None


def _prefix(f: _Fields) -> str | None:
    """Hash of the system prompt + first user message, without per-request noise."""
    h = hashlib.sha256()
    parts = 0
    for value in (f.system, f.instructions):
        parts += _feed(h, value)
    for msg in f.lead:
        if not isinstance(msg, dict):
            continue
        role = msg.get("role")
        if role in ("system", "developer", "user"):
            parts += _feed(h, msg.get("content"))
    if isinstance(f.input, str):  # Responses API with a bare string input
        parts += _feed(h, f.input)
    return h.hexdigest()[:32] if parts else None


def _feed(h: Any, value: Any) -> int:
    """Feed the stable text of a system value or message content; count what was fed.

    Only text and media data: cache_control moves to the latest block every turn, so block
    metadata must not change the key.
    """
    if isinstance(value, str):
        text = _clean(value)
        if text:
            h.update(text.encode("utf-8", "surrogatepass") + b"\0")
            return 1
        return 0
    if not isinstance(value, list):
        return 0
    n = 0
    for block in value:
        if not isinstance(block, dict):
            continue
        text = block.get("text")
        if isinstance(text, str):
            if text.startswith(ATTRIBUTION_PREFIX):
                continue
            n += _feed(h, text)
        elif "source" in block or "image_url" in block:
            media = json.dumps(block.get("source", block.get("image_url")), sort_keys=True)
            h.update(media.encode() + b"\0")
            n += 1
    return n


def _clean(text: str) -> str:
    if "<system-reminder>" in text:
        text = _REMINDER.sub("", text)
    return text.strip()
