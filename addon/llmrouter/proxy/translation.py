"""The exchange's side of translation: what goes to a provider of the other API, and what comes
back to the client, in its own API. `wire.translate` does the work (pure); this module applies
it to a `Request`, a provider and the upstream's headers.

A provider whose API is the request's gets the client's bytes, with one exception: an
Anthropic-format provider never gets a thinking block without a signature (one the router
built from another provider's reasoning), since Anthropic rejects the whole request for it.
Such blocks are found with one substring search first, so the common body is never parsed here.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from llmrouter.config import Provider, key_of
from llmrouter.proxy import upstream
from llmrouter.wire import apis, translate
from llmrouter.wire.scrub import cap, printable
from llmrouter.wire.translate.common import dumps

if TYPE_CHECKING:
    from llmrouter.proxy.exchange import Request

logger = logging.getLogger("llmrouter")

_SIGNATURE = b'"signature"'


@dataclass(frozen=True, slots=True)
class Outgoing:
    """A translated request: where it goes and what it says (auth is the exchange's)."""

    url: str
    body: bytes


def outgoing(req: Request, prov: Provider, model: str | None, who: str) -> Outgoing | None:
    """The request for `prov` in its API, or None when the body is not a JSON object (nothing
    to translate). What had no equivalent is logged at debug level."""
    payload = req.payload
    if payload is None:
        return None
    out, dropped = translate.translate_request(
        payload,
        req.api,
        prov.api,
        model=model,
        max_tokens_field=prov.max_tokens_field,
        reasoning_model=prov.reasoning_model,
        reasoning_field=prov.reasoning_field,
    )
    _log_dropped(req, who, dropped)
    url = apis.upstream_url(prov.base_url, prov.api, translate.request_path(prov.api))
    # ASCII escapes: a lone surrogate from the client must not break the encode.
    return Outgoing(url, dumps(out).encode())


def scrubbed_body(req: Request, model: str | None, who: str) -> bytes | None:
    """An Anthropic request without its unsigned thinking blocks, or None when it has none (the
    client's bytes go as they are). Parses the body only if an empty signature is in it."""
    if not _empty_signature(req.body):
        return None
    payload = req.payload
    if payload is None:
        return None
    out, dropped = translate.translate_request(payload, "anthropic", "anthropic")
    if out is payload:
        return None
    _log_dropped(req, who, dropped)
    return dumps(out if model is None else {**out, "model": model}).encode()


def _empty_signature(body: bytes) -> bool:
    """Whether `body` has a `"signature"` member whose value is "" (any JSON whitespace). One
    substring search over the body (0.2 ms for 500 KB here), then a look at each match."""
    i = body.find(_SIGNATURE)
    while i >= 0:
        i += len(_SIGNATURE)
        rest = body[i : i + 16].lstrip()
        if rest[:1] == b":" and rest[1:].lstrip()[:2] == b'""':
            return True
        i = body.find(_SIGNATURE, i)
    return False


def provider_headers(
    headers: list[tuple[str, str]], req_api: apis.ApiName, prov: Provider
) -> list[tuple[str, str]]:
    """The client's headers as `prov` may see them, before auth: the other API's own headers
    go, and the body's type (and Anthropic's version) are the router's to set."""
    headers = upstream.forward_headers(headers)
    if prov.api == req_api:
        return headers
    return translate.request_headers(headers, req_api, prov.api)


def auth_header(prov: Provider, client: set[str], translated: bool) -> str:
    """The header that carries the provider's key: configured, else the client's choice, else
    the API's own. A translated request's client header belongs to the other API: ignored."""
    return apis.auth_header_for(prov.api, set() if translated else client, prov.auth_header)


def keyed_headers(
    headers: list[tuple[str, str]], req_api: apis.ApiName, prov: Provider, translated: bool,
    shown: str | None = None,
) -> list[tuple[str, str]]:  # fmt: skip
    """The headers `prov` gets: the client's own credentials never reach a provider that has
    its own key. `shown` stands in for the key's value (the flow display): one function, so
    the display never disagrees with what was sent."""
    headers = provider_headers(headers, req_api, prov)
    key = key_of(prov)
    if key is None:
        return headers
    name = auth_header(prov, {k.lower() for k, _ in headers}, translated)
    headers = [(k, v) for k, v in headers if k.lower() not in apis.AUTH_HEADERS]
    headers.append((name, apis.auth_value(name, key) if shown is None else shown))
    return headers


def answer(
    body: bytes, status: int, headers: list[tuple[str, str]], prov: Provider, req: Request
) -> tuple[int, list[tuple[str, str]], bytes]:
    """A non-streamed answer or error body in the client's API: (status, headers, body)."""
    status, body = translate.translate_response(
        body, status, prov.api, req.api, model=req.model, created=int(time.time()), seed=req.id
    )
    return status, translate.response_headers(headers, stream=False), body


StreamTranslator = translate.StreamTranslator


def stream_translator(req: Request, prov: Provider) -> StreamTranslator:
    """The translator of one streamed answer: it also meters it (commit, end, error, usage)."""
    return translate.stream_translator(
        prov.api, req.api, request=req.payload, created=int(time.time()), seed=req.id
    )


def stream_headers(headers: list[tuple[str, str]]) -> list[tuple[str, str]]:
    return translate.response_headers(headers, stream=True)


def _log_dropped(req: Request, who: str, dropped: list[str]) -> None:
    if dropped and logger.isEnabledFor(logging.DEBUG):
        names = printable(cap(", ".join(dropped), 500))  # names the client chose, some of them
        logger.debug(f"router: {req.id[:8]} {who}: dropped in translation: {names}")
