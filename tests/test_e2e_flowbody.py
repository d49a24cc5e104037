"""End to end: a streamed anthropic-SDK request through `mitmdump -w` leaves a saved flow whose
response body holds the SSE events, and the LLM view renders its text.

Phase 1: `tests/observe_addon.py` stands in for the Router's own wiring (stream copy, view).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from llmrouter.proxy.contentview import LLMContentview
from llmrouter.tools.fakeprovider import Behaviour, FakeProvider
from mitmproxy import contentviews
from mitmproxy.test import taddons
from routerproc import RouterProc, anthropic_client, provider

pytestmark = pytest.mark.e2e
STANDIN = str(Path(__file__).with_name("observe_addon.py"))


def test_streamed_answer_is_kept_in_the_saved_flow(
    fakes: Callable[..., FakeProvider], origin: FakeProvider, router: Callable[..., RouterProc]
) -> None:
    steady = fakes("steady", default=Behaviour(deltas=8, interval=0.02))
    config = {
        "providers": {"steady": provider(steady)},
        "profiles": {"default": {"hosts": ["localhost"], "providers": ["steady"]}},
    }
    r = router(config, "-s", STANDIN)
    client = anthropic_client(r, origin)
    with client.messages.stream(
        model="claude-test", max_tokens=50, messages=[{"role": "user", "content": "hi"}]
    ) as stream:
        text = "".join(stream.text_stream)
    assert text.startswith("Hello from steady.")
    r.wait_lines(1)
    r.stop()  # the flow file is complete once mitmdump has exited

    flows = [f for f in r.flows() if f.request.path.startswith("/v1/messages")]
    assert len(flows) == 1
    f = flows[0]
    assert f.response is not None and f.response.raw_content
    body = f.response.raw_content
    assert body.startswith(b"event: message_start") and b"event: message_stop" in body
    assert f.response.headers["content-type"].startswith("text/event-stream")

    view = LLMContentview()
    with taddons.context():
        registered = "llm" in contentviews.registry
        contentviews.add(view)
        try:
            shown = contentviews.prettify_message(f.response, f)
            request = contentviews.prettify_message(f.request, f)
        finally:
            if not registered:
                contentviews.registry._by_name.pop("llm", None)
    assert shown.view_name == "LLM"
    assert f"\n{text}\n" in shown.text and "stop: end_turn" in shown.text
    assert request.view_name == "LLM" and "[1] user\n  hi" in request.text
