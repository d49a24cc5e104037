"""Incremental SSE metering: commit detection, clean end, in-band errors and usage.

Raw bytes are never rewritten here; the meter only reads them. Chunk boundaries are not event
boundaries, so the parser buffers up to line ends. Pure: no I/O, no mitmproxy imports.
"""

from __future__ import annotations

import json
import re
from typing import Any

from llmrouter.wire.apis import ApiName, Flavor, Usage, usage_from

_EOL = re.compile(rb"(\r\n|\r|\n)")


class SSEParser:
    """Splits a byte stream into (event name, data) pairs as the SSE spec dispatches them.

    Lines end with LF, CRLF or a lone CR (all valid SSE). Linear in the stream's size however
    it is cut: an incomplete line waits as a list of pieces, joined once when it ends.
    `boundary` is the stream offset just past the last blank line (the end of the last whole
    event), so a relay can forward whole events only.
    """

    __slots__ = ("_cr", "_crlf", "_data", "_deferred", "_event", "_line", "_pos", "boundary")

    def __init__(self) -> None:
        self._line: list[bytes] = []  # pieces of the current incomplete line
        self._cr = False  # the last chunk ended in CR: a LF first in the next one is its pair
        self._deferred = False  # ... and that CR ended an event: the boundary waits for the LF
        self._crlf = False  # this stream uses CRLF (a CR-only one never waits for a LF)
        self._pos = 0  # stream offset where the current incomplete line starts
        self.boundary = 0
        self._event: bytes | None = None
        self._data: list[bytes] = []

    def feed(self, chunk: bytes) -> list[tuple[bytes | None, bytes]]:
        events: list[tuple[bytes | None, bytes]] = []
        if not chunk:
            return events
        if self._cr:
            self._cr = False
            if chunk[:1] == b"\n":  # the LF of a CRLF cut between two chunks
                chunk = chunk[1:]
                self._pos += 1
                self._crlf = True
            if self._deferred:  # never forward a CRLF cut in two
                self._deferred = False
                self.boundary = self._pos
            if not chunk:
                return events
        if b"\r" in chunk:
            self._crlf = self._crlf or b"\r\n" in chunk
            parts = _EOL.split(chunk)  # line, sep, line, sep, ..., rest
            lines, seps = parts[0:-1:2], parts[1:-1:2]
            rest = parts[-1]
            self._cr = chunk.endswith(b"\r")
        else:
            lines = chunk.split(b"\n")
            rest = lines.pop()
            seps = None
        earlier = self.boundary  # the boundary before the last one set here
        for i, line in enumerate(lines):
            if self._line:
                self._line.append(line)
                line = b"".join(self._line)
                self._line = []
            self._pos += len(line) + (len(seps[i]) if seps is not None else 1)
            if line:
                self._field(line)
                continue
            earlier, self.boundary = self.boundary, self._pos
            if self._data or self._event is not None:
                events.append((self._event, b"\n".join(self._data)))
                self._event = None
                self._data = []
        if rest:
            self._line.append(rest)
        elif self._cr and self._crlf and self.boundary == self._pos:
            self.boundary = earlier  # this event ends once its LF is here
            self._deferred = True
        return events

    @property
    def idle(self) -> bool:
        """At the start of a line with no event in progress: whole events may be taken past
        this point without the parser (see `skip`)."""
        return not self._line and not self._cr and not self._data and self._event is None

    def skip(self, n: int) -> None:
        """`n` bytes of whole events, taken elsewhere while `idle`: the offsets move past them."""
        self._pos += n
        self.boundary = self._pos

    def _field(self, line: bytes) -> None:
        name, _, value = line.partition(b":")
        if value.startswith(b" "):
            value = value[1:]
        if name == b"data":
            self._data.append(value)
        elif name == b"event":
            self._event = value
        # comments (": ping"), id: and retry: carry nothing we need


def _loads(data: bytes) -> Any:
    try:
        return json.loads(data)
    except ValueError:
        return None


def _error_text(obj: Any) -> str:
    err = obj.get("error") if isinstance(obj, dict) else None
    if isinstance(err, dict):
        return str(err.get("type") or err.get("code") or "error")
    if isinstance(obj, dict) and obj.get("type") in ("error", "response.failed"):
        return str(obj.get("code") or obj.get("type"))
    return "error"


class StreamMeter:
    """Reads one SSE answer and tells when it commits, ends cleanly or reports an error.

    Committed: the first content event arrived (text, tool call or reasoning delta). Before it,
    an error or a break is retryable; after it, the provider can no longer be switched.
    """

    __slots__ = (
        "_api",
        "_flavor",
        "_parser",
        "committed",
        "content_events",
        "error",
        "finished",
        "usage",
    )

    def __init__(self, api: ApiName, flavor: Flavor) -> None:
        self._api = api
        self._flavor = flavor
        self._parser = SSEParser()
        self.committed = False
        self.finished = False
        self.error: str | None = None
        self.content_events = 0
        self.usage = Usage()

    @property
    def boundary(self) -> int:
        """Stream offset just past the last complete event (see SSEParser)."""
        return self._parser.boundary

    def feed(self, chunk: bytes) -> None:
        for event, data in self._parser.feed(chunk):
            if self._flavor == "anthropic":
                self._anthropic(event, data)
            elif self._flavor == "responses":
                self._responses(event, data)
            else:
                self._chat(data)

    def _content(self) -> None:
        self.committed = True
        self.content_events += 1

    def _anthropic(self, event: bytes | None, data: bytes) -> None:
        if event == b"content_block_delta":
            self._content()
        elif event == b"message_start":
            obj = _loads(data)
            if isinstance(obj, dict) and isinstance(obj.get("message"), dict):
                self._usage(obj["message"].get("usage"))
        elif event == b"message_delta":
            obj = _loads(data)
            if isinstance(obj, dict):
                self._usage(obj.get("usage"))
        elif event == b"message_stop":
            self.finished = True
        elif event == b"error":
            self.error = _error_text(_loads(data))

    def _responses(self, event: bytes | None, data: bytes) -> None:
        if event is None:
            return
        if event.endswith(b".delta"):
            self._content()
        elif event in (b"response.completed", b"response.incomplete"):
            self.finished = True
            obj = _loads(data)
            if isinstance(obj, dict) and isinstance(obj.get("response"), dict):
                self._usage(obj["response"].get("usage"))
        elif event in (b"error", b"response.failed"):
            self.error = _error_text(_loads(data))

    def _chat(self, data: bytes) -> None:
        if data.startswith(b"[DONE]"):
            self.finished = True
            return
        # After commit only usage and errors matter: skip parsing plain content chunks.
        if self.committed and b'"usage"' not in data and b'"error"' not in data:
            self.content_events += 1
            return
        obj = _loads(data)
        if not isinstance(obj, dict):
            return
        if obj.get("error"):
            self.error = _error_text(obj)
            return
        if obj.get("usage"):
            self._usage(obj["usage"])
        for choice in obj.get("choices") or ():
            if not isinstance(choice, dict):
                continue
            delta = choice.get("delta")
            if isinstance(delta, dict):
                if (
                    delta.get("content")
                    or delta.get("tool_calls")
                    or delta.get("function_call")
                    or delta.get("reasoning_content")
                    or delta.get("reasoning")
                    or delta.get("refusal")
                    or delta.get("audio")
                ):
                    self._content()
                    return
            elif choice.get("text"):  # legacy /v1/completions
                self._content()
                return

    def _usage(self, usage: Any) -> None:
        if usage:
            self.usage = self.usage.merged(usage_from(self._api, usage))
