"""Wire payloads of the fake provider, one builder class per API.

Private helper of :mod:`llmrouter.tools.fakeprovider`. Each builder turns a :class:`Reply`
into the exact bytes the real API would send: a non-stream body, or SSE events split
into ``opening`` (lifecycle events before the first token), ``delta`` (one content
event), ``closing`` (terminal events) and ``inband_error``.
"""

from __future__ import annotations

import base64
import hashlib
import itertools
import json
import struct
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
    """``n`` non-empty pieces whose concatenation always contains "Hello from NAME."."""
    base = ["Hello", " from", f" {name}."]
    if n <= 1:
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
_ANTHROPIC_ERRORS: dict[int, str] = {
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    529: "overloaded_error",
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


class Anthropic(Api):
    name = "anthropic"
    suffix = "/v1/messages"
    id_prefix = "msg_"
    overloaded = "Overloaded"

    def _usage(self, r: Reply, output: int) -> dict[str, int]:
        return {
            "input_tokens": r.input_tokens,
            "cache_creation_input_tokens": r.cache_write,
            "cache_read_input_tokens": r.cache_read,
            "output_tokens": output,
        }

    @staticmethod
    def _stop(r: Reply) -> str:
        return "tool_use" if r.tool else "end_turn"

    @staticmethod
    def _block(r: Reply, done: bool) -> dict[str, Any]:
        if r.tool:
            args = r.tool["input"] if done else {}
            return {"type": "tool_use", "id": r.tool["id"], "name": r.tool["name"], "input": args}
        return {"type": "text", "text": r.text if done else ""}

    def _message(self, r: Reply, done: bool) -> dict[str, Any]:
        return {
            "id": r.id,
            "type": "message",
            "role": "assistant",
            "model": r.model,
            "content": [self._block(r, True)] if done else [],
            "stop_reason": self._stop(r) if done else None,
            "stop_sequence": None,
            "usage": self._usage(r, r.output_tokens if done else 1),
        }

    def body(self, r: Reply) -> dict[str, Any]:
        return self._message(r, done=True)

    @staticmethod
    def _ev(data: dict[str, Any]) -> bytes:
        return sse(data, data["type"])

    def opening(self, r: Reply) -> list[bytes]:
        return [
            self._ev({"type": "message_start", "message": self._message(r, done=False)}),
            self._ev(
                {
                    "type": "content_block_start",
                    "index": 0,
                    "content_block": self._block(r, False),
                }
            ),
            self._ev({"type": "ping"}),
        ]

    def delta(self, r: Reply, i: int) -> bytes:
        if r.tool:
            delta = {"type": "input_json_delta", "partial_json": r.pieces[i]}
        else:
            delta = {"type": "text_delta", "text": r.pieces[i]}
        return self._ev({"type": "content_block_delta", "index": 0, "delta": delta})

    def closing(self, r: Reply) -> list[bytes]:
        return [
            self._ev({"type": "content_block_stop", "index": 0}),
            self._ev(
                {
                    "type": "message_delta",
                    "delta": {"stop_reason": self._stop(r), "stop_sequence": None},
                    "usage": {"output_tokens": r.output_tokens},
                }
            ),
            self._ev({"type": "message_stop"}),
        ]

    def inband_error(self, r: Reply) -> bytes:
        return self._ev(self.error(529, self.overloaded))

    def error(self, status: int, message: str) -> dict[str, Any]:
        fallback = "api_error" if status >= 500 else "invalid_request_error"
        kind = _ANTHROPIC_ERRORS.get(status, fallback)
        return {"type": "error", "error": {"type": kind, "message": message}}


class _OpenAIChunked(Api):
    """Chat and legacy completions: ``data:`` chunks, optional usage chunk, ``[DONE]``."""

    obj: ClassVar[str]
    chunk_obj: ClassVar[str]

    def _choice(self, piece: str | None, finish: str | None, *, full: bool = False) -> dict:
        raise NotImplementedError

    def _usage(self, r: Reply) -> dict[str, Any]:
        return {
            "prompt_tokens": r.input_tokens,
            "completion_tokens": r.output_tokens,
            "total_tokens": r.input_tokens + r.output_tokens,
            "prompt_tokens_details": {"cached_tokens": r.cache_read},
        }

    def _envelope(self, r: Reply, obj: str, choices: list[dict[str, Any]]) -> dict[str, Any]:
        return {
            "id": r.id,
            "object": obj,
            "created": r.created,
            "model": r.model,
            "system_fingerprint": "fp_fake",
            "choices": choices,
        }

    def body(self, r: Reply) -> dict[str, Any]:
        env = self._envelope(r, self.obj, [self._choice(r.text, "stop", full=True)])
        return env | {"usage": self._usage(r)}

    def _chunk(self, r: Reply, choice: dict[str, Any]) -> bytes:
        env = self._envelope(r, self.chunk_obj, [choice])
        # With include_usage the real API adds "usage": null to every chunk but the last.
        return sse(env | {"usage": None} if r.include_usage else env)

    def delta(self, r: Reply, i: int) -> bytes:
        return self._chunk(r, self._choice(r.pieces[i], None))

    def closing(self, r: Reply) -> list[bytes]:
        out = [self._chunk(r, self._choice(None, "stop"))]
        if r.include_usage:
            usage = self._envelope(r, self.chunk_obj, []) | {"usage": self._usage(r)}
            out.append(sse(usage))
        return [*out, sse("[DONE]")]


class Chat(_OpenAIChunked):
    name = "chat"
    suffix = "/chat/completions"
    id_prefix = "chatcmpl-"
    obj = "chat.completion"
    chunk_obj = "chat.completion.chunk"

    def _choice(self, piece: str | None, finish: str | None, *, full: bool = False) -> dict:
        if full:
            key, value = "message", {"role": "assistant", "content": piece, "refusal": None}
        else:
            key, value = "delta", ({} if piece is None else {"content": piece})
        return {"index": 0, key: value, "logprobs": None, "finish_reason": finish}

    def opening(self, r: Reply) -> list[bytes]:
        role = {"role": "assistant", "content": None if r.tool else ""}
        return [
            self._chunk(r, {"index": 0, "delta": role, "logprobs": None, "finish_reason": None})
        ]

    # A tool call: `tool_calls` with the arguments as JSON text, finish_reason "tool_calls".

    @staticmethod
    def _call(r: Reply, arguments: str, first: bool) -> dict[str, Any]:
        assert r.tool is not None
        call: dict[str, Any] = {"index": 0, "function": {"arguments": arguments}}
        if first:
            call |= {"id": r.tool["id"], "type": "function"}
            call["function"] = {"name": r.tool["name"], "arguments": arguments}
        return call

    def body(self, r: Reply) -> dict[str, Any]:
        if not r.tool:
            return super().body(r)
        call = self._call(r, r.text, True)
        del call["index"]
        message = {"role": "assistant", "content": None, "refusal": None, "tool_calls": [call]}
        choice = {"index": 0, "message": message, "logprobs": None, "finish_reason": "tool_calls"}
        return self._envelope(r, self.obj, [choice]) | {"usage": self._usage(r)}

    def delta(self, r: Reply, i: int) -> bytes:
        if not r.tool:
            return super().delta(r, i)
        delta = {"tool_calls": [self._call(r, r.pieces[i], i == 0)]}
        return self._chunk(r, {"index": 0, "delta": delta, "logprobs": None, "finish_reason": None})

    def closing(self, r: Reply) -> list[bytes]:
        if not r.tool:
            return super().closing(r)
        out = [self._chunk(r, self._choice(None, "tool_calls"))]
        if r.include_usage:
            out.append(sse(self._envelope(r, self.chunk_obj, []) | {"usage": self._usage(r)}))
        return [*out, sse("[DONE]")]


class Completions(_OpenAIChunked):
    name = "completions"
    suffix = "/completions"
    id_prefix = "cmpl-"
    obj = "text_completion"
    chunk_obj = "text_completion"  # legacy stream chunks reuse the object name

    def _choice(self, piece: str | None, finish: str | None, *, full: bool = False) -> dict:
        return {"text": piece or "", "index": 0, "logprobs": None, "finish_reason": finish}


class Responses(Api):
    name = "responses"
    suffix = "/responses"
    id_prefix = "resp_"

    def _usage(self, r: Reply) -> dict[str, Any]:
        return {
            "input_tokens": r.input_tokens,
            "input_tokens_details": {"cached_tokens": r.cache_read},
            "output_tokens": r.output_tokens,
            "output_tokens_details": {"reasoning_tokens": 0},
            "total_tokens": r.input_tokens + r.output_tokens,
        }

    @staticmethod
    def _part(text: str) -> dict[str, Any]:
        return {"type": "output_text", "text": text, "annotations": [], "logprobs": []}

    def _item(self, r: Reply, done: bool) -> dict[str, Any]:
        content = [self._part(r.text)] if done else []
        status = "completed" if done else "in_progress"
        item_id = "msg_" + r.id.removeprefix("resp_")
        return {
            "id": item_id,
            "type": "message",
            "status": status,
            "role": "assistant",
            "content": content,
        }

    def _response(self, r: Reply, done: bool) -> dict[str, Any]:
        req = r.request
        return {
            "id": r.id,
            "object": "response",
            "created_at": r.created,
            "status": "completed" if done else "in_progress",
            "error": None,
            "incomplete_details": None,
            "instructions": req.get("instructions"),
            "max_output_tokens": req.get("max_output_tokens"),
            "model": r.model,
            "output": [self._item(r, True)] if done else [],
            "parallel_tool_calls": True,
            "previous_response_id": req.get("previous_response_id"),
            "reasoning": {"effort": None, "summary": None},
            "store": req.get("store", True),
            "temperature": req.get("temperature", 1.0),
            "text": {"format": {"type": "text"}},
            "tool_choice": "auto",
            "tools": [],
            "top_p": req.get("top_p", 1.0),
            "truncation": "disabled",
            "usage": self._usage(r) if done else None,
            "user": None,
            "metadata": req.get("metadata") or {},
        }

    def body(self, r: Reply) -> dict[str, Any]:
        return self._response(r, done=True)

    def _ev(self, r: Reply, kind: str, **data: Any) -> bytes:
        return sse({"type": kind, "sequence_number": next(r.seq), **data}, kind)

    def _at(self, r: Reply) -> dict[str, Any]:
        return {"item_id": self._item(r, False)["id"], "output_index": 0, "content_index": 0}

    def opening(self, r: Reply) -> list[bytes]:
        return [
            self._ev(r, "response.created", response=self._response(r, False)),
            self._ev(r, "response.in_progress", response=self._response(r, False)),
            self._ev(r, "response.output_item.added", output_index=0, item=self._item(r, False)),
            self._ev(r, "response.content_part.added", **self._at(r), part=self._part("")),
        ]

    def delta(self, r: Reply, i: int) -> bytes:
        return self._ev(
            r, "response.output_text.delta", **self._at(r), delta=r.pieces[i], logprobs=[]
        )

    def closing(self, r: Reply) -> list[bytes]:
        return [
            self._ev(r, "response.output_text.done", **self._at(r), text=r.text, logprobs=[]),
            self._ev(r, "response.content_part.done", **self._at(r), part=self._part(r.text)),
            self._ev(r, "response.output_item.done", output_index=0, item=self._item(r, True)),
            self._ev(r, "response.completed", response=self._response(r, True)),
        ]

    def inband_error(self, r: Reply) -> bytes:
        return self._ev(r, "error", code="server_error", message=self.overloaded, param=None)


class Embeddings(Api):
    name = "embeddings"
    suffix = "/embeddings"
    id_prefix = "emb-"

    def body(self, r: Reply) -> dict[str, Any]:
        inputs = r.request.get("input", "")
        inputs = inputs if isinstance(inputs, list) else [inputs]
        dims = int(r.request.get("dimensions") or 8)
        # The openai SDK asks for base64 (packed float32) unless told otherwise.
        b64 = r.request.get("encoding_format") == "base64"
        data: list[dict[str, Any]] = []
        for i, x in enumerate(inputs):
            vec = _vector(json.dumps(x), dims)
            packed = base64.b64encode(struct.pack(f"<{dims}f", *vec)).decode()
            data.append({"object": "embedding", "index": i, "embedding": packed if b64 else vec})
        usage = {"prompt_tokens": r.input_tokens, "total_tokens": r.input_tokens}
        return {"object": "list", "data": data, "model": r.model, "usage": usage}


def _vector(text: str, dims: int) -> list[float]:
    """Deterministic unit-ish floats derived from the input, so equal inputs embed equally."""
    raw = b"".join(hashlib.sha256(f"{i}:{text}".encode()).digest() for i in range(dims // 8 + 1))
    ints = struct.unpack(f"<{dims}I", raw[: dims * 4])
    return [round(v / 2**31 - 1.0, 6) for v in ints]


APIS: dict[str, Api] = {
    a.name: a for a in (Anthropic(), Chat(), Completions(), Responses(), Embeddings())
}
