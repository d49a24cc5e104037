"""The fake provider's wire basics: a Reply (what varies between two answers), SSE framing,
text and JSON splitting, and the builder base class each API's payloads derive from.

Private helper of :mod:`llmrouter.tools.fakeprovider` (see ``_fakepayloads`` for the
builders). A builder turns a :class:`Reply` into the exact bytes the real API would send: a
non-stream body, or SSE events split into ``opening`` (lifecycle events before the first
token), ``delta`` (one content event), ``closing`` (terminal events) and ``inband_error``.
"""

from __future__ import annotations

import itertools
import json
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any, ClassVar

_FILLER = (" lorem", " ipsum", " dolor", " sit", " amet,", " consectetur")


def split_json(value: Any, n: int) -> list[str]:
    """`value` as compact JSON in up to `n` non-empty pieces, as tool-argument deltas come."""
    text = json.dumps(value, separators=(",", ":"))
    n = max(1, min(n, len(text)))
    step = -(-len(text) // n)
    return [text[i : i + step] for i in range(0, len(text), step)]


def split_text(name: str, n: int) -> list[str]:
    """``n`` non-empty pieces whose concatenation always contains "Hello from NAME."; none for
    ``n == 0`` (an answer with no content)."""
    base = ["Hello", " from", f" {name}."]
    if n <= 0:
        return []
    if n == 1:
        return ["".join(base)]
    if n == 2:
        return [base[0], base[1] + base[2]]
    return base + [_FILLER[i % len(_FILLER)] for i in range(n - 3)]


@dataclass
class Reply:
    """Everything that varies between two answers of the same API."""

    id: str
    model: str
    pieces: list[str]
    input_tokens: int
    output_tokens: int
    cache_read: int = 0
    cache_write: int = 0
    include_usage: bool = False
    created: int = 0
    request: dict[str, Any] = field(default_factory=dict)
    # A tool call instead of text: {"id", "name", "input"}; `pieces` are its JSON arguments.
    tool: dict[str, Any] | None = None
    # Reasoning before the answer: an Anthropic thinking block (signed), chat reasoning_content.
    thinking: str | None = None
    # Responses events carry a per-stream sequence_number; events are built in order.
    seq: itertools.count[int] = field(default_factory=itertools.count)

    @property
    def text(self) -> str:
        return "".join(self.pieces)


def sse(data: dict[str, Any] | str, event: str | None = None) -> bytes:
    payload = data if isinstance(data, str) else json.dumps(data, separators=(",", ":"))
    head = f"event: {event}\n" if event else ""
    return f"{head}data: {payload}\n\n".encode()


def reason(status: int) -> str:
    if status == 529:  # Anthropic-only, not in HTTPStatus
        return "Overloaded"
    return HTTPStatus(status).phrase if status in HTTPStatus else "Error"


_OPENAI_ERRORS: dict[int, tuple[str, str | None]] = {
    401: ("invalid_request_error", "invalid_api_key"),
    403: ("permission_error", None),
    404: ("invalid_request_error", "model_not_found"),
    429: ("requests", "rate_limit_exceeded"),
}


class Api:
    """Base builder. Errors default to OpenAI's format, shared by all its endpoints."""

    name: ClassVar[str]
    suffix: ClassVar[str]  # request path suffix that selects this API
    id_prefix: ClassVar[str]
    overloaded: ClassVar[str] = "The server had an error while processing your request."

    def body(self, r: Reply) -> dict[str, Any]:
        raise NotImplementedError

    def opening(self, r: Reply) -> list[bytes]:
        return []

    def delta(self, r: Reply, i: int) -> bytes:
        raise NotImplementedError

    def closing(self, r: Reply) -> list[bytes]:
        return []

    def inband_error(self, r: Reply) -> bytes:
        return sse(self.error(500, self.overloaded))

    def error(self, status: int, message: str) -> dict[str, Any]:
        fallback = ("server_error" if status >= 500 else "invalid_request_error", None)
        kind, code = _OPENAI_ERRORS.get(status, fallback)
        return {"error": {"message": message, "type": kind, "param": None, "code": code}}
