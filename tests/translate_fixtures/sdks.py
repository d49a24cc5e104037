"""The official SDKs as oracles: bytes in through httpx's MockTransport, their own accumulated
message out. No network."""

from __future__ import annotations

from typing import Any

import anthropic
import httpx2
import openai

_ASK: list[dict[str, Any]] = [{"role": "user", "content": "hi"}]


def _http(body: bytes, ctype: str, status: int = 200) -> httpx2.Client:
    def handler(request: httpx2.Request) -> httpx2.Response:
        return httpx2.Response(status, headers={"content-type": ctype}, content=body)

    return httpx2.Client(transport=httpx2.MockTransport(handler))


def anthropic_client(body: bytes, ctype: str, status: int = 200) -> anthropic.Anthropic:
    return anthropic.Anthropic(
        api_key="test",
        base_url="http://provider.test",
        max_retries=0,
        http_client=_http(body, ctype, status),
    )


def openai_client(body: bytes, ctype: str, status: int = 200) -> openai.OpenAI:
    return openai.OpenAI(
        api_key="test",
        base_url="http://provider.test/v1",
        max_retries=0,
        http_client=_http(body, ctype, status),
    )


def anthropic_streamed(stream: bytes) -> Any:
    client = anthropic_client(stream, "text/event-stream")
    with client.messages.stream(model="m", max_tokens=64, messages=_ASK) as s:  # type: ignore[arg-type]
        return s.get_final_message()


def anthropic_body(body: bytes, status: int = 200) -> Any:
    client = anthropic_client(body, "application/json", status)
    return client.messages.create(model="m", max_tokens=64, messages=_ASK)  # type: ignore[arg-type]


def openai_streamed(stream: bytes) -> Any:
    client = openai_client(stream, "text/event-stream")
    with client.chat.completions.stream(model="m", messages=_ASK) as s:  # type: ignore[arg-type]
        try:
            return s.get_final_completion()
        except (openai.LengthFinishReasonError, openai.ContentFilterFinishReasonError):
            # Its parse step refuses these two finishes; the accumulated snapshot is the answer.
            return s.current_completion_snapshot


def openai_body(body: bytes, status: int = 200) -> Any:
    client = openai_client(body, "application/json", status)
    return client.chat.completions.create(model="m", messages=_ASK)  # type: ignore[arg-type]
