"""What a translation fixture is: one provider answer, streamed and not, and what the client
must end up with. The streams are built to each provider family's documented shapes; the
chunk boundaries are those a client sees over the network (an event per write, several events
in one read, a read that ends mid-line or mid-character)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Literal

Split = Literal["events", "pairs"] | int  # one event per chunk, two per chunk, or N-byte reads


@dataclass(frozen=True)
class Tool:
    id: str | None  # None: the provider sent none, the router invents one
    name: str
    input: dict[str, Any]


@dataclass(frozen=True)
class Fixture:
    name: str
    api: Literal["openai", "anthropic"]  # the PROVIDER's API; the client has the other one
    chunks: tuple[bytes, ...]
    body: dict[str, Any] | None  # the same answer non-streamed; None when the stream fails
    text: str = ""
    reasoning: str = ""
    tools: tuple[Tool, ...] = ()
    stop: str | None = None  # in the CLIENT's vocabulary
    usage: dict[str, int] = field(default_factory=dict)  # in the CLIENT's vocabulary
    fails: Literal["error", "cut"] | None = None

    @property
    def stream(self) -> bytes:
        return b"".join(self.chunks)


def split(events: list[bytes], how: Split) -> tuple[bytes, ...]:
    if how == "events":
        return tuple(events)
    if how == "pairs":
        return tuple(b"".join(events[i : i + 2]) for i in range(0, len(events), 2))
    data = b"".join(events)
    return tuple(data[i : i + how] for i in range(0, len(data), how))


def compact(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode()
