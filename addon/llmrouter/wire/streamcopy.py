"""A bounded copy of a relayed stream, kept for the flow's response body once the stream ends
(mitmweb, `-w` saved flows and the LLM view show it). Pure: no I/O.

Past `limit` bytes the copy stops at the last complete event that fits and ends with
`render.truncation_marker(limit)`, an SSE comment: the copy stays a valid event stream and the
LLM view says it was cut. The client always gets the whole stream; only the copy is bounded.
"""

from __future__ import annotations

from collections.abc import Callable

from llmrouter.wire.render import truncation_marker

DEFAULT_LIMIT = 1 << 20  # 1 MB


class StreamCopy:
    __slots__ = ("_chunks", "_size", "limit", "total", "truncated")

    def __init__(self, limit: int = DEFAULT_LIMIT) -> None:
        self.limit = limit
        self.total = 0  # bytes seen, kept or not
        self.truncated = False
        self._chunks: list[bytes] = []
        self._size = 0

    def add(self, data: bytes) -> None:
        self.total += len(data)
        if self.truncated or not data:
            return
        room = self.limit - self._size
        if len(data) <= room:
            self._chunks.append(data)
            self._size += len(data)
            return
        # Keep whole events only: up to the last event end that still fits.
        kept = b"".join(self._chunks) + data[:room]
        end = _event_end(kept)
        self._chunks, self._size = [kept[:end]], end
        self.truncated = True

    def tee(self, on_end: Callable[[bytes], None]) -> Callable[[bytes], bytes]:
        """A `flow.response.stream` callable: passes each chunk on unchanged, copies it, and
        hands the copy to `on_end` at the end (mitmproxy calls it with b"" before the
        `response` hook, so `-w` saves the copy)."""

        def stream(chunk: bytes) -> bytes:
            if chunk:
                self.add(chunk)
            else:
                on_end(self.body())
            return chunk

        return stream

    def body(self) -> bytes:
        data = b"".join(self._chunks)
        return data + truncation_marker(self.limit) if self.truncated else data


def _event_end(data: bytes) -> int:
    """The index just past the last complete SSE event in `data`, or 0."""
    lf, crlf = data.rfind(b"\n\n"), data.rfind(b"\r\n\r\n")
    return max(lf + 2 if lf >= 0 else 0, crlf + 4 if crlf >= 0 else 0)
