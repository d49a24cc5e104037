"""Making text safe to show: configured keys redacted, control and bidi characters escaped,
and client-chosen names capped. Pure: no I/O, no mitmproxy imports.

What a provider sends back, and what a client names, ends up in log lines, the JSONL, flow
comments and error bodies. A provider that echoes request headers must not hand its key to the
client; a model name with CR/LF must not forge a log line; a 100 KB model name must not be kept
in every table.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable
from urllib.parse import quote

REDACTED = "[redacted]"
MODEL_CHARS = 200  # longer model names are cut (with a hash, so distinct names stay distinct)

# Bidi controls reorder what a terminal shows (U+202E makes "txt.exe" read "exe.txt").
_BIDI = frozenset("\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _escape(c: str) -> str:
    if c in _NAMED:
        return _NAMED[c]
    n = ord(c)
    if n < 0x100:
        return f"\\x{n:02x}"
    return f"\\u{n:04x}" if n < 0x10000 else f"\\U{n:08x}"


def printable(text: str) -> str:
    """`text` with every control, format (bidi), separator and surrogate character escaped, so
    that it is one line of what it says; plain text comes back as is (one C-speed check)."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() or c == " " else _escape(c) for c in text)


def printable_lines(text: str) -> str:
    """As `printable`, keeping the line breaks of a multi-line message of our own."""
    return "\n".join(printable(line) for line in text.split("\n"))


def cap(text: str, limit: int = MODEL_CHARS) -> str:
    """`text` cut to `limit` characters plus a short hash of the whole, so that two long names
    that share a prefix stay apart. A name within the limit is returned unchanged."""
    if len(text) <= limit:
        return text
    digest = hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:12]
    return f"{text[:limit]}…#{digest}"


def model_name(model: str | None) -> str | None:
    """A client-chosen model name as the router keeps it in state, logs and the JSONL."""
    return None if model is None else cap(model)


class Scrubber:
    """Redacts every configured key from bytes and text: the raw key, and the forms it takes
    once JSON- or URL-escaped. One compiled pattern: cheap enough for every error answer."""

    def __init__(self, keys: Iterable[str]) -> None:
        forms: set[str] = set()
        for key in keys:
            if len(key) < 4:  # validation refuses empty keys; a 1-3 char key would eat text
                continue
            escaped = json.dumps(key)[1:-1]
            forms.update((key, escaped, escaped.replace("/", "\\/"), quote(key, safe="")))
        ordered = sorted(forms, key=len, reverse=True)  # longest first: no partial leftovers
        self._text = re.compile("|".join(map(re.escape, ordered))) if ordered else None
        self._bytes = (
            re.compile(b"|".join(re.escape(f.encode("utf-8", "surrogatepass")) for f in ordered))
            if ordered
            else None
        )

    def __bool__(self) -> bool:
        return self._text is not None

    def text(self, value: str) -> str:
        return self._text.sub(REDACTED, value) if self._text is not None else value

    def bytes(self, value: bytes) -> bytes:
        if self._bytes is None or not value:
            return value
        return self._bytes.sub(REDACTED.encode(), value)

    def headers(self, headers: list[tuple[str, str]]) -> list[tuple[str, str]]:
        if self._text is None:
            return headers
        return [(self.text(k), self.text(v)) for k, v in headers]
