"""Anthropic Messages SSE -> OpenAI Chat Completions SSE, incrementally.

Fed raw bytes in any chunking, it returns whole `data:` chunks. The first chunk carries only
`role` (the OpenAI SDK concatenates every string it sees, so ids, names and the role appear
once); text goes to `content`, thinking to `reasoning_content` (DeepSeek's name, which most
OpenAI-format clients read), tool_use blocks to `tool_calls` numbered from 0 in order. The
finish chunk goes out at `message_delta`, the usage chunk (only when the client asked for it
with `stream_options.include_usage`) and `[DONE]` at `message_stop`.
"""

from __future__ import annotations

from llmrouter.wire.apis import Usage, stream_error_event
from llmrouter.wire.sse import SSEParser
from llmrouter.wire.translate.common import (
    JSONObj,
    dumps,
    error_message,
    jstr,
    loads,
    openai_finish,
    openai_usage,
    provider_usage,
    sse_data,
)

INTERRUPTED = "upstream stream interrupted"
# Anthropic's serialisation of a delta event, up to its block index, and what follows the index
_FAST = b'{"type":"content_block_delta","index":'
_FAST_KINDS = (
    (b',"delta":{"type":"text_delta","text":', b"content"),
    (b',"delta":{"type":"thinking_delta","thinking":', b"reasoning_content"),
    (b',"delta":{"type":"input_json_delta","partial_json":', None),
)


def _args(index: int, literal: bytes) -> bytes:
    """A tool-call delta carrying an argument fragment (a JSON string literal)."""
    return b'{"tool_calls":[{"index":%d,"function":{"arguments":%s}}]}' % (index, literal)


