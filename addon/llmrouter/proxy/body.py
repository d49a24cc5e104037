"""A request body as the router reads it: decoded within a size cap, read once for the members
every request needs, and its model changed in place when that is the only change.

Decoding is incremental and stops at the cap, so a small compressed body cannot inflate to
gigabytes ("decompression bomb"). Reading the head (`model`, `stream`) skips the rest of the
JSON at C speed without building it: 0.3 ms for a 500 KB Claude Code body, where a full
json.loads takes 2 ms (docs/BENCHMARKS.md). Pure: bytes in, bytes out; no mitmproxy.
"""

from __future__ import annotations

import json
import re
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import brotli
import msgspec

try:  # Python 3.14+
    from compression import zstd  # type: ignore[import-not-found]
except ImportError:  # what mitmproxy itself uses before 3.14
    from backports import zstd  # type: ignore[no-redef]


class BodyError(Exception):
    """A body the router refuses: `status` 413 (over the cap) or 400 (cannot be decoded)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def _too_large(cap: int) -> BodyError:
    return BodyError(413, f"request body larger than max_request_mb ({cap / 2**20:g} MB)")


def _zlib(raw: bytes, cap: int, wbits: int) -> bytes:
    out: list[bytes] = []
    total = 0
    data = raw
    while data:  # one zlib stream per gzip member; members may follow each other
        d = zlib.decompressobj(wbits)
        while data:
            piece = d.decompress(data, cap + 1 - total)
            total += len(piece)
            out.append(piece)
            if total > cap:
                raise _too_large(cap)
            if d.eof or (not d.unconsumed_tail and not piece):
                break
            data = d.unconsumed_tail
        piece = d.flush(cap + 1 - total)
        total += len(piece)
        out.append(piece)
        if total > cap:
            raise _too_large(cap)
        if not d.eof:
            raise BodyError(400, "request body is truncated (content-encoding)")
        data = d.unused_data if wbits > 0 and wbits & 16 else b""
    return b"".join(out)


def _brotli(raw: bytes, cap: int) -> bytes:
    d = brotli.Decompressor()
    out = [d.process(raw, output_buffer_limit=cap + 1)]
    total = len(out[0])
    while total <= cap and not d.can_accept_more_data():
        piece = d.process(b"", output_buffer_limit=cap + 1 - total)
        if not piece:
            break
        total += len(piece)
        out.append(piece)
    if total > cap:
        raise _too_large(cap)
    if not d.is_finished():
        raise BodyError(400, "request body is truncated (content-encoding)")
    return b"".join(out)


def _zstd(raw: bytes, cap: int) -> bytes:
    out: list[bytes] = []
    total = 0
    data = raw
    while data:  # zstd frames may follow each other
        d = zstd.ZstdDecompressor()
        piece = d.decompress(data, cap + 1 - total)
        while True:
            total += len(piece)
            out.append(piece)
            if total > cap:
                raise _too_large(cap)
            if d.eof or d.needs_input:
                break
            piece = d.decompress(b"", cap + 1 - total)
        if not d.eof:
            raise BodyError(400, "request body is truncated (content-encoding)")
        data = d.unused_data
    return b"".join(out)


def _deflate(raw: bytes, cap: int) -> bytes:
    # With or without the zlib header, as mitmproxy (and servers in the wild) accept it.
    zlib_header = len(raw) >= 2 and raw[0] & 0x0F == 8 and (raw[0] << 8 | raw[1]) % 31 == 0
    return _zlib(raw, cap, 15 if zlib_header else -15)


_DECODERS: dict[str, Callable[[bytes, int], bytes]] = {
    "gzip": lambda raw, cap: _zlib(raw, cap, 16 + 15),
    "x-gzip": lambda raw, cap: _zlib(raw, cap, 16 + 15),
    "deflate": _deflate,
    "br": _brotli,
    "zstd": _zstd,
}


def decode(raw: bytes, encoding: str | None, cap: int) -> bytes:
    """`raw` with its content-encoding undone, at most `cap` bytes; else BodyError."""
    enc = (encoding or "").strip().lower()
    if enc in ("", "identity", "none"):
        if len(raw) > cap:
            raise _too_large(cap)
        return raw
    decoder = _DECODERS.get(enc)
    if decoder is None:
        raise BodyError(400, f"unsupported content-encoding {enc[:40]!r}")
    try:
        return decoder(raw, cap)
    except BodyError:
        raise
    except Exception as e:  # zlib.error, brotli.error, zstd.ZstdError
        raise BodyError(
            400, f"request body cannot be decoded ({enc}: {type(e).__name__})"
        ) from None


class _Head(msgspec.Struct):
    model: Any = None
    stream: Any = None


_HEAD = msgspec.json.Decoder(_Head)


@dataclass(frozen=True, slots=True)
class Head:
    """What the router reads from every JSON body."""

    is_object: bool  # the body is a JSON object
    model: str | None  # its top-level "model", when a string
    stream: Any  # its top-level "stream", as given (None when absent)


NOT_JSON = Head(False, None, None)


# The shape Claude Code sends (model first, stream last: `{"model":"...", ..., "stream":true}`)
# is read in O(1): the first member of the root object, and its last one (a value followed by
# the final `}` cannot be nested, and a member's quote is not escaped after `,` or `{`).
_FIRST_MODEL = re.compile(rb'[ \t\r\n]*\{[ \t\r\n]*"model"[ \t\r\n]*:[ \t\r\n]*"((?:[^"\\]|\\.)*)"')
_LAST_STREAM = re.compile(
    rb'[,{][ \t\r\n]*"stream"[ \t\r\n]*:[ \t\r\n]*(true|false|null)[ \t\r\n]*\}[ \t\r\n]*\Z'
)
_FLAGS: dict[bytes, bool | None] = {b"true": True, b"false": False, b"null": None}


def read_head(body: bytes) -> Head:
    """The head of a JSON body, the rest skipped unbuilt (and, in Claude Code's key order,
    not even read)."""
    first = _FIRST_MODEL.match(body)
    last = _LAST_STREAM.search(body, max(0, len(body) - 64)) if first else None
    if first and last:
        try:
            model = json.loads(b'"' + first.group(1) + b'"')
        except ValueError:
            model = None
        if isinstance(model, str):
            return Head(True, model, _FLAGS[last.group(1)])
    try:
        h = _HEAD.decode(body)
    except msgspec.DecodeError:
        # Not JSON, not an object, or what msgspec refuses and json accepts (a lone surrogate
        # escape, "\ud800"): the standard parser decides.
        obj = parse_object(body)
        if obj is None:
            return NOT_JSON
        model = obj.get("model")
        return Head(True, model if isinstance(model, str) else None, obj.get("stream"))
    return Head(True, h.model if isinstance(h.model, str) else None, h.stream)


def parse_object(body: bytes) -> dict[str, Any] | None:
    """The whole body as a dict, or None when it is not a JSON object."""
    try:
        obj = json.loads(body)
    except (ValueError, RecursionError):
        return None
    return obj if isinstance(obj, dict) else None


# `"model"` then a JSON string. Searching the raw bytes is far cheaper than re-serializing a
# 500 KB body, and keeps every other byte as the client sent it.
_MODEL_RE = re.compile(rb'(?<!\\)"model"[ \t\r\n]*:[ \t\r\n]*"((?:[^"\\]|\\.)*)"')


def set_model(body: bytes, old: str, new: str) -> bytes | None:
    """`body` with its top-level `"model": old` replaced by `new`, or None when that member
    cannot be told apart from a nested one (the caller then re-serializes).

    The top-level member is the only `"model"` key with a string value equal to `old`: nested
    ones (a tool's input, an old assistant turn) are found too, and if one of them has the
    same value the place is ambiguous.
    """
    found = None
    for m in _MODEL_RE.finditer(body):
        try:
            value = json.loads(b'"' + m.group(1) + b'"')
        except ValueError:
            continue
        if value == old:
            if found is not None:
                return None
            found = m
    if found is None:
        return None
    start, end = found.span(1)
    return body[:start] + json.dumps(new).encode()[1:-1] + body[end:]
