"""Translation wired into routing: which providers of the other API are candidates (crossapi,
the planner), what goes upstream (proxy.translation), and the engine's attempts against fake
providers of the other API, in process (a real aiohttp session, no mitmproxy)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web
from llmrouter.config import RouterConfig, parse_config
from llmrouter.proxy import translation
from llmrouter.proxy.dispatch import Answer, Engine, Request
from llmrouter.proxy.exchange import _LAZY
from llmrouter.proxy.upstream import new_session
from llmrouter.routing.crossapi import api_filter
from llmrouter.tools._fakeanthropic import sign
from llmrouter.tools.fakeprovider import Behaviour, FakeProvider

MSG: dict[str, Any] = {"model": "claude-x", "max_tokens": 20,
                       "messages": [{"role": "user", "content": "hi"}]}  # fmt: skip
CHAT: dict[str, Any] = {"model": "gpt-x", "messages": [{"role": "user", "content": "hi"}]}


def config(profile: dict[str, Any] | None = None, **providers: dict[str, Any]) -> RouterConfig:
    provs = {n: {"base_url": f"https://{n}.example.com", **kw} for n, kw in providers.items()}
    prof = {"hosts": ["h"], "providers": list(provs), **(profile or {})}
    return parse_config({"providers": provs, "profiles": {"p": prof}}, {})


def request(body: dict[str, Any], path: str = "/v1/messages", lazy: bool = False) -> Request:
    api = "anthropic" if path == "/v1/messages" else "openai"
    flavor = {"/v1/messages": "anthropic", "/v1/responses": "responses"}.get(path, "chat")
    raw = json.dumps(body).encode()
    return Request("req-1", "POST", path, [("x-api-key", "client")], raw,
                   _LAZY if lazy else body, api, flavor)  # type: ignore[arg-type]  # fmt: skip


# -- candidates ---------------------------------------------------------------------------------

KEYED = {"api": "openai", "api_key": "k"}


def test_the_other_api_is_a_candidate_through_translation() -> None:
    cfg = config(a={"api": "anthropic"}, o=KEYED)
    kept, skipped = api_filter(["a", "o"], cfg.providers, "anthropic", "/v1/messages", True)
    assert kept == ["a", "o"] and skipped == []


@pytest.mark.parametrize(
    ("path", "translate", "prov", "reason", "detail"),
    [
        ("/v1/messages", False, KEYED, "translate",
         "openai provider, anthropic request; translate: false"),
        ("/v1/messages?beta=true", True, {"api": "openai"}, "credentials",
         "openai provider without api_key; the client's key is for anthropic"),
        ("/v1/responses", True, {"api": "anthropic", "api_key": "k"}, "api",
         "anthropic provider; /v1/responses is never translated"),
        ("/v1/embeddings", True, {"api": "anthropic", "api_key": "k"}, "api",
         "anthropic provider; /v1/embeddings is never translated"),
        ("/v1/completions", True, {"api": "anthropic", "api_key": "k"}, "api",
         "anthropic provider; /v1/completions is never translated"),
    ],
)  # fmt: skip
def test_what_is_never_translated_is_skipped_with_its_reason(
    path: str, translate: bool, prov: dict[str, Any], reason: str, detail: str
) -> None:
    cfg = config(x=prov)
    api = "anthropic" if path.startswith("/v1/messages") else "openai"
    kept, skipped = api_filter(["x"], cfg.providers, api, path, translate)  # type: ignore[arg-type]
    assert kept == [] and skipped == [{"provider": "x", "reason": reason, "detail": detail}]


def test_the_planner_orders_both_apis_and_a_route_may_refuse_translation() -> None:
    cfg = config(
        {"routes": {"background": {"providers": ["a", "o"], "translate": False}}},
        a={"api": "anthropic"}, o=KEYED,
    )  # fmt: skip
    engine = Engine(None, lambda _: None)  # type: ignore[arg-type]
    plan = engine.planner.plan(cfg, "p", request(MSG), 0.0)
    assert plan.leg is not None and plan.leg.order == ("a", "o") and plan.skipped == []
    plan = engine.planner.plan(cfg, "p", request({**MSG, "model": "claude-haiku"}), 0.0)
    assert plan.decision.route == "background" and plan.leg is not None
    assert plan.leg.order == ("a",) and [s["reason"] for s in plan.skipped] == ["translate"]


def test_nothing_left_to_try_is_a_502_that_names_why() -> None:
    cfg = config(a={"api": "anthropic", "api_key": "k"})
    engine = Engine(None, lambda _: None)  # type: ignore[arg-type]
    plan = engine.planner.plan(cfg, "p", request({"model": "m", "input": "hi"}, "/v1/responses"),
                               0.0)  # fmt: skip
    assert plan.leg is None and plan.refusal is not None
    status, message, _ = plan.refusal
    assert status == 502 and "/v1/responses is never translated" in message


# -- what goes upstream -------------------------------------------------------------------------


def test_a_body_without_an_empty_signature_is_never_parsed_for_the_scrub() -> None:
    signed = {**MSG, "thinking": {"type": "adaptive"}, "messages": [
        {"role": "user", "content": "hi"},
        {"role": "assistant", "content": [{"type": "thinking", "thinking": "t", "signature": "s"}]},
        {"role": "user", "content": "go on"}]}  # fmt: skip
    req = request(signed, lazy=True)
    assert translation.scrubbed_body(req, "claude-x", "a") is None
    assert req._payload is _LAZY  # a substring test was enough


@pytest.mark.parametrize("indent", [None, 0, 2])
def test_unsigned_thinking_never_reaches_anthropic(indent: int | None) -> None:
    body = {**MSG, "messages": [
        {"role": "user", "content": "hi"},
        {"role": "assistant", "content": [{"type": "thinking", "thinking": "t", "signature": ""},
                                          {"type": "text", "text": "hello \ud800"}]},
        {"role": "user", "content": "go on"}]}  # fmt: skip
    req = request(body, lazy=True)
    # compact (JavaScript, httpx), or Python's default spacing, or pretty-printed
    compact = indent is None
    req.body = json.dumps(body, indent=indent, separators=(",", ":") if compact else None).encode()
    out = translation.scrubbed_body(req, "claude-mapped", "a")
    assert out is not None and out.isascii()  # the lone surrogate stays escaped
    sent = json.loads(out)
    assert sent["model"] == "claude-mapped"
    assert sent["messages"][1]["content"] == [{"type": "text", "text": "hello \ud800"}]


def test_a_translated_request_goes_to_the_provider_path_with_its_own_auth() -> None:
    cfg = config(o={"api": "openai", "api_key": "sk-o", "base_url": "https://o.example.com/v1"})
    prov = cfg.providers["o"]
    req = request({**MSG, "stream": True}, "/v1/messages")
    req.path = "/v1/messages?beta=true"
    req.headers = [("x-api-key", "client"), ("anthropic-beta", "x"), ("user-agent", "cc")]
    out = translation.outgoing(req, prov, "gpt-4o", "o")
    assert out is not None and out.url == "https://o.example.com/v1/chat/completions"
    sent = json.loads(out.body)
    assert sent["model"] == "gpt-4o" and sent["stream_options"] == {"include_usage": True}
    headers = dict(translation.provider_headers(req.headers, "anthropic", prov))
    assert "anthropic-beta" not in headers and headers["user-agent"] == "cc"
    assert headers["content-type"] == "application/json"
    # the client's x-api-key belongs to Anthropic: the OpenAI key goes in OpenAI's header
    assert translation.auth_header(prov, {"x-api-key"}, translated=True) == "authorization"
    assert translation.auth_header(prov, {"x-api-key"}, translated=False) == "x-api-key"


# -- the engine against fakes of the other API --------------------------------------------------


@pytest.fixture
async def fakes() -> AsyncIterator[dict[str, FakeProvider]]:
    out = {"an": FakeProvider("an", strict=True), "oa": FakeProvider("oa", strict=True)}
    for f in out.values():
        await f.start()
    yield out
    for f in out.values():
        await f.stop()


async def route(cfg: RouterConfig, req: Request) -> tuple[Answer, list[dict[str, Any]]]:
    lines: list[dict[str, Any]] = []
    engine = Engine(new_session(), lines.append)
    engine.apply_config(cfg)
    try:
        answer = await engine.route(cfg, "p", req)
        if answer.relay is not None:
            chunks: list[bytes] = []

            async def write(b: bytes) -> None:
                chunks.append(b)

            await answer.relay.pump(write)
            answer.body = b"".join(chunks)
    finally:
        await engine.session.close()
    return answer, lines


def mixed(fakes: dict[str, FakeProvider], *order: str, **profile: Any) -> RouterConfig:
    provs = {"an": {"base_url": fakes["an"].url, "api": "anthropic", "api_key": "ka"},
             "oa": {"base_url": fakes["oa"].url, "api": "openai", "api_key": "ko"}}  # fmt: skip
    prof = {"hosts": ["h"], "providers": list(order), **profile}
    return parse_config({"providers": provs, "profiles": {"p": prof}}, {})


async def test_an_error_inside_a_2xx_answer_fails_over(fakes: dict[str, FakeProvider]) -> None:
    """An OpenAI-format 200 whose body is not an answer is an in-band error: the next provider
    is tried, as for a stream's in-band error."""
    fakes["oa"].push(Behaviour(kind="status", status=200))
    answer, lines = await route(mixed(fakes, "oa", "an"), request(MSG))
    assert answer.status == 200 and json.loads(answer.body)["content"][0]["text"].startswith(
        "Hello from an.")  # fmt: skip
    assert [(x["provider"], x["outcome"], x["translated"]) for x in lines] == [
        ("oa", "inband_error", True), ("an", "ok", False)]  # fmt: skip


