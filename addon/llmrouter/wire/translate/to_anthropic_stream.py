"""OpenAI Chat Completions SSE -> Anthropic Messages SSE, incrementally.

Fed raw bytes in any chunking, it returns whole Anthropic events. Bytes are split on newlines
before any decoding, so a UTF-8 character cut between two chunks is decoded whole.

- `message_start` goes out with the first content block (an answer that fails before any
  content has sent nothing the client would have to unsee).
- One content block is open at a time: thinking, text or a tool call (see toolcalls.py for
  how deltas find their call, and how interleaved parallel calls are serialised).
- `message_delta` (stop reason + usage) waits until the usage is known: the usage chunk, or
  `[DONE]`, or the end of the stream after a finish_reason.
- An in-band error becomes Anthropic's `event: error`; a cut stream gets the terminal error
  event from `abort`, never a `message_stop`.
"""

from __future__ import annotations

import re
from typing import Any

from llmrouter.wire.apis import Usage, stream_error_event
from llmrouter.wire.sse import SSEParser
from llmrouter.wire.translate.common import (
    JSONObj,
    anthropic_event,
    anthropic_stop,
    anthropic_usage,
    dumps,
    error_message,
    jstr,
    loads,
    provider_usage,
)
from llmrouter.wire.translate.responses import REASONING_FIELDS
from llmrouter.wire.translate.toolcalls import Call, CallBook

INTERRUPTED = "upstream stream interrupted"
_DELTA_HEAD = b'event: content_block_delta\ndata: {"type":"content_block_delta","index":'
# A chunk whose delta holds text and nothing else of use (null fields the families add are
# fine). An unescaped `"delta":` cannot occur inside a JSON string, so this never matches text.
_TEXT_ONLY = re.compile(
    rb'"delta":\{(?:"role":"assistant",)?"content":("(?:[^"\\]|\\.)*")'
    rb'(?:,"(?:reasoning_content|reasoning|refusal)":null)*(?:,"reasoning_details":\[\])?'
    rb'(?:,"role":"assistant")?\}'
)
# The whole of OpenAI's (and DeepSeek's, vLLM's...) usual text chunk, matched in one pass: its
# shape proves that it carries no finish_reason, usage or error, where three substring searches
# of the chunk cost more than the match (measured: about 1 us per event, a third of the cost).
_TEXT_CHUNK = re.compile(
    rb'\{"id":"[^"\\]*","object":"chat\.completion\.chunk","created":\d+,"model":"[^"\\]*"'
    rb'(?:,"system_fingerprint":(?:"[^"\\]*"|null))?,"choices":\[\{"index":0,'
    rb'"delta":\{(?:"role":"assistant",)?"content":("(?:[^"\\]|\\.)*")'
    rb'(?:,"(?:reasoning_content|reasoning|refusal)":null)*(?:,"role":"assistant")?\}'
    rb'(?:,"logprobs":null)?,"finish_reason":null\}\](?:,"usage":null)?\}'
)
# One such chunk as a whole SSE event (LF line ends; anything else goes through the parser).
_TEXT_EVENT = re.compile(rb"data: ?" + _TEXT_CHUNK.pattern + rb"\n\n")
_ARGS_ONLY = re.compile(
    rb'"delta":\{"tool_calls":\[\{"index":(\d+),"function":\{"arguments":("(?:[^"\\]|\\.)*")\}\}\]\}'
)


def anthropic_error_type(kind: str | None, status: Any = None) -> str:
    text = f"{kind or ''} {status or ''}".lower()
    if "rate" in text or "429" in text:
        return "rate_limit_error"
    if "overload" in text or "529" in text or "503" in text:
        return "overloaded_error"
    if "context_length" in text or "invalid_request" in text:
        return "invalid_request_error"
    return "api_error"


