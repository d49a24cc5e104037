"""Cost of route detection, the conversation key and the estimate, next to the JSON parse the
router already does, on Claude Code-shaped bodies of ~50 KB and ~500 KB.

Normal runs have `--benchmark-disable` (each runs once, as a smoke test). Figures:
    .venv/bin/pytest tests/test_bench_routes.py --benchmark-enable
Target (issue 10): detection adds at most 5 % to the router's per-request CPU; here, well under
the JSON parse alone.
"""

from __future__ import annotations

import json
from typing import Any

import claudebodies as cb
import pytest
from llmrouter.config import parse_config
from llmrouter.routing.affinity import BindingBook, pin
from llmrouter.routing.capabilities import capable
from llmrouter.routing.conversation import conversation_of
from llmrouter.routing.estimate import Reported, UsageBook, estimate, thread_key
from llmrouter.routing.routes import detect, has_image, policy_for
from llmrouter.routing.signals import Signals
from llmrouter.schema import BUILTIN_ROUTES

CFG = parse_config(
    {
        "providers": {
            "a": {"base_url": "https://a.example.com", "api": "anthropic",
                  "context_window": 200_000},
            "b": {"base_url": "https://b.example.com", "api": "anthropic", "vision": False},
        },
        "profiles": {"p": {"hosts": ["h"], "providers": ["a", "b"], "routes": {
            "opus-cli": {"match": {"model": "*opus*", "header": {"user-agent": "^claude-cli/"},
                                   "min_tokens": 1_000_000}},
            **{name: {} for name in BUILTIN_ROUTES},
        }}},
    },
    {},
)  # fmt: skip
PROFILE = CFG.profiles["p"]
SIZES = {"50KB": 0, "500KB": 70}  # tool round trips: 52 KB and ~470 KB bodies


def body_of(size: str) -> bytes:
    return cb.encode(cb.main_loop(SIZES[size]))


def route_request(body: bytes, payload: dict[str, Any], usage: UsageBook, book: BindingBook
                  ) -> tuple[Any, ...]:  # fmt: skip
    """What the engine will ask per request: every route checked (none matches a main-loop
    call), key, estimate with history, capability filter, binding lookup."""
    sig = Signals.of("/v1/messages", cb.headers(), payload, body, "anthropic")
    conv = conversation_of(sig, "p")
    assert conv is not None
    tkey = thread_key(conv.base, sig)
    est = estimate(sig, usage.get(tkey))
    decision = detect(PROFILE, sig, est)
    policy = policy_for(PROFILE, decision.route)
    kept, _ = capable(policy.providers, CFG.providers, tokens=est.tokens,
                      image=lambda: has_image(sig))  # fmt: skip
    p = pin(book, conv.key(decision.route), "p", policy.affinity_ttl or conv.ttl, 0.0)
    return decision, kept, p.lookup.bound


@pytest.mark.parametrize("size", list(SIZES))
def test_bench_json_parse(benchmark: Any, size: str) -> None:
    body = body_of(size)
    benchmark.group = f"route a {size} body"
    assert benchmark(json.loads, body)["model"]


@pytest.mark.parametrize("size", list(SIZES))
def test_bench_route_request(benchmark: Any, size: str) -> None:
    body = body_of(size)
    payload = json.loads(body)
    usage, book = UsageBook(), BindingBook()
    sig = Signals.of("/v1/messages", cb.headers(), payload, body, "anthropic")
    conv = conversation_of(sig, "p")
    assert conv is not None
    # A conversation the router has seen: the previous turn's usage is known.
    last = Reported((len(body) - 4000) // 4, len(body) - 4000, len(payload["messages"]) - 2)
    usage.put(thread_key(conv.base, sig), last)
    for route in (None, "long_context"):
        book.bind(conv.key(route), "a", "p", 300, 0.0)
    benchmark.group = f"route a {size} body"
    decision, _, bound = benchmark(route_request, body, payload, usage, book)
    assert decision.route == ("long_context" if size == "500KB" else None)
    assert bound == "a"


@pytest.mark.parametrize("size", list(SIZES))
def test_bench_route_request_first_turn(benchmark: Any, size: str) -> None:
    """No history: the estimate walks every message for media."""
    body = body_of(size)
    payload = json.loads(body)
    benchmark.group = f"route a {size} body"
    benchmark(route_request, body, payload, UsageBook(), BindingBook())


@pytest.mark.parametrize("size", list(SIZES))
def test_bench_plan(benchmark: Any, size: str) -> None:
    """Everything the engine now asks per request before its first attempt
    (proxy.planning.Planner.plan): signals, conversation key, estimate with history, every
    route checked, capability filter, candidates, strategy and binding lookup. The old path
    (candidates and select, no routes) is part of it."""
    from llmrouter.proxy.dispatch import Engine, Request
    from llmrouter.wire.apis import Usage

    body = body_of(size)
    payload = json.loads(body)
    engine = Engine(None, lambda _: None)  # type: ignore[arg-type]
    engine.apply_config(CFG)
    req = Request("id", "POST", "/v1/messages?beta=true", cb.headers(), body, payload,
                  "anthropic", "anthropic")  # fmt: skip
    first = engine.planner.plan(CFG, "p", req, 0.0)  # a conversation the router has served
    assert first.leg is not None and first.history is not None
    first.leg.success(first.leg.order[0], 0.0)
    engine.planner.remember(first.history, Usage(input_tokens=len(body) // 4))
    benchmark.group = f"route a {size} body"
    plan = benchmark(engine.planner.plan, CFG, "p", req, 1.0)
    assert plan.leg is not None and plan.leg.affinity(plan.leg.order[0]) == "bound"
