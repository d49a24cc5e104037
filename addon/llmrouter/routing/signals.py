"""What a request says about itself: the client's headers and body markers, read once.

Route detection (`routes`), the conversation key (`conversation`) and the token estimate
(`estimate`) all read these facts; `Signals.of` builds them from plain data the router already
has (the path, the headers, the raw body and, when anything asks for it, the parsed JSON). The
body is parsed at most once and only when a fact needs it: a Claude Code request names its
conversation in a header, so a profile without routes routes it without a parse.

Claude Code 2.1.197 (captured on loopback) sends `X-Claude-Code-Session-Id`, a
`metadata.user_id` JSON string with the same `session_id`, an attribution block
`x-anthropic-billing-header: cc_version=…; cc_entrypoint=…;` as `system[0]`, and for a subagent
an `x-claude-code-agent-id` header plus `cc_is_subagent=true` in that block. Newer versions add
`x-claude-code-request-class` and `x-claude-code-compaction`. Codex CLI 0.171.0 sends
`session-id` and `thread-id` headers (a subagent: its own `thread-id`,
`x-codex-parent-thread-id` and `x-openai-subagent`) and `prompt_cache_key` in the body. Every
signal is optional: a client release that drops one must still route by the others.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

ATTRIBUTION_PREFIX = "x-anthropic-billing-header:"
# Codex labels its non-user threads with x-openai-subagent; these two are not subagents.
_CODEX_COMPACT = "compact"
_CODEX_BACKGROUND = frozenset(("memory_consolidation",))


Payload = dict[str, Any] | None


@dataclass(slots=True)
class Signals:
    """One request's routing facts. Plain data; the JSON body is parsed on first use."""

    path: str  # without the query string
    headers: dict[str, str]  # lowercase names; repeated headers joined with ", "
    _source: Payload | Callable[[], Payload]  # the parsed body, or how to parse it
    body: bytes  # raw: its length, and a substring test (`mentions`)
    api: str  # "anthropic" | "openai"
    model: str | None = None  # read with the body's head, without a parse
    # Memo of the first walk over every message's blocks (estimate or has_image): any media?
    has_media: bool | None = None
    _payload: dict[str, Any] | None = field(default=None, repr=False)

    @classmethod
    def of(
        cls,
        path: str,
        headers: Iterable[tuple[str, str]],
        payload: Payload | Callable[[], Payload],
        body: bytes,
        api: str,
        model: str | None = None,
    ) -> Signals:
        hdrs: dict[str, str] = {}
        for k, v in headers:
            k = k.lower()
            hdrs[k] = f"{hdrs[k]}, {v}" if k in hdrs else v
        if model is None and isinstance(payload, dict):
            m = payload.get("model")
            model = m if isinstance(m, str) else None
        return cls(path.split("?", 1)[0], hdrs, payload, body, api, model)

    # -- body ------------------------------------------------------------------------------

    @property
    def payload(self) -> dict[str, Any]:
        """The JSON body as an object ({} when it is none), parsed once, when first asked."""
        if self._payload is None:
            src = self._source() if callable(self._source) else self._source
            self._payload = src if isinstance(src, dict) else {}
        return self._payload

    @property
    def parsed(self) -> bool:
        """Whether the JSON body is at hand already (asking `payload` costs nothing more)."""
        return self._payload is not None or not callable(self._source)

    def mentions(self, needle: bytes) -> bool:
        """Whether the raw body contains `needle`: a memchr-speed test that lets a caller skip
        the parse when the answer is no."""
        return needle in self.body

    @property
    def messages(self) -> list[Any]:
        """Anthropic / chat `messages`, or the Responses API's `input` items."""
        m = self.payload.get("messages")
        if m is None:
            m = self.payload.get("input")
        return m if isinstance(m, list) else []

    @property
    def attribution(self) -> str | None:
        """Claude Code's attribution block: `system[0]` text starting with the billing header."""
        system = self.payload.get("system")
        if isinstance(system, list) and system and isinstance(system[0], dict):
            text = system[0].get("text")
            if isinstance(text, str) and text.startswith(ATTRIBUTION_PREFIX):
                return text
        return None

    # -- headers ---------------------------------------------------------------------------

    @property
    def request_class(self) -> str | None:
        """x-claude-code-request-class: main | subagent | workflow | compaction | auxiliary."""
        v = self.headers.get("x-claude-code-request-class")
        return v.strip().lower() if v else None

    @property
    def codex_subagent(self) -> str | None:
        v = self.headers.get("x-openai-subagent")
        v = v.strip().lower() if v else ""
        return v if v and v not in ("false", "0") else None

    @property
    def agent_id(self) -> str | None:
        """The id of the subagent thread this request belongs to, when it says so.

        Claude Code: `x-claude-code-agent-id`. Codex: the `thread-id` of a child thread (one
        that differs from `session-id`, or comes with `x-codex-parent-thread-id`).
        """
        v = self.headers.get("x-claude-code-agent-id")
        if v:
            return v.strip()
        thread = self.headers.get("thread-id", "").strip()
        if thread and (
            "x-codex-parent-thread-id" in self.headers
            or thread != self.headers.get("session-id", thread).strip()
        ):
            return thread
        return None

    @property
    def compaction(self) -> bool:
        """The client is compacting: the provider's cache of this conversation is cold anyway."""
        flag = self.headers.get("x-claude-code-compaction", "").strip().lower()
        if flag and flag not in ("0", "false", "no"):
            return True
        return self.request_class == "compaction" or self.codex_subagent == _CODEX_COMPACT

    @property
    def codex_background(self) -> bool:
        return self.codex_subagent in _CODEX_BACKGROUND
