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
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from typing import Any

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


def conversation_of(sig: Signals, profile: str) -> Conversation | None:
    """The conversation of a request, or None when it carries nothing to key on."""
    found = _session(sig)
    if found is None:
        prefix = _prefix(sig)
        if prefix is None:
            return None
        found = ("prefix", "p:" + prefix)
    source, raw = found
    agent = sig.agent_id
    scoped = f"{profile}\0{agent or ''}\0{raw}"
    return Conversation(_digest(scoped), source, agent is not None, sig.compaction, cache_ttl(sig))


def cache_ttl(sig: Signals) -> float:
    """1 h when a cache_control of the request asks for it, else 5 min.

    Looked for where clients put breakpoints: the tools, the system blocks and the last few
    messages (the breakpoint that moves with the conversation), not the whole history. A body
    without the string "1h" anywhere asks for no 1 h TTL: no parse needed (JSON writes that
    value as it is, whatever the spacing around it).
    """
    if not sig.mentions(b'"1h"'):
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
    for block in places:
        cc = block.get("cache_control") if isinstance(block, dict) else None
        if isinstance(cc, dict) and cc.get("ttl") == "1h":
            return CACHE_TTL_1H
    return CACHE_TTL


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:32]


def _session(sig: Signals) -> tuple[str, str] | None:
    h = sig.headers
    v = h.get("x-claude-code-session-id", "").strip()
    if v:
        return "header x-claude-code-session-id", "s:" + v
    v = session_from_user_id(_user_id(sig.payload))
    if v:
        return "metadata.user_id", "s:" + v
    for name in ("session-id", "session_id"):
        v = h.get(name, "").strip()
        if v:
            return f"header {name}", "s:" + v
    v = sig.payload.get("prompt_cache_key")
    if isinstance(v, str) and v:
        return "prompt_cache_key", "s:" + v
    return None


def _user_id(payload: dict[str, Any]) -> str | None:
    meta = payload.get("metadata")
    uid = meta.get("user_id") if isinstance(meta, dict) else None
    return uid if isinstance(uid, str) else None


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


def _prefix(sig: Signals) -> str | None:
    """Hash of the system prompt + first user message, without per-request noise."""
    h = hashlib.sha256()
    parts = 0
    p = sig.payload
    for value in (p.get("system"), p.get("instructions")):
        parts += _feed(h, value)
    for msg in sig.messages:
        if not isinstance(msg, dict):
            continue
        role = msg.get("role")
        if role in ("system", "developer"):
            parts += _feed(h, msg.get("content"))
        elif role == "user":
            parts += _feed(h, msg.get("content"))
            break
    if isinstance(sig.payload.get("input"), str):  # Responses API with a bare string input
        parts += _feed(h, p["input"])
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
