"""The fake provider's OpenAI payloads: Chat Completions, legacy Completions, Responses and
Embeddings. Private helper of :mod:`llmrouter.tools.fakeprovider`.

A chat answer with reasoning (``Reply.thinking``) carries it as DeepSeek does, in
``reasoning_content`` (deltas before the content, or a field of the message).
"""

from __future__ import annotations

import base64
import hashlib
import json
import struct
from typing import Any, ClassVar

from llmrouter.tools._fakewire import Api, Reply, sse


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
        deltas = [role]
        if r.thinking:  # DeepSeek's reasoning deltas come before the content
            deltas.append({"content": None, "reasoning_content": r.thinking})
        return [
            self._chunk(r, {"index": 0, "delta": d, "logprobs": None, "finish_reason": None})
            for d in deltas
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
            body = super().body(r)
        else:
            call = self._call(r, r.text, True)
            del call["index"]
            message = {"role": "assistant", "content": None, "refusal": None, "tool_calls": [call]}
            choice = {"index": 0, "message": message, "logprobs": None,
                      "finish_reason": "tool_calls"}  # fmt: skip
            body = self._envelope(r, self.obj, [choice]) | {"usage": self._usage(r)}
        if r.thinking:
            body["choices"][0]["message"]["reasoning_content"] = r.thinking
        return body

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
