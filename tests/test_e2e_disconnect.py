"""A client that goes away mid-stream releases the upstream connection, and the JSONL says so."""

from __future__ import annotations

import time

import pytest
from llmrouter.tools.fakeprovider import Behaviour
from routerproc import anthropic_client, provider

pytestmark = pytest.mark.e2e


def test_client_leaving_mid_stream_closes_the_upstream(fakes, origin, router) -> None:
    slow = fakes("slow", default=Behaviour(deltas=200, interval=0.05))
    r = router({
        "providers": {"slow": provider(slow, "anthropic")},
        "profiles": {"default": {"hosts": ["localhost"], "providers": ["slow"]}},
    })  # fmt: skip
    client = anthropic_client(r, origin)
    with client.messages.stream(
        model="claude-test", max_tokens=500, messages=[{"role": "user", "content": "hi"}]
    ) as stream:
        for n, _ in enumerate(stream.text_stream):
            if n == 3:
                break  # leaving the block closes the connection after 3 deltas
    client.close()
    end = time.monotonic() + 10
    while slow.open_connections and time.monotonic() < end:
        time.sleep(0.05)
    assert slow.open_connections == 0, "the router kept the upstream stream open"
    (line,) = r.wait_lines(1)
    assert line["outcome"] == "client_closed" and line["final"] is True
    assert 3 <= line["content_events"] < 200
