"""Baseline (a) of `make bench`: bare mitmproxy that sends every flow to a fake provider.

BENCH_TARGETS maps a profile name to a base URL, like the router's X-Router-Profile header.
SSE answers are streamed (bare mitmproxy would buffer them), everything else is buffered.
"""

import json
import os

from mitmproxy import http

TARGETS: dict[str, str] = json.loads(os.environ["BENCH_TARGETS"])


def request(flow: http.HTTPFlow) -> None:
    profile = flow.request.headers.pop("x-router-profile", "default")
    flow.request.url = TARGETS[profile] + flow.request.path


def responseheaders(flow: http.HTTPFlow) -> None:
    if flow.response and "event-stream" in flow.response.headers.get("content-type", ""):
        flow.response.stream = True
