"""Input-token estimate of a request, cheap enough for every request: no tokenizer.

With history, the conversation's last reported usage (input + cache read + cache write, all the
input the provider counted) plus the bytes added since then over `BYTES_PER_TOKEN`; without,
the whole body's bytes over `BYTES_PER_TOKEN`. Base64 images and documents are taken out of
the bytes and counted at a flat rate, since their bytes say little about their tokens.

The cost is a length and a walk over the content blocks of the new messages (all of them when
there is no history), looking at block types only: far below the JSON parse the router already
does (figures in tests/test_bench_routes.py).

BYTES_PER_TOKEN = 3.5. Measured on bodies of the JSON Claude Code sends: bytes of the compact
JSON body per token of its text (system blocks, tool definitions as JSON, message text, thinking
text, tool input and tool results), counted with Anthropic's public tokenizer
(@anthropic-ai/tokenizer) and with o200k_base for comparison:

    body                                        bytes   claude tok  bytes/tok  (o200k)
    Claude Code 2.1.197 "say hello", captured   76861      18764       4.10     4.28
    ... its turn after a subagent, captured     77385      18865       4.10     4.28
    tests/claudebodies.py main_loop(0)          55516      15723       3.53     3.63
    main_loop(5): tool loop, code file reads    89035      24128       3.69     3.79
    main_loop(20)                              173146      43109       4.02     4.05
    main_loop(70)                              485133     114820       4.23     4.19

The public tokenizer is an older Claude's; the API also counts the rendering of tool schemas,
and Anthropic says newer tokenizers count up to 35 % more tokens for the same text (4.1 / 1.35 =
3.0). 3.5 sits between: it errs towards more tokens, so a request near a limit goes to the
bigger model rather than overflow the smaller one. Users report 16k-26k tokens for Claude Code's
first call, in line with 77 KB / 3.5 = 22k. From its second turn a conversation's estimate rests
on the provider's own count; only the bytes added since are divided.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, Literal

from llmrouter.routing.signals import Signals

BYTES_PER_TOKEN = 3.5
IMAGE_TOKENS = 1600  # Anthropic: about width*height/750, images are scaled to ~1.15 MP
DOCUMENT_BYTES_PER_TOKEN = 25.0  # base64 PDFs, decoded bytes: rough (text + a picture per page)
_MEDIA = frozenset(("image", "image_url", "input_image"))
_DOCS = frozenset(("document", "file", "input_file"))

Source = Literal["usage+bytes", "bytes"]


@dataclass(frozen=True, slots=True)
class Estimate:
    tokens: int
    source: Source

    def __str__(self) -> str:
        return f"est {kilo(self.tokens)} ({self.source})"


@dataclass(frozen=True, slots=True)
class Reported:
    """What the provider counted for a conversation's last answered request."""

    tokens: int  # all input: input + cache_read + cache_write (wire.apis.Usage.input_tokens)
    size: int  # that request's body bytes
    messages: int  # its number of messages (or Responses input items)


def estimate(sig: Signals, last: Reported | None = None) -> Estimate:
    """Estimated input tokens of `sig`. `last`: the same thread's previous answered request."""
    msgs = sig.messages
    size = len(sig.body)
    # The history counts only while the conversation grew: a compacted or rewound one, or
    # another thread under the same key, is measured afresh.
    grew = last is not None and len(msgs) >= last.messages and size >= last.size
    new = msgs[last.messages :] if grew and last is not None else msgs
    media_bytes, media_tokens = _media(new)
    if not grew:
        sig.has_media = media_tokens > 0
    if grew and last is not None:
        text = max(0, size - last.size - media_bytes)
        return Estimate(last.tokens + round(text / BYTES_PER_TOKEN) + media_tokens, "usage+bytes")
    text = max(0, size - media_bytes)
    return Estimate(round(text / BYTES_PER_TOKEN) + media_tokens, "bytes")


def _media(messages: list[Any]) -> tuple[int, int]:
    """(bytes of base64 media, their token estimate) in these messages' content blocks; any
    media block, base64 or not, counts its tokens."""
    nbytes = tokens = 0
    for msg in messages:
        if isinstance(msg, dict):
            b, t = _blocks(msg.get("content", msg.get("output")))
            nbytes += b
            tokens += t
    return nbytes, tokens


def _blocks(content: Any) -> tuple[int, int]:
    nbytes = tokens = 0
    if not isinstance(content, list):
        return 0, 0
    for block in content:
        if not isinstance(block, dict):
            continue
        kind = block.get("type")
        if kind == "tool_result":
            b, t = _blocks(block.get("content"))
            nbytes, tokens = nbytes + b, tokens + t
            continue
        if kind not in _MEDIA and kind not in _DOCS:
            continue
        data = _base64_of(block)
        if kind in _MEDIA or not data:
            nbytes, tokens = nbytes + len(data), tokens + IMAGE_TOKENS
        elif data:
            decoded = len(data) * 3 / 4
            doc = max(IMAGE_TOKENS, round(decoded / DOCUMENT_BYTES_PER_TOKEN))
            nbytes, tokens = nbytes + len(data), tokens + doc
    return nbytes, tokens


def _base64_of(block: dict[str, Any]) -> str:
    src = block.get("source")
    if isinstance(src, dict) and src.get("type") == "base64":
        data = src.get("data")
        return data if isinstance(data, str) else ""
    for key in ("image_url", "file_data", "file"):  # OpenAI: data: URLs
        v = block.get(key)
        if isinstance(v, dict):
            v = v.get("url") or v.get("file_data")
        if isinstance(v, str) and v.startswith("data:"):
            return v
    return ""


def kilo(n: int) -> str:
    """81234 -> "81k", 950 -> "950": for reasons people read."""
    return f"{n / 1000:.0f}k" if n >= 10_000 else f"{n / 1000:.1f}k" if n >= 1000 else str(n)


# -- the usage store ------------------------------------------------------------------------------


def thread_key(conversation: str, sig: Signals) -> str:
    """Usage history key: the route-independent conversation key (see conversation.base) plus
    the requested model and the number of tools, so that a side call sharing the session (a
    web-search call, a haiku title) does not stand in for the main loop's history."""
    tools = sig.payload.get("tools")
    return f"{conversation}/{sig.model}/{len(tools) if isinstance(tools, list) else 0}"


class UsageBook:
    """The last `Reported` of each thread, LRU-capped. About 300 bytes an entry, key included
    (100,000: ~30 MB, measured with tracemalloc)."""

    def __init__(self, cap: int = 100_000) -> None:
        self.cap = cap
        self._items: OrderedDict[str, Reported] = OrderedDict()

    def get(self, key: str) -> Reported | None:
        r = self._items.get(key)
        if r is not None:
            self._items.move_to_end(key)
        return r

    def put(self, key: str, reported: Reported) -> None:
        self._items[key] = reported
        self._items.move_to_end(key)
        while len(self._items) > self.cap:
            self._items.popitem(last=False)

    def __len__(self) -> int:
        return len(self._items)
