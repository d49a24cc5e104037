"""A provider's prompt cache, simulated for the fake provider (private helper).

Anthropic: the prompt (tools, system, messages, in that order) is cut into blocks; every block
boundary is a prefix. A request writes the prefixes that end at a `cache_control` breakpoint
and reads the longest prefix, at any block boundary (the real API looks back from each
breakpoint), written earlier by the same conversation and not expired. Usage then reports
`cache_read_input_tokens` for that prefix, `cache_creation_input_tokens` for the rest up to the
last breakpoint, and `input_tokens` for what follows it. A hit slides the entry's TTL: 5 min,
or 1 h for `cache_control: {"ttl": "1h"}`.

OpenAI: automatic. Every message boundary of a prompt of at least 1,024 tokens is written; a
later prompt reads the longest one seen, in 128-token steps, reported as
`prompt_tokens_details.cached_tokens` (chat) or `input_tokens_details.cached_tokens` (responses),
both included in the prompt's total as the real API does.

"The same conversation": the session the client names (x-claude-code-session-id,
session-id, metadata.user_id, prompt_cache_key); requests that name none share one scope.
Tokens are bytes / 4, as the fake provider counts them.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

MIN_TOKENS = 1024
OPENAI_STEP = 128


@dataclass(frozen=True, slots=True)
class Cached:
    """Token split of one request's input, in the API's own terms."""

    input_tokens: int  # anthropic: after the last breakpoint; openai: the whole prompt
    cache_read: int
    cache_write: int


class PromptCache:
    def __init__(
        self,
        ttl: float = 300.0,
        ttl_1h: float = 3600.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.ttl, self.ttl_1h, self.clock = ttl, ttl_1h, clock
        self._entries: dict[tuple[str, str], tuple[float, float]] = {}  # -> (expires, ttl)
        self._lock = threading.Lock()

    def account(self, api: str, req: dict[str, Any], headers: dict[str, str]) -> Cached:
        scope = _scope(req, headers)
        if len(self._entries) > 50_000:
            self._sweep()
        if api == "anthropic":
            return self._anthropic(scope, req)
        return self._openai(scope, req)

    def _sweep(self) -> None:
        now = self.clock()
        with self._lock:
            for k in [k for k, (exp, _) in self._entries.items() if exp <= now]:
                del self._entries[k]

    def _hit(self, scope: str, digest: str, now: float) -> bool:
        entry = self._entries.get((scope, digest))
        if entry is None or entry[0] <= now:
            return False
        self._entries[(scope, digest)] = (now + entry[1], entry[1])  # a hit refreshes the TTL
        return True

    def _anthropic(self, scope: str, req: dict[str, Any]) -> Cached:
        bounds = list(_anthropic_blocks(req))  # (tokens so far, digest, breakpoint ttl or None)
        total = bounds[-1][0] if bounds else 0
        now = self.clock()
        with self._lock:
            read = next(
                (t for t, d, _ in reversed(bounds) if t >= MIN_TOKENS and self._hit(scope, d, now)),
                0,
            )
            last_bp = 0
            for t, d, ttl in bounds:
                if ttl is not None and t >= MIN_TOKENS:
                    last_bp = t
                    life = self.ttl_1h if ttl == "1h" else self.ttl
                    self._entries[(scope, d)] = (now + life, life)
        write = max(0, last_bp - read)
        return Cached(max(0, total - max(last_bp, read)), read, write)

    def _openai(self, scope: str, req: dict[str, Any]) -> Cached:
        bounds = list(_openai_blocks(req))
        total = bounds[-1][0] if bounds else 0
        now = self.clock()
        with self._lock:
            read = next(
                (t for t, d in reversed(bounds) if t >= MIN_TOKENS and self._hit(scope, d, now)),
                0,
            )
            if total >= MIN_TOKENS:
                for _, d in bounds:
                    self._entries.setdefault((scope, d), (now + self.ttl, self.ttl))
        read = read // OPENAI_STEP * OPENAI_STEP
        return Cached(total, read, 0)


def _scope(req: dict[str, Any], headers: dict[str, str]) -> str:
    for name in ("x-claude-code-session-id", "session-id", "session_id"):
        if headers.get(name):
            return headers[name]
    meta = req.get("metadata")
    if isinstance(meta, dict) and isinstance(meta.get("user_id"), str):
        return meta["user_id"]
    key = req.get("prompt_cache_key")
    return key if isinstance(key, str) else ""


class _Chain:
    """Running hash and token count over the blocks of a prompt."""

    def __init__(self) -> None:
        self.h = hashlib.sha256()
        self.tokens = 0

    def add(self, tag: str, block: Any) -> tuple[int, str]:
        if isinstance(block, dict) and "cache_control" in block:
            block = {k: v for k, v in block.items() if k != "cache_control"}
        text = json.dumps(block, sort_keys=True, separators=(",", ":"))
        self.h.update(f"{tag}\0{text}\0".encode())
        self.tokens += max(1, len(text) // 4)
        return self.tokens, self.h.hexdigest()


def _ttl(block: Any) -> str | None:
    cc = block.get("cache_control") if isinstance(block, dict) else None
    if not isinstance(cc, dict):
        return None
    return "1h" if cc.get("ttl") == "1h" else "5m"


def _anthropic_blocks(req: dict[str, Any]) -> Iterator[tuple[int, str, str | None]]:
    chain = _Chain()
    for tool in req.get("tools") or []:
        yield (*chain.add("tool", tool), _ttl(tool))
    system = req.get("system")
    for block in [system] if isinstance(system, str) else system or []:
        yield (*chain.add("system", block), _ttl(block))
    for msg in req.get("messages") or []:
        if not isinstance(msg, dict):
            continue
        content = msg.get("content")
        role = str(msg.get("role"))
        for block in [content] if isinstance(content, str) else content or []:
            yield (*chain.add(role, block), _ttl(block))


def _openai_blocks(req: dict[str, Any]) -> Iterator[tuple[int, str]]:
    chain = _Chain()
    head = {k: req.get(k) for k in ("tools", "instructions") if req.get(k)}
    if head:
        yield chain.add("head", head)
    items = req.get("messages")
    if items is None:
        items = req.get("input")
    for item in [items] if isinstance(items, str) else items or []:
        yield chain.add("item", item)