class ToOpenAIStream:
    """One streamed answer of an Anthropic-format provider, as an OpenAI client wants it.

    The attributes are those of `wire.sse.StreamMeter`, read from the PROVIDER's stream.
    """

    __slots__ = (
        "_blocks",
        "_created",
        "_done",
        "_head",
        "_id",
        "_include_usage",
        "_model",
        "_parser",
        "_tools",
        "committed",
        "content_events",
        "error",
        "finished",
        "usage",
    )

    def __init__(
        self, *, created: int = 0, include_usage: bool = True, model: str | None = None
    ) -> None:
        self._parser = SSEParser()
        self._created = created
        self._include_usage = include_usage
        self._id = ""
        self._model = model or ""
        self._head = b""  # the constant start of every chunk, once message_start gave the id
        self._blocks: dict[int, str] = {}  # block index -> "text" | "thinking" | "tool" | "skip"
        self._tools: dict[int, list[int]] = {}  # block index -> [tool call index, arg chars]
        self._done = False
        self.committed = False
        self.finished = False
        self.error: str | None = None
        self.usage = Usage()
        self.content_events = 0

    def feed(self, chunk: bytes) -> bytes:
        """Provider bytes in, whole client chunks out (possibly b"")."""
        if self._done:
            return b""
        out: list[bytes] = []
        for event, data in self._parser.feed(chunk):
            self._event(event, data, out)
            if self._done:
                break
        return b"".join(out)

    def finish(self) -> bytes:
        """The provider closed the stream: b"" after message_stop, else the error chunk."""
        return b"" if self.finished else self.abort(INTERRUPTED)

    def abort(self, message: str) -> bytes:
        if self._done:
            return b""
        self._done = True
        return stream_error_event("chat", message)

    # -- provider events -------------------------------------------------------------------

    def _event(self, event: bytes | None, data: bytes, out: list[bytes]) -> None:
        if data.startswith(_FAST) and data.endswith(b'"}}') and self._fast(data, out):
            return
        obj = loads(data)
        if not isinstance(obj, dict):
            return
        kind = obj.get("type") or (event.decode() if event else "")
        if kind == "content_block_delta":
            self._delta(obj, out)
        elif kind == "content_block_start":
            self._block_start(obj, out)
        elif kind == "content_block_stop":
            tool = self._tools.get(obj.get("index", -1))
            if tool is not None and tool[1] == 0:  # no input at all: "{}" as OpenAI sends it
                tool[1] = 2
                out.append(self._chunk(_args(tool[0], b'"{}"')))
        elif kind == "message_start":
            self._message_start(obj, out)
        elif kind == "message_delta":
            if obj.get("usage"):
                self.usage = self.usage.merged(provider_usage("anthropic", obj["usage"]))
            delta = obj.get("delta") if isinstance(obj.get("delta"), dict) else {}
            finish = openai_finish(delta.get("stop_reason"), bool(self._tools))
            out.append(self._chunk(b"{}", finish))
        elif kind == "message_stop":
            if self._include_usage:
                usage = dumps(openai_usage(self.usage))
                out.append(b'%s[],"usage":%s}\n\n' % (self._head, usage.encode()))
            out.append(b"data: [DONE]\n\n")
            self.finished = True
            self._done = True
        elif kind == "error":
            self._fail(obj, out)

    def _message_start(self, obj: JSONObj, out: list[bytes]) -> None:
        msg = obj.get("message") if isinstance(obj.get("message"), dict) else {}
        self._id = msg.get("id") or self._id
        self._model = msg.get("model") or self._model
        if msg.get("usage"):
            self.usage = self.usage.merged(provider_usage("anthropic", msg["usage"]))
        head = {"id": self._id, "object": "chat.completion.chunk", "created": self._created}
        head["model"] = self._model
        # everything before the choices list, so each chunk is one %-format
        self._head = b"data: " + dumps(head).encode()[:-1] + b',"choices":'
        out.append(self._chunk(b'{"role":"assistant"}'))

    def _chunk(self, delta: bytes, finish: str | None = None) -> bytes:
        if not self._head:  # no message_start from the provider: still a valid chunk
            self._message_start({}, [])
        fin = b"null" if finish is None else b'"%s"' % finish.encode()
        return b'%s[{"index":0,"delta":%s,"logprobs":null,"finish_reason":%s}]}\n\n' % (
            self._head,
            delta,
            fin,
        )

    def _content(self, delta: bytes, out: list[bytes]) -> None:
        self.committed = True
        self.content_events += 1
        out.append(self._chunk(delta))

    def _fast(self, data: bytes, out: list[bytes]) -> bool:
        """A delta in Anthropic's own compact form: its JSON string literal goes into the
        OpenAI chunk as it is, with no decoding and encoding (most of a stream's events)."""
        comma = data.find(b",", len(_FAST))
        for marker, field in _FAST_KINDS:
            if not data.startswith(marker, comma):
                continue
            literal = data[comma + len(marker) : -2]
            if literal == b'""':
                return True
            if field is not None:
                self._content(b'{"%s":%s}' % (field, literal), out)
                return True
            tool = self._tools.get(int(data[len(_FAST) : comma]))
            if tool is not None:
                tool[1] += len(literal) - 2
                self._content(_args(tool[0], literal), out)
            return True
        return False

    def _block_start(self, obj: JSONObj, out: list[bytes]) -> None:
        index = obj.get("index")
        block = obj.get("content_block")
        if not isinstance(index, int) or not isinstance(block, dict):
            return
        kind = block.get("type")
        if kind == "text":
            self._blocks[index] = "text"
            if block.get("text"):
                self._content(b'{"content":%s}' % jstr(block["text"]).encode(), out)
        elif kind == "thinking":
            self._blocks[index] = "thinking"
            if block.get("thinking"):
                self._content(b'{"reasoning_content":%s}' % jstr(block["thinking"]).encode(), out)
        elif kind == "tool_use":
            self._blocks[index] = "tool"
            tool = [len(self._tools), 0]
            self._tools[index] = tool
            # Some Anthropic-compatible servers put the whole input in the start block.
            args = dumps(block["input"]) if block.get("input") else ""
            tool[1] = len(args)
            call = {
                "index": tool[0],
                "id": block.get("id") or f"call_{tool[0]}",
                "type": "function",
                "function": {"name": block.get("name") or "", "arguments": args},
            }
            self._content(dumps({"tool_calls": [call]}).encode(), out)
        else:
            self._blocks[index] = "skip"  # redacted thinking, server tools: no OpenAI form

    def _delta(self, obj: JSONObj, out: list[bytes]) -> None:
        delta = obj.get("delta")
        if not isinstance(delta, dict):
            return
        kind = delta.get("type")
        if kind == "text_delta":
            if delta.get("text"):
                self._content(b'{"content":%s}' % jstr(delta["text"]).encode(), out)
        elif kind == "thinking_delta":
            if delta.get("thinking"):
                self._content(b'{"reasoning_content":%s}' % jstr(delta["thinking"]).encode(), out)
        elif kind == "input_json_delta":
            tool = self._tools.get(obj.get("index", -1))
            part = delta.get("partial_json")
            if tool is not None and isinstance(part, str) and part:
                tool[1] += len(part)
                self._content(_args(tool[0], jstr(part).encode()), out)

    def _fail(self, obj: JSONObj, out: list[bytes]) -> None:
        message, kind = error_message(obj)
        self.error = kind or "error"
        err = {"message": message or "upstream error", "type": kind or "server_error"}
        out.append(sse_data({"error": {**err, "param": None, "code": kind}}))
        self._done = True