class ToAnthropicStream:
    """One streamed answer of an OpenAI-format provider, as an Anthropic client wants it.

    The attributes are those of `wire.sse.StreamMeter`, read from the PROVIDER's stream:
    `committed` (first content delta), `finished` (a finish_reason or `[DONE]` arrived),
    `error` (an in-band error), `usage` (normalised), `content_events`.
    """

    __slots__ = (
        "_block",
        "_book",
        "_done",
        "_fallback",
        "_finish",
        "_id",
        "_index",
        "_model",
        "_open_call",
        "_parser",
        "_refusal",
        "_started",
        "_usage_seen",
        "committed",
        "content_events",
        "error",
        "finished",
        "usage",
    )

    def __init__(self, *, model: str | None = None, seed: str = "0") -> None:
        self._parser = SSEParser()
        self._book = CallBook(seed)
        self._id = ""
        self._model = ""
        self._fallback = (model or "", f"msg_{seed}")
        self._block: str | None = None  # the open block: "thinking" | "text" | "tool"
        self._open_call: Call | None = None
        self._index = -1
        self._started = False
        self._done = False  # message_stop or an error event went out: nothing more
        self._finish: str | None = None
        self._usage_seen = False
        self._refusal = False
        self.committed = False
        self.finished = False
        self.error: str | None = None
        self.usage = Usage()
        self.content_events = 0

    # -- the relay's interface -------------------------------------------------------------

    def feed(self, chunk: bytes) -> bytes:
        """Provider bytes in, whole client events out (possibly b"")."""
        if self._done:
            return b""
        out: list[bytes] = []
        if self._block == "text" and self._parser.idle:
            taken = self._bulk_text(chunk, out)
            if taken:
                self._parser.skip(taken)
                chunk = chunk[taken:]
        for _event, data in self._parser.feed(chunk):
            self._data(data, out)
            if self._done:
                break
        return b"".join(out)

    def _bulk_text(self, chunk: bytes, out: list[bytes]) -> int:
        """Whole text events at the start of `chunk`, in the common shape, taken in one regex
        pass each without the SSE parser: a read that carries many events (a provider that
        writes faster than it is read) costs little more than relaying them. Returns the bytes
        taken; the parser gets the rest."""
        pos, head, index = 0, _DELTA_HEAD, self._index
        match = _TEXT_EVENT.match
        m = match(chunk)
        while m is not None:
            literal = m.group(1)
            if len(literal) > 2:  # not ""
                self.committed = True
                self.content_events += 1
                out.append(b'%s%d,"delta":{"type":"text_delta","text":%s}}\n\n'
                           % (head, index, literal))  # fmt: skip
            pos = m.end()
            m = match(chunk, pos)
        return pos

    def finish(self) -> bytes:
        """The provider closed the stream: the held end if the answer is complete, else the
        terminal error event."""
        if self._done:
            return b""
        if not self.finished:
            return self.abort(INTERRUPTED)
        out: list[bytes] = []
        self._end(out)
        return b"".join(out)

    def abort(self, message: str) -> bytes:
        """The terminal error event: the client's SDK raises instead of keeping a cut answer."""
        if self._done:
            return b""
        self._done = True
        return stream_error_event("anthropic", message)

    # -- provider events -------------------------------------------------------------------

    def _data(self, data: bytes, out: list[bytes]) -> None:
        if data[:6] == b"[DONE]":
            self.finished = True
            self._end(out)
            return
        if self._block == "text" and self._plain_text(data, out):
            return
        if self._block == "tool" and self._plain_args(data, out):
            return
        obj = loads(data)
        if not isinstance(obj, dict):
            return
        if obj.get("error") or obj.get("object") == "error":  # vLLM: {"object": "error", …}
            self._fail(obj, out)
            return
        if not self._id and obj.get("id"):
            self._id = obj["id"]
        if not self._model and obj.get("model"):
            self._model = obj["model"]
        usage = obj.get("usage")
        if usage:
            self.usage = self.usage.merged(provider_usage("openai", usage))
            self._usage_seen = True
        for choice in obj.get("choices") or ():
            if not isinstance(choice, dict) or choice.get("index", 0) not in (0, None):
                continue  # only the first choice: n>1 is never requested
            delta = choice.get("delta")
            if isinstance(delta, dict) and delta:
                self._delta(delta, out)
            if choice.get("finish_reason"):
                self._finish = choice["finish_reason"]
                self.finished = True
                self._advance(out, final=True)  # blocks close now; only the usage may wait
                self._close(out)
        if self.finished and self._usage_seen:
            self._end(out)

    def _plain_text(self, data: bytes, out: list[bytes]) -> bool:
        """Most of a stream: one more text fragment for the open text block. Its JSON string
        literal goes into the Anthropic event as it is, with no decoding and encoding."""
        m = _TEXT_CHUNK.fullmatch(data)  # the common shape whole: no finish, usage or error
        if m is None:
            if b'"finish_reason":"' in data or b'"usage":{' in data or b'"error"' in data:
                return False
            m = _TEXT_ONLY.search(data)
            if m is None:
                return False
        if m.end(1) - m.start(1) > 2:  # not ""
            self.committed = True
            self.content_events += 1
            out.append(
                b'%s%d,"delta":{"type":"text_delta","text":%s}}\n\n'
                % (_DELTA_HEAD, self._index, m.group(1))
            )
        return True

    def _plain_args(self, data: bytes, out: list[bytes]) -> bool:
        """An argument fragment of the open tool call, in OpenAI's exact form: pasted as is."""
        if b'"finish_reason":"' in data or b'"usage":{' in data or b'"error"' in data:
            return False
        m = _ARGS_ONLY.search(data)
        if m is None or self._book.open_call_at(int(m.group(1))) is not self._open_call:
            return False
        literal = m.group(2)
        if len(literal) > 2:
            self._open_call.add(literal)  # type: ignore[union-attr]
            self.committed = True
            self.content_events += 1
            out.append(
                b'%s%d,"delta":{"type":"input_json_delta","partial_json":%s}}\n\n'
                % (_DELTA_HEAD, self._index, literal)
            )
            self._advance(out, final=False)  # a waiting call may go once this one is complete
        return True

    def _delta(self, delta: JSONObj, out: list[bytes]) -> None:
        for name in REASONING_FIELDS:
            value = delta.get(name)
            if isinstance(value, str) and value:
                self._text("thinking", value, out)
                break
        text = delta.get("content")
        if isinstance(text, str) and text:
            self._text("text", text, out)
        refusal = delta.get("refusal")
        if isinstance(refusal, str) and refusal:
            self._refusal = True
            self._text("text", refusal, out)
        calls = delta.get("tool_calls")
        if isinstance(delta.get("function_call"), dict):  # the legacy functions API
            calls = [{"index": 0, "function": delta["function_call"]}]
        if isinstance(calls, list):
            for tc in calls:
                if isinstance(tc, dict):
                    self._tool(tc, out)

    def _fail(self, obj: JSONObj, out: list[bytes]) -> None:
        message, kind = error_message(obj)
        err = obj.get("error")
        code = err.get("code") if isinstance(err, dict) else None
        self.error = kind or "error"
        etype = anthropic_error_type(kind, code)
        body = {"type": "error", "error": {"type": etype, "message": message or "upstream error"}}
        out.append(anthropic_event("error", body))
        self._done = True

    # -- blocks ----------------------------------------------------------------------------

    def _start(self, out: list[bytes]) -> None:
        if self._started:
            return
        self._started = True
        message = {
            "id": self._id or self._fallback[1],
            "type": "message",
            "role": "assistant",
            "model": self._model or self._fallback[0],
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": anthropic_usage(Usage()),
        }
        out.append(anthropic_event("message_start", {"type": "message_start", "message": message}))

    def _open(self, kind: str, block: JSONObj, out: list[bytes]) -> None:
        self._close(out)
        self._start(out)
        self._index += 1
        self._block = kind
        start = {"type": "content_block_start", "index": self._index, "content_block": block}
        out.append(anthropic_event("content_block_start", start))

    def _close(self, out: list[bytes]) -> None:
        if self._block is None:
            return
        stop = {"type": "content_block_stop", "index": self._index}
        out.append(anthropic_event("content_block_stop", stop))
        if self._open_call is not None:
            self._open_call.state = "closed"
            self._open_call = None
        self._block = None

    def _delta_event(self, kind: str, field: str, value: str) -> bytes:
        self.committed = True
        self.content_events += 1
        return b'%s%d,"delta":{"type":"%s","%s":%s}}\n\n' % (
            _DELTA_HEAD,
            self._index,
            kind.encode(),
            field.encode(),
            jstr(value).encode(),
        )

    def _text(self, kind: str, value: str, out: list[bytes]) -> None:
        if self._block != kind:
            if kind == "text":
                self._open("text", {"type": "text", "text": ""}, out)
            else:
                self._open("thinking", {"type": "thinking", "thinking": "", "signature": ""}, out)
        if kind == "text":
            out.append(self._delta_event("text_delta", "text", value))
        else:
            out.append(self._delta_event("thinking_delta", "thinking", value))

    def _tool(self, tc: JSONObj, out: list[bytes]) -> None:
        fn = tc.get("function") if isinstance(tc.get("function"), dict) else {}
        call = self._book.resolve(tc, fn)
        name = fn.get("name")
        if isinstance(name, str) and name and not call.name:
            call.name = name
        args = fn.get("arguments")
        if isinstance(args, dict):  # a few servers send the object itself
            args = dumps(args)
        if isinstance(args, str) and args:
            call.add(args)
            if call.state == "open":
                out.append(self._delta_event("input_json_delta", "partial_json", args))
            elif call.state == "waiting":
                call.pending.append(args)
            # a delta for a call whose block is closed has nowhere to go (see docs)
        self._advance(out, final=False)

    def _advance(self, out: list[bytes], final: bool) -> None:
        """Open the next waiting call once the open one is complete (or at the end)."""
        while True:
            nxt = self._book.next_waiting()
            if nxt is None or not (nxt.name or final):
                return
            cur = self._open_call
            if cur is not None and not final and not cur.is_complete():
                return
            block = {"type": "tool_use", "id": nxt.id, "name": nxt.name, "input": {}}
            self._open("tool", block, out)
            self._open_call, nxt.state = nxt, "open"
            if nxt.pending:
                joined, nxt.pending = "".join(nxt.pending), []
                out.append(self._delta_event("input_json_delta", "partial_json", joined))
            else:
                self.committed = True  # a named call is content even before its arguments

    def _end(self, out: list[bytes]) -> None:
        if self._done:
            return
        self._advance(out, final=True)
        self._close(out)
        self._start(out)
        stop = anthropic_stop(self._finish, bool(self._book.calls))
        if self._refusal and stop == "end_turn":
            stop = "refusal"
        delta = {"stop_reason": stop, "stop_sequence": None}
        end = {"type": "message_delta", "delta": delta, "usage": anthropic_usage(self.usage)}
        out.append(anthropic_event("message_delta", end))
        out.append(anthropic_event("message_stop", {"type": "message_stop"}))
        self._done = True
