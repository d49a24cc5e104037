"""The "LLM" content view as mitmproxy uses it: registered, auto-selected for routed bodies."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from llm_bodies import anthropic_stream, chat_request, chat_stream, claude_code_request
from llmrouter.proxy.contentview import PRIORITY, LLMContentview
from mitmproxy import contentviews, http
from mitmproxy.test import taddons, tflow


@pytest.fixture
def view() -> Iterator[LLMContentview]:
    v = LLMContentview()
    with taddons.context():  # prettify_message reads options
        contentviews.add(v)
        try:
            yield v
        finally:
            contentviews.registry._by_name.pop("llm", None)  # no public unregister in 12.x


def _flow(path: str, req: bytes, resp: bytes | None, resp_type: str) -> http.HTTPFlow:
    f = tflow.tflow(resp=resp is not None)
    f.request.method, f.request.path = "POST", path
    f.request.headers["content-type"] = "application/json"
    f.request.content = req
    if resp is not None:
        assert f.response is not None
        f.response.headers["content-type"] = resp_type
        f.response.content = resp
    return f


def test_auto_selected_for_anthropic_request_and_stream(view: LLMContentview) -> None:
    f = _flow("/v1/messages?beta=true", json.dumps(claude_code_request()).encode(),
              anthropic_stream(), "text/event-stream; charset=utf-8")  # fmt: skip
    req = contentviews.prettify_message(f.request, f)
    assert req.view_name == "LLM"
    assert req.text.startswith("anthropic request · model claude-sonnet-4-5-20250929")
    assert f.response is not None
    resp = contentviews.prettify_message(f.response, f)
    assert resp.view_name == "LLM"
    assert "The test expects 1 s buckets; I'll run it." in resp.text
    assert "stop: tool_use" in resp.text


def test_auto_selected_for_openai_through_a_prefixed_provider(view: LLMContentview) -> None:
    f = _flow("/api/v1/chat/completions", json.dumps(chat_request()).encode(), chat_stream(),
              "text/event-stream")  # fmt: skip
    assert contentviews.prettify_message(f.request, f).view_name == "LLM"
    assert f.response is not None
    resp = contentviews.prettify_message(f.response, f)
    assert resp.view_name == "LLM" and '→ get_time {"tz": "Europe/Paris"}' in resp.text


def test_stays_out_of_the_way(view: LLMContentview) -> None:
    meta = contentviews.Metadata
    body = json.dumps({"messages": []}).encode()
    # Not an inference path, not a POST, not JSON: other views decide.
    for path, method in (("/api/claude_code/settings", "POST"), ("/v1/messages", "GET")):
        f = _flow(path, body, None, "")
        f.request.method = method
        m = meta(flow=f, http_message=f.request, content_type="application/json")
        assert view.render_priority(body, m) == 0
    f = _flow("/v1/messages", body, b"<html>bad gateway</html>", "text/html")
    m = meta(flow=f, http_message=f.response, content_type="text/html")
    assert view.render_priority(b"<html>bad gateway</html>", m) == 0
    m = meta(flow=f, http_message=f.request, content_type="application/json")
    assert view.render_priority(body, m) == PRIORITY
    assert view.render_priority(b"", m) == 0


def test_failure_falls_back_to_raw(view: LLMContentview) -> None:
    f = _flow("/v1/messages", b'{"messages": [', None, "")  # cut JSON still claims the view
    out = contentviews.prettify_message(f.request, f)
    assert out.view_name == "Raw" and "failed to parse as LLM" in out.description
