"""Wire-format differences: routed paths, upstream URLs, model mapping, auth, errors, usage."""

from __future__ import annotations

import json

import pytest
from llmrouter.wire.apis import (
    Usage,
    auth_header_for,
    auth_value,
    error_body,
    map_model,
    route_for,
    stream_error_event,
    upstream_url,
    usage_from,
    usage_from_body,
)
from llmrouter.wire.sse import StreamMeter

# -- routes -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("/v1/messages", ("anthropic", "anthropic")),
        ("/v1/chat/completions", ("openai", "chat")),
        ("/v1/completions", ("openai", "chat")),
        ("/v1/responses", ("openai", "responses")),
        ("/v1/embeddings", ("openai", "none")),
        ("/v1/messages?beta=true", ("anthropic", "anthropic")),
        ("/v1/messages/", ("anthropic", "anthropic")),
        ("/v1/chat/completions?x=1&y=2", ("openai", "chat")),
    ],
)
def test_routed_paths(path: str, expected: tuple[str, str]) -> None:
    assert route_for("POST", path) == expected


@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE", "PATCH", "OPTIONS", "HEAD"])
@pytest.mark.parametrize("path", ["/v1/messages", "/v1/chat/completions", "/v1/responses"])
def test_other_methods_not_routed(method: str, path: str) -> None:
    assert route_for(method, path) is None


@pytest.mark.parametrize(
    "path",
    [
        "/v1/models",
        "/v1/messages/count_tokens",
        "/v1/messages/batches",
        "/v1/files",
        "/v1/responses/resp_123",
        "/v2/messages",
        "/messages",
        "/",
        "",
        "/v1/chat/completionsx",
    ],
)
def test_non_routed_paths(path: str) -> None:
    assert route_for("POST", path) is None


# -- upstream URL -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("base", "api", "path", "url"),
    [
        # the official hosts
        ("https://api.anthropic.com", "anthropic", "/v1/messages", "https://api.anthropic.com/v1/messages"),
        ("https://api.openai.com/v1", "openai", "/v1/chat/completions", "https://api.openai.com/v1/chat/completions"),
        # no doubled /v1, with or without a trailing slash
        ("https://api.openai.com/v1/", "openai", "/v1/responses", "https://api.openai.com/v1/responses"),
        ("https://x.test/v1", "anthropic", "/v1/messages", "https://x.test/v1/messages"),
        # an openai base without a path keeps /v1
        ("https://api.openai.com", "openai", "/v1/chat/completions", "https://api.openai.com/v1/chat/completions"),
        # path prefixes
        ("https://api.deepseek.com/anthropic", "anthropic", "/v1/messages", "https://api.deepseek.com/anthropic/v1/messages"),
        ("https://openrouter.ai/api/v1", "openai", "/v1/chat/completions", "https://openrouter.ai/api/v1/chat/completions"),
        ("https://g.test/v1beta/openai", "openai", "/v1/chat/completions", "https://g.test/v1beta/openai/chat/completions"),
        # the query string is kept
        ("https://api.anthropic.com", "anthropic", "/v1/messages?beta=true", "https://api.anthropic.com/v1/messages?beta=true"),
        ("https://openrouter.ai/api/v1", "openai", "/v1/chat/completions?a=1&b=2", "https://openrouter.ai/api/v1/chat/completions?a=1&b=2"),
        # ports
        ("http://127.0.0.1:8001", "anthropic", "/v1/messages", "http://127.0.0.1:8001/v1/messages"),
        ("http://127.0.0.1:8001/v1", "openai", "/v1/embeddings", "http://127.0.0.1:8001/v1/embeddings"),
    ],
)  # fmt: skip
def test_upstream_url(base: str, api: str, path: str, url: str) -> None:
    assert upstream_url(base, api, path) == url  # type: ignore[arg-type]


# -- models -----------------------------------------------------------------------------------


def test_map_model_first_match_wins() -> None:
    models = {"claude-*-haiku*": "cheap", "claude-*": "mid", "*": "fallback"}
    assert map_model(models, "claude-3-5-haiku-latest") == "cheap"
    assert map_model(models, "claude-sonnet-4") == "mid"
    assert map_model(models, "gpt-4o") == "fallback"
    # order matters: a catch-all first shadows everything
    assert map_model({"*": "x", "claude-*": "y"}, "claude-sonnet-4") == "x"


