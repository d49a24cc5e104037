"""What a fake provider does with one request (`Behaviour`), the faults by name, and how it
reads a request: which API a path is, whether it answers a tool call.

Private helper of :mod:`llmrouter.tools.fakeprovider`, which re-exports the public names.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, Literal, get_args

from llmrouter.tools._fakepayloads import APIS, Api

Kind = Literal[
    "ok", "status", "hang", "drop", "stall_before_token", "inband_error", "cut", "stall_after"
]
KINDS: frozenset[str] = frozenset(get_args(Kind))


@dataclass(frozen=True)
class Behaviour:
    kind: Kind = "ok"
    status: int = 503  # for "status" (and "inband_error" on a non-stream request)
    headers: dict[str, str] = field(default_factory=dict)  # extra response headers
    delay: float = 0.0  # seconds before the response headers
    ttft: float = 0.0  # streams: seconds between lifecycle events and first content delta
    interval: float = 0.0  # streams: seconds between content deltas
    deltas: int = 3  # content deltas; 0: an answer with no content
    after_deltas: int | None = None  # content deltas before the fault; 0 for inband_error, else 3
    input_tokens: int | None = None
    output_tokens: int | None = None
    cache_read_tokens: int | None = None
    cache_write_tokens: int | None = None
    # {"name", "input"}: call this tool, unless the request already answers a tool call
    tool_use: dict[str, Any] | None = None
    # Reasoning before the answer: a signed thinking block (Anthropic), reasoning_content deltas
    # (chat). Part of the opening events: a stream with it has committed before its first delta.
    thinking: str | None = None

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(
                f"unknown behaviour kind {self.kind!r}; expected one of {sorted(KINDS)}"
            )

    @property
    def fault_after(self) -> int:
        if self.after_deltas is not None:
            return self.after_deltas
        return 0 if self.kind == "inband_error" else 3


def fault(name: str, base: Behaviour | None = None) -> Behaviour:
    """Behaviour for a fault name: an HTTP status ("503", "429"...) or a stream kind."""
    base = base or Behaviour()
    if name.isdigit():
        retry = {"retry-after": "1"} if name in ("429", "529") else {}
        return replace(base, kind="status", status=int(name), headers=base.headers | retry)
    if name in KINDS - {"ok", "status"}:
        return replace(base, kind=name)  # type: ignore[arg-type]
    raise ValueError(f"unknown fault {name!r}")


def parse_faults(spec: str) -> dict[str, float]:
    """``"503=0.2,cut=0.05"`` -> ``{"503": 0.2, "cut": 0.05}``."""
    pairs = (item.split("=", 1) for item in spec.split(",") if item.strip())
    return {k.strip(): float(v) for k, v in pairs}


@dataclass(frozen=True)
class RecordedRequest:
    method: str
    path: str  # including the query string
    headers: dict[str, str]  # lowercase keys
    body: bytes
    json: Any | None
    t: float  # time.monotonic() at arrival


def api_for(method: str, path: str) -> Api | None:
    """Match by suffix so any base_url prefix ("/anthropic", "/api/v1"...) works."""
    path = path.rstrip("/")
    if method == "POST":
        # APIS is ordered so "/chat/completions" wins over "/completions".
        return next((api for api in APIS.values() if path.endswith(api.suffix)), None)
    return None


def has_result(req: dict[str, Any]) -> bool:
    """The last message answers a tool call: an Anthropic tool_result, or a chat `tool`."""
    messages = req.get("messages")
    last = messages[-1] if isinstance(messages, list) and messages else None
    if not isinstance(last, dict):
        return False
    if last.get("role") == "tool":
        return True
    content = last.get("content")
    return isinstance(content, list) and any(
        isinstance(b, dict) and b.get("type") == "tool_result" for b in content
    )
