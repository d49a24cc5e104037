"""The fake provider's Anthropic Messages payloads, and its thinking signatures.

Private helper of :mod:`llmrouter.tools.fakeprovider`. Thinking blocks are signed the way only
"Anthropic" can: an HMAC of the thinking text under one secret every fake Anthropic provider
shares (the real signatures verify across Anthropic's deployments too). A strict fake
(``_fakecheck``) rejects a thinking block whose signature it did not issue, as the real API does.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from typing import Any

from llmrouter.tools._fakewire import Api, Reply, sse

_SECRET = b"llmrouter fake anthropic signing key"
_ERRORS: dict[int, str] = {
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    529: "overloaded_error",
}


def sign(thinking: str) -> str:
    """The signature a fake Anthropic provider gives a thinking block with this text."""
    mac = hmac.new(_SECRET, thinking.encode("utf-8", "surrogatepass"), hashlib.sha256)
    return base64.b64encode(mac.digest()).decode()


def error_body(status: int, message: str) -> dict[str, Any]:
    fallback = "api_error" if status >= 500 else "invalid_request_error"
    return {"type": "error", "error": {"type": _ERRORS.get(status, fallback), "message": message}}


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
    def _index(r: Reply) -> int:
        """The index of the text or tool block: a thinking block comes first."""
        return 1 if r.thinking else 0

    @staticmethod
    def _block(r: Reply, done: bool) -> dict[str, Any]:
        if r.tool:
            args = r.tool["input"] if done else {}
            return {"type": "tool_use", "id": r.tool["id"], "name": r.tool["name"], "input": args}
        return {"type": "text", "text": r.text if done else ""}

    def _message(self, r: Reply, done: bool) -> dict[str, Any]:
        content = [self._block(r, True)] if done else []
        if done and r.thinking:
            think = {"type": "thinking", "thinking": r.thinking, "signature": sign(r.thinking)}
            content.insert(0, think)
        return {
            "id": r.id,
            "type": "message",
            "role": "assistant",
            "model": r.model,
            "content": content,
            "stop_reason": self._stop(r) if done else None,
            "stop_sequence": None,
            "usage": self._usage(r, r.output_tokens if done else 1),
        }

    def body(self, r: Reply) -> dict[str, Any]:
        return self._message(r, done=True)

    @staticmethod
    def _ev(data: dict[str, Any]) -> bytes:
        return sse(data, data["type"])

    def _thinking(self, r: Reply) -> list[bytes]:
        """A whole thinking block, as the real stream sends it: start, text, signature, stop."""
        if not r.thinking:
            return []
        start = {"type": "thinking", "thinking": "", "signature": ""}
        deltas = [
            {"type": "thinking_delta", "thinking": r.thinking},
            {"type": "signature_delta", "signature": sign(r.thinking)},
        ]
        return [
            self._ev({"type": "content_block_start", "index": 0, "content_block": start}),
            *(self._ev({"type": "content_block_delta", "index": 0, "delta": d}) for d in deltas),
            self._ev({"type": "content_block_stop", "index": 0}),
        ]

    def opening(self, r: Reply) -> list[bytes]:
        start = {"type": "content_block_start", "index": self._index(r),
                 "content_block": self._block(r, False)}  # fmt: skip
        return [
            self._ev({"type": "message_start", "message": self._message(r, done=False)}),
            *self._thinking(r),
            self._ev(start),
            self._ev({"type": "ping"}),
        ]

    def delta(self, r: Reply, i: int) -> bytes:
        if r.tool:
            delta = {"type": "input_json_delta", "partial_json": r.pieces[i]}
        else:
            delta = {"type": "text_delta", "text": r.pieces[i]}
        return self._ev({"type": "content_block_delta", "index": self._index(r), "delta": delta})

    def closing(self, r: Reply) -> list[bytes]:
        return [
            self._ev({"type": "content_block_stop", "index": self._index(r)}),
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
        return error_body(status, message)