async def test_the_last_error_is_kept_in_the_client_format(fakes: dict[str, FakeProvider]) -> None:
    fakes["an"].push(Behaviour(kind="status", status=529))
    answer, lines = await route(mixed(fakes, "an"), request(CHAT, "/v1/chat/completions"))
    body = json.loads(answer.body)
    assert answer.status == 503  # Anthropic's 529 means nothing to an OpenAI client
    assert body["error"]["message"].startswith("Overloaded (fake provider an)")
    assert dict(answer.headers)["content-type"] == "application/json"
    assert lines[0]["status"] == 529 and lines[0]["api"] == "anthropic"


async def test_a_body_that_is_not_an_object_cannot_be_translated(
    fakes: dict[str, FakeProvider],
) -> None:
    req = request(MSG)
    req.body, req._payload = b"[1, 2]", None
    answer, lines = await route(mixed(fakes, "oa"), req)
    assert answer.status == 400 and "cannot be translated" in answer.body.decode()
    assert not fakes["oa"].requests and lines[0]["outcome"] == "http_error"


async def test_a_translated_stream_with_no_content_keeps_its_usage_and_end(
    fakes: dict[str, FakeProvider],
) -> None:
    fakes["oa"].push(Behaviour(deltas=0, input_tokens=7, output_tokens=0))
    answer, lines = await route(mixed(fakes, "oa"), request({**MSG, "stream": True}))
    events = [line for line in answer.body.decode().splitlines() if line.startswith("event:")]
    assert events[-2:] == ["event: message_delta", "event: message_stop"]
    assert b'"input_tokens":7' in answer.body and lines[0]["input_tokens"] == 7


