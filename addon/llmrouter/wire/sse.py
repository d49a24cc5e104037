"""Incremental SSE metering: commit detection, clean end, in-band errors and usage.

Raw bytes are never rewritten here; the meter only reads them. Chunk boundaries are not event
boundaries, so the parser buffers up to line ends. Pure: no I/O, no mitmproxy imports.
"""

from __future__ import annotations

import json
from typing import Any

from llmrouter.wire.apis import ApiName, Flavor, Usage, usage_from


class SSEParser:
    """Splits a byte stream into (event name, data) pairs as the SSE spec dispatches them."""

    __slots__ = ("_buf", "_data", "_event")

    def __init__(self) -> None:
        self._buf = b""
        self._event: bytes | None = None
        self._data: list[bytes] = []

    def feed(self, chunk: bytes) -> list[tuple[bytes | None, bytes]]:
        buf = self._buf + chunk if self._buf else chunk
        lines = buf.split(b"\n")
        self._buf = lines.pop()
        events: list[tuple[bytes | None, bytes]] = []
        for line in lines:
            if line.endswith(b"\r"):
                line = line[:-1]
            if not line:
                if self._data or self._event is not None:
                    events.append((self._event, b"\n".join(self._data)))
                    self._event = None
                    self._data = []
                continue
            name, _, value = line.partition(b":")
            if value.startswith(b" "):
                value = value[1:]
            if name == b"data":
                self._data.append(value)
            elif name == b"event":
                self._event = value
            # comments (": ping"), id: and retry: carry nothing we need
        return events


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
