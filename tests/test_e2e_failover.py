"""End to end: real mitmdump + router, real clients (anthropic and openai SDKs, curl) through
HTTPS_PROXY, fake providers on 127.0.0.1. The first candidate fails in each way a provider
fails; the client gets the second candidate's answer, and streams stay streamed.
"""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Callable
from typing import Any

import anthropic
import openai
import pytest
from llmrouter.tools.fakeprovider import Behaviour, FakeProvider
from routerproc import RouterProc, environ, free_port, provider

pytestmark = pytest.mark.e2e

FAULTS: dict[str, Behaviour | None] = {
    "refused": None,  # the first candidate's port has no listener
    "503": Behaviour(kind="status", status=503),
    "529": Behaviour(kind="status", status=529),
    "429": Behaviour(kind="status", status=429, headers={"retry-after": "30"}),
    "hang": Behaviour(kind="hang"),
}
# The second candidate streams its events 150 ms apart: a buffered relay would show them at once.
SLOW_STREAM = Behaviour(deltas=6, interval=0.15)


def two_candidates(
    fakes: Callable[..., FakeProvider], fault: str, api: str
) -> tuple[dict[str, Any], FakeProvider | None, FakeProvider]:
    first = None if FAULTS[fault] is None else fakes("first", default=FAULTS[fault])
    second = fakes("second", default=SLOW_STREAM)
    first_url = f"http://127.0.0.1:{free_port()}" if first is None else first.url
    # A hang shows up as a missing first byte (streams) or a missing answer (others).
    timeouts = {"first_byte_timeout": 1, "response_timeout": 1}
    config = {
        "providers": {
            "first": provider(first_url, api, **timeouts),
            "second": provider(second, api),
        },
        "profiles": {"default": {"hosts": ["localhost"], "providers": ["first", "second"]}},
    }
    return config, first, second


def check_log(r: RouterProc, fault: str, stream: bool) -> None:
    lines = r.wait_lines(2)
    assert [line["provider"] for line in lines] == ["first", "second"]
    assert lines[0]["final"] is False and lines[1]["final"] is True
    expected = {"refused": "connect_error", "hang": "timeout"}.get(fault, "http_error")
    assert lines[0]["outcome"] == expected
    assert lines[1]["outcome"] == "ok" and lines[1]["stream"] is stream
    if fault not in ("refused", "hang"):
        assert lines[0]["status"] == int(fault)


def assert_streamed(arrivals: list[float], started: float) -> None:
    """The first content event reached the client well before the last one was even sent."""
    assert len(arrivals) >= 6
    first, last = arrivals[0] - started, arrivals[-1] - started
    assert last - first > 0.5, f"events arrived together ({first:.3f}s .. {last:.3f}s): buffered"


@pytest.mark.parametrize("fault", list(FAULTS))
def test_anthropic_sdk_stream_fails_over(fault, fakes, origin, router) -> None:
    config, _first, _second = two_candidates(fakes, fault, "anthropic")
    r = router(config)
    with environ(r.env()):
        client = anthropic.Anthropic(base_url=origin.url.replace("127.0.0.1", "localhost"),
                                     api_key="client-key", max_retries=0)  # fmt: skip
    started = time.monotonic()
    arrivals, text = [], ""
    with client.messages.stream(
        model="claude-test", max_tokens=50, messages=[{"role": "user", "content": "hi"}]
    ) as stream:
        for event in stream:
            if event.type == "content_block_delta":
                arrivals.append(time.monotonic())
        text = stream.get_final_message().content[0].text
    assert text.startswith("Hello from second.")
    assert_streamed(arrivals, started)
    assert not origin.requests, "an inference request leaked to the original host"
    check_log(r, fault, stream=True)


@pytest.mark.parametrize("fault", list(FAULTS))
def test_anthropic_sdk_non_stream_fails_over(fault, fakes, origin, router) -> None:
    config, _first, _second = two_candidates(fakes, fault, "anthropic")
    r = router(config)
    with environ(r.env()):
        client = anthropic.Anthropic(base_url=origin.url.replace("127.0.0.1", "localhost"),
                                     api_key="client-key", max_retries=0)  # fmt: skip
    msg = client.messages.with_raw_response.create(
        model="claude-test", max_tokens=50, messages=[{"role": "user", "content": "hi"}]
    )
    assert msg.headers["x-router-provider"] == "second"
    assert msg.headers["x-router-attempts"] == "2"
    assert msg.parse().content[0].text.startswith("Hello from second.")
    assert not origin.requests
    check_log(r, fault, stream=False)


@pytest.mark.parametrize("fault", list(FAULTS))
def test_openai_sdk_stream_fails_over(fault, fakes, origin, router) -> None:
    config, _first, _second = two_candidates(fakes, fault, "openai")
    r = router(config)
    with environ(r.env()):
        client = openai.OpenAI(base_url=origin.url.replace("127.0.0.1", "localhost") + "/v1",
                               api_key="client-key", max_retries=0)  # fmt: skip
    started = time.monotonic()
    arrivals, text = [], ""
    for chunk in client.chat.completions.create(
        model="gpt-test", stream=True, messages=[{"role": "user", "content": "hi"}]
    ):
        if chunk.choices and chunk.choices[0].delta.content:
            arrivals.append(time.monotonic())
            text += chunk.choices[0].delta.content
    assert text.startswith("Hello from second.")
    assert_streamed(arrivals, started)
    assert not origin.requests
    check_log(r, fault, stream=True)


@pytest.mark.parametrize("fault", list(FAULTS))
def test_curl_stream_fails_over(fault, fakes, origin, router) -> None:
    config, _first, second = two_candidates(fakes, fault, "anthropic")
    r = router(config)
    url = origin.url.replace("127.0.0.1", "localhost") + "/v1/messages?beta=true"
    body = {"model": "claude-test", "max_tokens": 50, "stream": True,
            "messages": [{"role": "user", "content": "hi"}]}  # fmt: skip
    started = time.monotonic()
    proc = subprocess.Popen(
        ["curl", "-sS", "-N", "--cacert", str(r.bundle), "-H", "content-type: application/json",
         "-H", "x-api-key: client-key", "-d", json.dumps(body), url],
        stdout=subprocess.PIPE, env={"PATH": "/usr/bin:/bin", **r.env()},
    )  # fmt: skip
    arrivals, out = [], b""
    assert proc.stdout is not None
    for line in proc.stdout:
        out += line
        if line.startswith(b"event: content_block_delta"):
            arrivals.append(time.monotonic())
    assert proc.wait(20) == 0
    assert b"event: message_stop" in out
    assert b'"text":" from"' in out and b"second" in out
    assert_streamed(arrivals, started)
    assert second.requests[0].path == "/v1/messages?beta=true"  # the query string is kept
    check_log(r, fault, stream=True)