async def test_the_usage_after_the_finish_of_an_empty_stream_is_read() -> None:
    """The commit point stops reading at the finish chunk; an empty answer's usage comes after
    it (here in a later write), and must still reach the client and the JSONL."""
    chunk = {"id": "c1", "object": "chat.completion.chunk", "created": 1, "model": "m"}

    async def handler(request: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse(headers={"content-type": "text/event-stream"})
        await resp.prepare(request)
        finish = {**chunk, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}
        await resp.write(b"data: " + json.dumps(finish).encode() + b"\n\n")
        await asyncio.sleep(0.05)  # a separate read, most likely; the result is the same
        usage = {**chunk, "choices": [], "usage": {"prompt_tokens": 9, "completion_tokens": 0}}
        await resp.write(b"data: " + json.dumps(usage).encode() + b"\n\ndata: [DONE]\n\n")
        return resp

    app = web.Application()
    app.router.add_post("/v1/chat/completions", handler)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        cfg = config(o={"api": "openai", "api_key": "k", "base_url": f"http://127.0.0.1:{port}"})
        answer, lines = await route(cfg, request({**MSG, "stream": True}))
    finally:
        await runner.cleanup()
    assert b'"input_tokens":9' in answer.body and answer.body.endswith(b'message_stop"}\n\n')
    assert lines[0]["input_tokens"] == 9 and lines[0]["outcome"] == "ok"


async def test_a_stream_from_anthropic_reaches_an_openai_client_as_chunks(
    fakes: dict[str, FakeProvider],
) -> None:
    fakes["an"].set_default(Behaviour(thinking="hm", deltas=4))
    body = {**CHAT, "stream": True, "stream_options": {"include_usage": True}}
    answer, lines = await route(mixed(fakes, "an"), request(body, "/v1/chat/completions"))
    assert dict(answer.headers)["content-type"] == "text/event-stream"
    data = [json.loads(x[6:]) for x in answer.body.decode().split("\n\n")
            if x.startswith("data: {")]  # fmt: skip
    text = "".join(c["choices"][0]["delta"].get("content") or "" for c in data if c["choices"])
    assert text.startswith("Hello from an.") and answer.body.endswith(b"data: [DONE]\n\n")
    assert data[-1]["usage"]["completion_tokens"] == 4
    assert lines[0]["translated"] is True and lines[0]["content_events"] >= 4
    sent = fakes["an"].requests[0].json
    assert sent["stream"] is True and "stream_options" not in sent
    assert sign("hm")  # the fake signed its thinking; the OpenAI client got reasoning_content
    assert any(c["choices"] and c["choices"][0]["delta"].get("reasoning_content") == "hm"
               for c in data)  # fmt: skip
