"""An HTTP/2 client that resets one stream (RST_STREAM) and keeps its connection open cancels
that request's upstream attempt at once, logged `client_closed`, like a disconnect does; the
connection keeps serving other streams. A raw h2 client (the `h2` package) drives it.
"""

from __future__ import annotations

import json

import pytest
from hostile import H2Client, Hostile
from routerproc import provider, wait_for

pytestmark = pytest.mark.e2e

MSG = json.dumps({"model": "claude-test", "max_tokens": 5,
                  "messages": [{"role": "user", "content": "hi"}]}).encode()  # fmt: skip
HEADERS = {"content-type": "application/json", "x-api-key": "client-key"}


@pytest.fixture
def slow():
    server = Hostile("slow_ok", delay=30.0)
    yield server
    server.stop()


def test_a_stream_reset_cancels_the_attempt_and_the_connection_lives_on(
    slow, fakes, origin, router
) -> None:
    quick = fakes("quick")
    r = router({
        "providers": {"slow": provider(slow.url), "quick": provider(quick)},
        "profiles": {"default": {"hosts": ["localhost"], "providers": ["slow"]},
                     "quick": {"hosts": ["localhost"], "providers": ["quick"]}},
    })  # fmt: skip
    client = H2Client(r.port, "localhost", origin.port, r.bundle)
    try:
        sid = client.post("/v1/messages", MSG, HEADERS)
        assert wait_for(lambda: len(slow.requests) == 1, 10), "the attempt never started"
        client.reset(sid)
        # The upstream request is abandoned at once, not after its 30 s answer.
        assert slow.closed.wait(10), "the upstream attempt was not cancelled"
        (line,) = r.wait_lines(1)
        assert line["outcome"] == "client_closed" and line["provider"] == "slow"
        # The same connection still serves another stream.
        sid2 = client.post("/v1/messages", MSG, {**HEADERS, "x-router-profile": "quick"})
        status, body = client.response(sid2)
        assert status == 200 and b"Hello from quick." in body
    finally:
        client.close()
    assert [x["outcome"] for x in r.wait_lines(2)] == ["client_closed", "ok"]