def test_map_model_no_match_keeps_model() -> None:
    assert map_model({"gpt-*": "x"}, "claude-sonnet-4") == "claude-sonnet-4"
    assert map_model({}, "claude-sonnet-4") == "claude-sonnet-4"
    assert map_model({"*": "x"}, None) is None


def test_map_model_is_case_sensitive_and_exact() -> None:
    assert map_model({"GPT-*": "x"}, "gpt-4o") == "gpt-4o"
    assert map_model({"gpt-4o": "x"}, "gpt-4o-mini") == "gpt-4o-mini"
    assert map_model({"gpt-4o?mini": "x"}, "gpt-4o-mini") == "x"


# -- auth -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("api", "client", "configured", "expected"),
    [
        ("anthropic", set(), None, "x-api-key"),
        ("openai", set(), None, "authorization"),
        # the client's choice wins over the API's default
        ("anthropic", {"authorization"}, None, "authorization"),
        ("openai", {"x-api-key"}, None, "x-api-key"),
        ("anthropic", {"x-api-key", "content-type"}, None, "x-api-key"),
        # configured wins over everything
        ("anthropic", {"x-api-key"}, "authorization", "authorization"),
        ("openai", {"authorization"}, "x-api-key", "x-api-key"),
    ],
)
def test_auth_header_for(api: str, client: set[str], configured: str | None, expected: str) -> None:
    assert auth_header_for(api, client, configured) == expected  # type: ignore[arg-type]


def test_auth_value() -> None:
    assert auth_value("authorization", "sk-1") == "Bearer sk-1"
    assert auth_value("x-api-key", "sk-1") == "sk-1"


# -- errors -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "kind"),
    [
        (400, "invalid_request_error"),
        (401, "authentication_error"),
        (403, "permission_error"),
        (404, "not_found_error"),
        (413, "request_too_large"),
        (429, "rate_limit_error"),
        (500, "api_error"),
        (502, "api_error"),
        (504, "timeout_error"),
        (529, "overloaded_error"),
    ],
)
def test_anthropic_error_body(status: int, kind: str) -> None:
    obj = json.loads(error_body("anthropic", status, "boom"))
    assert obj == {"type": "error", "error": {"type": kind, "message": "boom"}}


@pytest.mark.parametrize(
    ("status", "kind"),
    [
        (400, "invalid_request_error"),
        (404, "invalid_request_error"),
        (429, "rate_limit_error"),
        (500, "server_error"),
        (502, "server_error"),
        (504, "server_error"),
    ],
)
def test_openai_error_body(status: int, kind: str) -> None:
    obj = json.loads(error_body("openai", status, "boom", code="all_failed"))
    assert obj == {"error": {"message": "boom", "type": kind, "param": None, "code": "all_failed"}}
    assert json.loads(error_body("openai", status, "x"))["error"]["code"] == "router_error"


def test_stream_error_events_are_terminal_errors_for_each_flavor() -> None:
    ev = stream_error_event("anthropic", "upstream stream interrupted")
    assert ev.startswith(b"event: error\ndata: ") and ev.endswith(b"\n\n")
    obj = json.loads(ev.split(b"data: ", 1)[1])
    assert obj == {
        "type": "error",
        "error": {"type": "api_error", "message": "upstream stream interrupted"},
    }
    chat = stream_error_event("chat", "cut")
    assert chat.startswith(b"data: {") and chat.endswith(b"\n\n")
    assert json.loads(chat[6:])["error"]["message"] == "cut"
    resp = stream_error_event("responses", "cut")
    assert resp.startswith(b"event: error\n")
    assert json.loads(resp.split(b"data: ", 1)[1])["type"] == "error"
    # the router's own meter sees each as an in-band error
    for flavor, api, body in (
        ("anthropic", "anthropic", ev),
        ("chat", "openai", chat),
        ("responses", "openai", resp),
    ):
        m = StreamMeter(api, flavor)  # type: ignore[arg-type]
        m.feed(body)
        assert m.error is not None


# -- usage ------------------------------------------------------------------------------------


def test_usage_merged_later_wins_absent_keeps() -> None:
    a = Usage(10, 1, 5, None)
    b = Usage(None, 40, None, 2)
    assert a.merged(b) == Usage(10, 40, 5, 2)
    assert Usage().merged(Usage()) == Usage()


