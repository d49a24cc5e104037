"""LLM view speed on huge bodies: a 500 KB Claude Code request and a 20,000-event answer.

Normal runs have `--benchmark-disable` (each runs once, as a smoke test). Figures:
    .venv/bin/pytest tests/test_bench_render.py --benchmark-enable
Measured here: ~9 ms for the 500 KB request, ~200 ms for the 2.5 MB stream (~10 µs an event);
the flow keeps at most 1 MB of a relayed stream by default, so a view stays under ~100 ms.
"""

from __future__ import annotations

from typing import Any

from llmrouter.wire.render import render_request, render_response
from test_render import huge_answer, huge_request


def test_bench_render_huge_request(benchmark: Any) -> None:
    body = huge_request()
    text = benchmark(render_request, body, "/v1/messages")
    assert "[203] user" in text


def test_bench_render_huge_stream(benchmark: Any) -> None:
    body = huge_answer()
    text = benchmark(render_response, body, "text/event-stream", "/v1/messages")
    assert "streamed, 20,007 events" in text
