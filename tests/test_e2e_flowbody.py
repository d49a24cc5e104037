"""End to end: a streamed anthropic-SDK request through `mitmdump -w` leaves a saved flow whose
response body holds the SSE events, and the LLM view renders its text.
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable

import pytest
from llmrouter.proxy.contentview import LLMContentview
from llmrouter.tools.fakeprovider import Behaviour, FakeProvider
from llmrouter.wire.render import truncation_marker
from mitmproxy import contentviews
from mitmproxy.test import taddons
from routerproc import MITMDUMP, SCRIPT, RouterProc, anthropic_client, provider

pytestmark = pytest.mark.e2e


def test_streamed_answer_is_kept_in_the_saved_flow(
    fakes: Callable[..., FakeProvider], origin: FakeProvider, router: Callable[..., RouterProc]
) -> None:
    steady = fakes("steady", default=Behaviour(deltas=8, interval=0.02))
    config = {
        "providers": {"steady": provider(steady)},
        "profiles": {"default": {"hosts": ["localhost"], "providers": ["steady"]}},
    }
    r = router(config)
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


def test_a_long_stream_is_kept_up_to_the_limit_and_shown_by_flow_detail(
    fakes: Callable[..., FakeProvider], origin: FakeProvider, router: Callable[..., RouterProc]
) -> None:
    """With router_flow_body_max_kb=1 the client still gets the whole stream; the flow keeps
    the first whole events under 1 KB and the marker, and mitmdump's flow_detail output shows
    the copy through the LLM view."""
    long = fakes("long", default=Behaviour(deltas=60))
    config = {
        "providers": {"long": provider(long)},
        "profiles": {"default": {"hosts": ["localhost"], "providers": ["long"]}},
    }
    r = router(config, "--set", "router_flow_body_max_kb=1")
    client = anthropic_client(r, origin)
    with client.messages.stream(
        model="claude-test", max_tokens=500, messages=[{"role": "user", "content": "hi"}]
    ) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert final.stop_reason == "end_turn" and text.startswith("Hello from long.")
    assert len(text.split()) == 60  # the client got every delta
    r.wait_lines(1)
    r.stop()

    (f,) = [f for f in r.flows() if f.request.path.startswith("/v1/messages")]
    assert f.response is not None
    body = f.response.raw_content or b""
    assert body.startswith(b"event: message_start") and b"event: message_stop" not in body
    marker = truncation_marker(1024)
    assert body.endswith(marker) and len(body) - len(marker) <= 1024, body[-300:]

    # flow_detail=3 (the test router runs with -v, which pins it to 2): read the saved flow back
    # with the router loaded, as `mitmdump -nr flows.mitm --flow-detail 3` shows it to a user.
    out = subprocess.run(
        [MITMDUMP, "-n", "-r", str(r.flows_path), "--flow-detail", "3", "-s", SCRIPT,
         "--set", f"confdir={r.conf}", "--set", f"router_config={r.config_path}"],
        capture_output=True, timeout=60, check=False,
    )  # fmt: skip
    shown = out.stdout.decode()
    assert out.returncode == 0, shown + out.stderr.decode()
    assert "anthropic answer · model claude-test · streamed" in shown
    assert "\n    Hello from long. " in shown and "[copy truncated at 1,024 bytes" in shown