def test_anthropic_usage_adds_cache_to_input() -> None:
    u = usage_from(
        "anthropic",
        {
            "input_tokens": 10,
            "cache_read_input_tokens": 100,
            "cache_creation_input_tokens": 20,
            "output_tokens": 7,
        },
    )
    assert u == Usage(130, 7, 100, 20)
    assert usage_from("anthropic", {"input_tokens": 3, "output_tokens": 4}) == Usage(3, 4)
    # output only (message_delta)
    assert usage_from("anthropic", {"output_tokens": 9}) == Usage(None, 9)


def test_openai_usage_chat_and_responses() -> None:
    chat = {
        "prompt_tokens": 50,
        "completion_tokens": 5,
        "total_tokens": 55,
        "prompt_tokens_details": {"cached_tokens": 32},
    }
    assert usage_from("openai", chat) == Usage(50, 5, 32, None)
    responses = {
        "input_tokens": 40,
        "output_tokens": 6,
        "input_tokens_details": {"cached_tokens": 0},
    }
    assert usage_from("openai", responses) == Usage(40, 6, 0, None)
    assert usage_from("openai", {"prompt_tokens": 3}) == Usage(3, None)
    assert usage_from("openai", {"prompt_tokens_details": None, "prompt_tokens": 1}) == Usage(1)


@pytest.mark.parametrize("bad", [None, [], "x", 3, {"input_tokens": "10", "output_tokens": True}])
def test_usage_from_garbage_is_empty(bad: object) -> None:
    assert usage_from("anthropic", bad) == Usage()
    assert usage_from("openai", bad) == Usage()


def test_usage_from_body() -> None:
    anthropic = {
        "type": "message",
        "usage": {"input_tokens": 5, "output_tokens": 6, "cache_read_input_tokens": 10},
    }
    assert usage_from_body("anthropic", json.dumps(anthropic).encode()) == Usage(15, 6, 10, None)
    chat = {"choices": [], "usage": {"prompt_tokens": 7, "completion_tokens": 8}}
    assert usage_from_body("openai", json.dumps(chat).encode()) == Usage(7, 8)
    # a responses object wrapped in an event-like envelope
    wrapped = {"type": "response.completed", "response": {"usage": {"input_tokens": 1}}}
    assert usage_from_body("openai", json.dumps(wrapped).encode()) == Usage(1)
    assert usage_from_body("openai", b"not json") == Usage()
    assert usage_from_body("openai", b"[1, 2]") == Usage()
    assert usage_from_body("anthropic", b"{}") == Usage()


def test_usage_from_sse_streams() -> None:
    anthropic = (
        b"event: message_start\n"
        b'data: {"type":"message_start","message":{"usage":{"input_tokens":12,'
        b'"cache_read_input_tokens":300,"cache_creation_input_tokens":4,"output_tokens":1}}}\n\n'
        b"event: content_block_delta\n"
        b'data: {"type":"content_block_delta","delta":{"type":"text_delta","text":"hi"}}\n\n'
        b"event: message_delta\n"
        b'data: {"type":"message_delta","usage":{"output_tokens":42}}\n\n'
        b'event: message_stop\ndata: {"type":"message_stop"}\n\n'
    )
    m = StreamMeter("anthropic", "anthropic")
    m.feed(anthropic)
    assert m.usage == Usage(316, 42, 300, 4)
    chat = (
        b'data: {"choices":[{"delta":{"content":"hi"}}]}\n\n'
        b'data: {"choices":[],"usage":{"prompt_tokens":20,"completion_tokens":3,'
        b'"prompt_tokens_details":{"cached_tokens":16}}}\n\n'
        b"data: [DONE]\n\n"
    )
    m = StreamMeter("openai", "chat")
    m.feed(chat)
    assert m.usage == Usage(20, 3, 16, None)
    responses = (
        b'event: response.output_text.delta\ndata: {"delta":"hi"}\n\n'
        b'event: response.completed\ndata: {"response":{"usage":{"input_tokens":9,'
        b'"output_tokens":2,"input_tokens_details":{"cached_tokens":4}}}}\n\n'
    )
    m = StreamMeter("openai", "responses")
    m.feed(responses)
    assert m.usage == Usage(9, 2, 4, None)
