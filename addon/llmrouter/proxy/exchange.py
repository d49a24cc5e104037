"""One attempt against one provider: the request as sent, the answer, and the streaming commit.

An attempt ends retryable (try the next candidate at once), final (the client gets it), or,
for a stream, committed (its first content event arrived: it is handed off and relayed).
`Request` and `Answer` are the plain data the addon and the engine exchange.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import aiohttp

from llmrouter.config import Provider, key_of
from llmrouter.proxy import translation, upstream
from llmrouter.proxy.attempt import Attempt
from llmrouter.proxy.body import Head, parse_object, read_head, set_model
from llmrouter.proxy.relay import Relay, RelayEnd, hold_until_commit
from llmrouter.routing.strategies import Selection
from llmrouter.state.health import parse_retry_after
from llmrouter.wire import apis
from llmrouter.wire.apis import ApiName, Flavor
from llmrouter.wire.outcome import Failure, Outcome, classify_status, failure_of
from llmrouter.wire.scrub import Scrubber, model_name
from llmrouter.wire.sse import StreamMeter

if TYPE_CHECKING:
    from llmrouter.proxy.planning import Plan
    from llmrouter.state.backends import StateBackend

# Bytes a stream may send before its first content event: lifecycle events are small (an
# OpenAI response.created echoes the instructions and tools: still far below this).
HOLD_LIMIT = 8 * 2**20

# (attempt, outcome, error, failure, retry_after, ended): the engine's bookkeeping at an end
EndFn = Callable[..., None]


_LAZY: Any = object()  # the payload is parsed on first use


class Request:
    """An inference request, as plain data taken from the flow.

    Its JSON body is read once for what every request needs (`model`, `stream`: the head);
    the whole `payload` is parsed only if something asks for it, since a full parse of a
    500 KB body costs more CPU than mitmproxy spends on the whole request.
    """

    __slots__ = ("_payload", "api", "body", "flavor", "headers", "id", "method", "model",
                 "path", "route_header", "stream")  # fmt: skip

    def __init__(
        self,
        id: str,
        method: str,
        path: str,  # with the query string
        headers: list[tuple[str, str]],  # the client's, minus hop-by-hop and router headers
        body: bytes,
        payload: dict[str, Any] | None = _LAZY,
        api: ApiName = "anthropic",
        flavor: Flavor = "anthropic",
        head: Head | None = None,
    ) -> None:
        self.id, self.method, self.path, self.headers, self.body = id, method, path, headers, body
        self.api, self.flavor = api, flavor
        self.route_header: str | None = None  # X-Router-Route, taken off the headers
        self._payload = payload
        if payload is _LAZY:
            head = head or read_head(body)
            self.model = head.model
            self.stream = head.stream is True
            if not head.is_object:
                self._payload = None
        else:
            m = payload.get("model") if payload else None
            self.model = m if isinstance(m, str) else None
            self.stream = bool(payload and payload.get("stream") is True)

    @property
    def payload(self) -> dict[str, Any] | None:
        """The whole JSON body (None when it is not an object), parsed on first use."""
        if self._payload is _LAZY:
            self._payload = parse_object(self.body)
        return self._payload


@dataclass(slots=True)
class Answer:
    status: int
    headers: list[tuple[str, str]]
    body: bytes = b""
    relay: Relay | None = None  # a committed stream, to hand off
    attempts: list[Attempt] = field(default_factory=list)
    selection: Selection | None = None
    served_by: Attempt | None = None  # the attempt whose answer this is
    plan: Plan | None = None  # route, conversation, binding: for headers, comment, explain


class Exchange:
    """Makes attempts with the router's aiohttp session; the engine does the bookkeeping."""

    def __init__(self, session: aiohttp.ClientSession, state: StateBackend, end: EndFn) -> None:
        self.session = session
        self.state = state  # health and latency: this process's, or shared
        self._end = end
        self.scrub = Scrubber(())  # every configured key: set by the engine on each config
        self.max_response = 64 * 2**20  # bytes of a buffered answer (max_response_mb)

    def _request_headers(
        self, req: Request, prov: Provider, translated: bool = False
    ) -> list[tuple[str, str]]:
        headers = translation.keyed_headers(req.headers, req.api, prov, translated)
        headers.append(("accept-encoding", "identity" if req.stream else "gzip, deflate"))
        return headers

    def _body_for(self, req: Request, model: str | None, prov: Provider, who: str) -> bytes:
        """The body with `model` in it: the client's bytes when the model is unchanged, else
        changed in place; re-serialized only when the place is ambiguous, or when unsigned
        thinking blocks must go (an Anthropic provider)."""
        if prov.api == "anthropic":
            scrubbed = translation.scrubbed_body(req, model, who)
            if scrubbed is not None:
                return scrubbed
        if model == req.model or req.model is None:
            return req.body
        body = set_model(req.body, req.model, model) if model is not None else None
        if body is None and req.payload is not None:  # the place was ambiguous: rebuild it
            # ASCII escapes: a lone surrogate from the client must not break the encode.
            body = json.dumps({**req.payload, "model": model}).encode()
        return body if body is not None else req.body

    async def run(
        self, t: dict[str, float], prov: Provider, req: Request, att: Attempt, model: str | None
    ) -> tuple[Answer | None, bool]:
        """Returns (answer, retry): the answer is final unless retry; a retryable HTTP error's
        answer is kept in case every candidate fails. `model` is the model to send (the
        route's policy decides it: route > provider `models` > requested)."""
        att.model = model_name(model)
        att.api, att.translated = prov.api, prov.api != req.api
        if att.translated:
            out = translation.outgoing(req, prov, model, att.provider)
            if out is None:
                return self._untranslatable(req, att)
            att.url, body = out.url, out.body
        else:
            body = self._body_for(req, model, prov, att.provider)
            att.url = apis.upstream_url(prov.base_url, prov.api, req.path)
        att.sent_body = body
        att.price_ref = (prov.price, prov.base_url)
        remaining = att.ctx.deadline_at - time.monotonic()
        wait = t["first_byte_timeout"] if req.stream else t["response_timeout"]
        try:
            resp = await upstream.send(
                self.session,
                req.method,
                att.url,
                self._request_headers(req, prov, att.translated),
                body,
                connect_timeout=min(t["connect_timeout"], remaining),
                header_timeout=min(wait, remaining),
            )
        except asyncio.CancelledError:
            self._end(att, Outcome.CLIENT_CLOSED, "client went away")
            raise
        except Exception as e:
            self._end(att, *upstream.describe(e))
            return None, True
        att.status = resp.status
        att.ttfb = time.monotonic()
        headers = upstream.response_headers(resp.headers.items())
        outcome, retryable, failure = classify_status(resp.status)
        try:
            if retryable:
                answer, retry = await self._retryable(resp, headers, prov, att, outcome, failure)
                return self._client_format(answer, prov, req, att), retry
            ctype = resp.headers.get("content-type", "")
            sse = ctype.startswith("text/event-stream")
            if req.stream and outcome is Outcome.OK and sse:
                return await self._stream(t, req, resp, headers, att, prov)
            # The whole answer within response_timeout of sending: silence or a trickle fails
            # over like a missing answer.
            now = time.monotonic()
            within = min(att.ctx.deadline_at, att.t0 + t["response_timeout"]) - now
            body = await upstream.read_body(resp, max(0.001, within), cap=self.max_response)
        except asyncio.CancelledError:
            resp.close()
            self._end(att, Outcome.CLIENT_CLOSED, "client went away")
            raise
        except Exception as e:
            resp.close()
            self._end(att, *upstream.describe(e))
            return None, True
        if outcome is Outcome.OK and sse:  # a stream the client did not ask for, read whole
            if att.translated:
                self._end(att, Outcome.INBAND_ERROR, "a stream to a non-streamed request: "
                          "not translated")  # fmt: skip
                return None, True
            return self._buffered_stream(req, resp.status, headers, body, att)
        if outcome is Outcome.OK:
            att.usage = apis.usage_from_body(prov.api, body)
        else:  # a final 4xx: shown to the client as the provider gave it, minus our keys
            headers, body = self.scrub.headers(headers), self.scrub.bytes(body)
        status = resp.status
        if att.translated:
            status, headers, body = translation.answer(body, status, headers, prov, req)
            if outcome is Outcome.OK and status >= 400:  # an error inside a 2xx, or not JSON
                self._end(att, Outcome.INBAND_ERROR, f"HTTP {resp.status} with an error body")
                return Answer(status, headers, body), True
        att.final = True
        self._end(att, outcome, None if outcome is Outcome.OK else f"HTTP {resp.status}")
        return Answer(status, headers, body), False

    def _client_format(
        self, answer: Answer | None, prov: Provider, req: Request, att: Attempt
    ) -> Answer | None:
        """A kept error answer in the client's API: it may be the one the client gets."""
        if answer is None or not att.translated:
            return answer
        status, headers, body = translation.answer(answer.body, answer.status, answer.headers,
                                                   prov, req)  # fmt: skip
        return Answer(status, headers, body)

    def _untranslatable(self, req: Request, att: Attempt) -> tuple[Answer | None, bool]:
        """A body that is not a JSON object has nothing to translate: the client's error."""
        msg = "router: the request body is not a JSON object, so it cannot be translated"
        att.status, att.final = 400, True
        self._end(att, Outcome.HTTP_ERROR, "body not translatable", Failure.NONE)
        body = apis.error_body(req.api, 400, msg, "invalid_request_error")
        return Answer(400, [("content-type", "application/json")], body), False

    async def _retryable(
        self,
        resp: aiohttp.ClientResponse,
        headers: list[tuple[str, str]],
        prov: Provider,
        att: Attempt,
        outcome: Outcome,
        failure: Failure,
    ) -> tuple[Answer | None, bool]:
        body = await self._error_body(resp, att)
        status = resp.status
        error = f"HTTP {status}"
        if status < 400:
            # A redirect is never followed nor passed on: its Location would take the prompt
            # (and the SDK's key) straight to another host, past the router.
            self._end(att, outcome, error + " (redirect, not followed)", failure)
            return None, True
        lower = {k.lower(): v for k, v in headers}
        retry_after = parse_retry_after(lower, time.time())
        if failure is Failure.AUTH and key_of(prov) is None:
            # The client's own credentials were refused: not the provider's fault.
            failure, error = Failure.NONE, error + " (the client's credentials)"
        elif failure is Failure.AUTH:
            error += " (auth: check the provider's key)"
        self._end(att, outcome, error, failure, retry_after)
        return Answer(status, self.scrub.headers(headers), self.scrub.bytes(body)), True

    def _buffered_stream(
        self, req: Request, status: int, headers: list[tuple[str, str]], body: bytes, att: Attempt
    ) -> tuple[Answer | None, bool]:
        """An SSE answer to a request that did not ask to stream: its in-band error or missing
        end is a failure like any other (nothing reached the client yet), never an `ok`."""
        meter = StreamMeter(req.api, req.flavor if req.flavor != "none" else "chat")
        meter.feed(body)
        meter.feed(b"\n\n")  # a last event without its blank line still counts
        att.usage = meter.usage
        if meter.error or not meter.finished:
            why = f"in-band {meter.error}" if meter.error else "stream ended without a final event"
            self._end(att, Outcome.INBAND_ERROR, why)
            return None, True
        att.final = True
        self._end(att, Outcome.OK, None)
        return Answer(status, headers, body), False

    async def _error_body(self, resp: aiohttp.ClientResponse, att: Attempt) -> bytes:
        try:
            remaining = max(0.001, min(5.0, att.ctx.deadline_at - time.monotonic()))
            return await upstream.read_body(resp, remaining, upstream.ERROR_BODY_LIMIT)
        except Exception:
            return b""
        finally:
            resp.close()

    async def _stream(
        self,
        t: dict[str, float],
        req: Request,
        resp: aiohttp.ClientResponse,
        headers: list[tuple[str, str]],
        att: Attempt,
        prov: Provider,
    ) -> tuple[Answer | None, bool]:
        """Hold lifecycle events until the first content event (the commit point)."""
        tr = translation.stream_translator(req, prov) if att.translated else None
        meter = tr if tr is not None else StreamMeter(req.api, req.flavor)
        if tr is not None:
            headers = translation.stream_headers(headers)
        limit = min(t["first_token_timeout"], att.ctx.deadline_at - time.monotonic())
        cap = min(HOLD_LIMIT, self.max_response)
        held, error = await hold_until_commit(resp, meter, limit, cap)
        if error is not None:
            resp.close()
            self._end(att, *error)
            return None, True
        if not meter.committed:  # a complete stream with no content: nothing left to relay
            if tr is not None:  # its usage and end may follow the finish chunk
                held.append(await self._rest(resp, tr, att))
            resp.close()
            att.usage, att.final = meter.usage, True
            self._end(att, Outcome.OK, None)
            return Answer(att.status or 200, headers, b"".join(held)), False
        att.ttft, att.final = time.monotonic(), True
        if att.probe:
            self.state.probe_passed(att.key, att.t0)
        self.state.latency.record_ok(att.key, att.model, True, time.time(),
                                     ttft_ms=att.ms(att.ttft))  # fmt: skip

        def on_end(end: RelayEnd) -> None:
            att.usage, att.bytes, att.content_events = meter.usage, end.bytes, meter.content_events
            self._end(att, end.outcome, end.error, failure_of(end.outcome), ended=end.ended)

        relay = Relay(resp, resp.status, headers, held, meter, req.flavor, t["idle_timeout"],
                      on_end, self.max_response, translating=tr is not None)  # fmt: skip
        return Answer(resp.status, headers, relay=relay), False

    async def _rest(
        self, resp: aiohttp.ClientResponse, tr: translation.StreamTranslator, att: Attempt
    ) -> bytes:
        """A translated stream that ended with no content: the rest of it, then its end."""
        try:
            within = max(0.001, min(5.0, att.ctx.deadline_at - time.monotonic()))
            out = tr.feed(await upstream.read_body(resp, within, cap=self.max_response))
        except Exception:
            out = b""
        return out + tr.finish()
