"""The record of one upstream attempt: its timings, outcome and tokens, and how it is told in
the JSONL log, in mitmproxy's log and in the flow's comment. Plain data, no I/O.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from llmrouter.routing.crossapi import UNLOGGED
from llmrouter.routing.pricing import PriceOverride
from llmrouter.wire.apis import Usage
from llmrouter.wire.outcome import Outcome

if TYPE_CHECKING:
    from llmrouter.proxy.limiting import Hold


@dataclass(slots=True)
class Ctx:
    """What every attempt of one request shares."""

    request_id: str
    profile: str
    strategy: str
    api: str
    requested_model: str | None
    stream: bool
    deadline_at: float  # time.monotonic() bound on the whole request
    candidates: list[str] = field(default_factory=list)
    reason: str = ""
    skipped: list[dict[str, str]] = field(default_factory=list)
    logged: bool = False  # the decision rides on the request's first log line
    route: str | None = None  # the scenario route taken; None: the profile's own pool
    route_reason: str | None = None
    conversation: str | None = None  # hashed conversation key; never the raw session id
    history: tuple[str, int, int] | None = None  # usage thread, body bytes, messages
    user: str | None = None  # the authenticated proxy user (access); None without access
    hold: Hold | None = None  # the user's reservation until the request settles


@dataclass(slots=True)
class Attempt:
    ctx: Ctx
    n: int  # 1-based
    provider: str
    key: str
    probe: bool
    t0: float = field(default_factory=time.monotonic)
    wall: float = field(default_factory=time.time)
    model: str | None = None
    url: str | None = None
    sent_body: bytes = b""
    price_ref: tuple[PriceOverride | None, str | None] = (None, None)  # override, provider URL
    status: int | None = None
    ttfb: float | None = None  # time.monotonic() of the response headers
    ttft: float | None = None  # ... of the first content event
    t_end: float | None = None
    outcome: Outcome | None = None
    error: str | None = None
    final: bool = False  # this attempt's answer reached the client
    usage: Usage = field(default_factory=Usage)
    bytes: int | None = None
    content_events: int | None = None
    cooldown: float | None = None
    cost: float | None = None
    affinity: str | None = None  # new | bound | rebound | expired; None: affinity off
    fallback: bool = False  # tried from the profile's pool after the route's had failed
    api: str | None = None  # the provider's API (None: the request's)
    translated: bool = False  # the provider's API differs from the client's
    charged: float | None = None  # USD booked to the user when not cost (usage cut short)

    def ms(self, t: float | None) -> float | None:
        return None if t is None else round((t - self.t0) * 1000, 1)

    @property
    def total_ms(self) -> float | None:
        return self.ms(self.t_end)

    def end(self, outcome: Outcome, error: str | None, ended: float | None = None) -> None:
        self.outcome, self.error = outcome, error
        self.t_end = ended if ended is not None else time.monotonic()

    def record(self) -> dict[str, Any]:
        """The JSONL line (a public contract: keep the names)."""
        c, u = self.ctx, self.usage
        ts = datetime.fromtimestamp(self.wall, UTC).isoformat(timespec="milliseconds")
        return {
            "ts": ts.replace("+00:00", "Z"),
            "request_id": c.request_id,
            "profile": c.profile,
            "strategy": c.strategy,
            "candidates": c.candidates,
            "reason": c.reason,
            "route": c.route,
            "route_reason": c.route_reason,
            "route_fallback": self.fallback,
            "conversation": c.conversation,
            "affinity": self.affinity,
            "attempt": self.n,
            "provider": self.provider,
            "api": self.api or c.api,
            "translated": self.translated,
            "model": self.model,
            "requested_model": c.requested_model,
            "stream": c.stream,
            "status": self.status,
            "outcome": self.outcome.value if self.outcome else None,
            "error": self.error,
            "final": self.final,
            "probe": self.probe,
            "ttfb_ms": self.ms(self.ttfb),
            "ttft_ms": self.ms(self.ttft),
            "total_ms": self.total_ms,
            "input_tokens": u.input_tokens,
            "output_tokens": u.output_tokens,
            "cache_read_tokens": u.cache_read_tokens,
            "cache_write_tokens": u.cache_write_tokens,
            "cost_usd": self.cost,
            "charged_usd": self.charged,
            "user": c.user,
            "bytes": self.bytes,
            "content_events": self.content_events,
            "skipped": [x for x in c.skipped if x["reason"] not in UNLOGGED],
            "cooldown_s": None if self.cooldown is None else round(self.cooldown, 3),
        }

    def summary(self) -> str:
        """`a 503 12ms`, `b connect_error 3ms (connection refused)`, `c 200 timeout 15001ms
        (response body not complete within 15s)`: for comments and errors."""
        what = str(self.status) if self.status is not None else str(self.outcome)
        # Failed after its headers (a broken or slow body, a stream error): the status alone
        # would read like a success.
        late = self.status is not None and self.outcome not in (
            None, Outcome.OK, Outcome.HTTP_ERROR,
        )  # fmt: skip
        if late:
            what = f"{what} {self.outcome}"
        ms = self.total_ms
        text = f"{self.provider} {what} {ms:.0f}ms" if ms is not None else f"{self.provider} {what}"
        if self.error and (self.status is None or late):
            text += f" ({self.error})"
        return text

    def line(self) -> str:
        """One summary line for mitmproxy's log."""
        u = self.usage
        parts = [
            f"#{self.n} {self.provider}",
            f"{self.model or '-'}",
            f"{self.outcome}" + (f" {self.status}" if self.status is not None else ""),
            f"ttfb={_ms(self.ms(self.ttfb))} ttft={_ms(self.ms(self.ttft))}",
            f"total={_ms(self.total_ms)}",
            f"tokens={_n(u.input_tokens)}/{_n(u.output_tokens)}",
        ]
        if self.cost is not None:
            parts.append(f"${self.cost:.6f}")
        if self.error:
            parts.append(f"error={self.error}")
        if self.cooldown:
            parts.append(f"cooldown={self.cooldown:.0f}s")
        return " ".join(parts)


def _ms(v: float | None) -> str:
    return "-" if v is None else f"{v:g}ms"


def _n(v: int | None) -> str:
    return "-" if v is None else str(v)
