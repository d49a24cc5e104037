"""Anthropic Messages <-> OpenAI Chat Completions: requests, answers, errors and streams (pure).

The public surface, all plain data in and out:

- `translate_request(payload, source_api, target_api, *, model, ...) -> (payload, dropped)`
  The request for the provider. `dropped` names what had no equivalent (log it at debug).
  Anthropic -> Anthropic is not a no-op: thinking blocks without an Anthropic signature (the
  ones this router built from another provider's reasoning) are removed.
- `translate_response(body, status, provider_api, client_api, ...) -> (status, body)`
  A non-streamed answer or error body, in the client's API.
- `translate_error(body, status, provider_api, client_api) -> (status, body)`
- `stream_translator(provider_api, client_api, *, request, created, seed) -> StreamTranslator`
  `feed(chunk) -> bytes` (whole client events), `finish() -> bytes` (the provider closed the
  stream: the held end, or the terminal error event if the answer was cut), `abort(message)
  -> bytes` (the client format's terminal error event). Its `committed`, `finished`, `error`,
  `usage` and `content_events` mean what `wire.sse.StreamMeter`'s do, read from the
  provider's stream, so the relay's commit point works unchanged.
- `request_path(target_api)`, `request_headers(headers, source_api, target_api)`,
  `response_headers(headers, stream)`: paths and headers of a translated exchange.

What is lost in translation: docs/TRANSLATION.md.
"""

from __future__ import annotations

from typing import Protocol

from llmrouter.wire.apis import ApiName, Usage
from llmrouter.wire.translate.common import JSONObj
from llmrouter.wire.translate.headers import request_headers, request_path, response_headers
from llmrouter.wire.translate.models import MaxTokensField, openai_rules
from llmrouter.wire.translate.responses import translate_error, translate_response
from llmrouter.wire.translate.thinking import scrub_unsigned
from llmrouter.wire.translate.to_anthropic_request import openai_to_anthropic
from llmrouter.wire.translate.to_anthropic_stream import ToAnthropicStream
from llmrouter.wire.translate.to_openai_request import anthropic_to_openai
from llmrouter.wire.translate.to_openai_stream import ToOpenAIStream

__all__ = [
    "StreamTranslator",
    "openai_rules",
    "request_headers",
    "request_path",
    "response_headers",
    "stream_translator",
    "translate_error",
    "translate_request",
    "translate_response",
]


class StreamTranslator(Protocol):
    committed: bool
    finished: bool
    error: str | None
    usage: Usage
    content_events: int

    def feed(self, chunk: bytes) -> bytes: ...
    def finish(self) -> bytes: ...
    def abort(self, message: str) -> bytes: ...


def translate_request(
    payload: JSONObj,
    source_api: ApiName,
    target_api: ApiName,
    *,
    model: str | None = None,
    max_tokens_field: MaxTokensField | None = None,
    reasoning_model: bool | None = None,
    reasoning_field: str | None = None,
    default_max_tokens: int = 4096,
) -> tuple[JSONObj, list[str]]:
    """The request as `target_api` wants it, and the names of the fields that were dropped.

    `model` is the model sent to the provider (after the provider's model map); it picks the
    OpenAI max-tokens field and sampling rules (`models.openai_rules`) and whether earlier
    thinking is echoed back (`models.reasoning_echo`), which the provider settings
    `max_tokens_field` / `reasoning_model` / `reasoning_field` ("" = never) override.
    The input is never mutated.
    """
    if source_api == target_api:
        if target_api == "anthropic":
            return scrub_unsigned(payload)
        return payload, []
    if target_api == "openai":
        return anthropic_to_openai(
            payload,
            model=model,
            max_tokens_field=max_tokens_field,
            reasoning_model=reasoning_model,
            reasoning_field=reasoning_field,
        )
    return openai_to_anthropic(payload, model=model, default_max_tokens=default_max_tokens)


def stream_translator(
    provider_api: ApiName,
    client_api: ApiName,
    *,
    request: JSONObj | None = None,
    created: int = 0,
    seed: str = "0",
) -> StreamTranslator:
    """A translator for one streamed answer. `request` is the CLIENT's payload (its model is
    the fallback model name; OpenAI clients get a usage chunk only if they asked for one);
    `created` is the Unix time for OpenAI chunks; `seed` (the request id) makes the ids the
    router has to invent unique."""
    if provider_api == client_api:
        raise ValueError("no translation between one API and itself")
    request = request or {}
    model = request.get("model") if isinstance(request.get("model"), str) else None
    if client_api == "anthropic":
        return ToAnthropicStream(model=model, seed=seed)
    opts = request.get("stream_options")
    usage = isinstance(opts, dict) and opts.get("include_usage") is True
    return ToOpenAIStream(created=created, include_usage=usage, model=model)
