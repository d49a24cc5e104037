"""The glue between the pure routing modules and the engine: `proxy.planning.Planner` (route,
policy, capability filters, order, binding) and the engine's attempt loop over its plan (route
fallback, binding only on success, usage history), with the upstream replaced by a script."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import pytest
from llmrouter.config import RouterConfig, parse_config
from llmrouter.proxy.attempt import Attempt
from llmrouter.proxy.dispatch import Engine, Request, provider_key
from llmrouter.proxy.exchange import _LAZY
from llmrouter.wire.apis import Usage
from llmrouter.wire.outcome import Failure, Outcome, classify_status

SESSION = [("x-claude-code-session-id", "5e55-10n")]


def cfg_of(profile: dict[str, Any], **providers: dict[str, Any]) -> RouterConfig:
    names = providers or {n: {} for n in ("a", "b", "c")}
    return parse_config({
        "providers": {n: {"base_url": f"https://{n}.example.com", "api": "anthropic", **kw}
                      for n, kw in names.items()},
        "profiles": {"p": {"hosts": ["h"], "providers": list(names), **profile}},
    }, {})  # fmt: skip


def request(
    headers: list[tuple[str, str]] | None = None, route: str | None = None, **payload: Any
) -> Request:
    body: dict[str, Any] = {"model": "claude-test", "max_tokens": 5,
                            "messages": [{"role": "user", "content": "hi"}], **payload}  # fmt: skip
    raw = json.dumps(body).encode()
    req = Request("id", "POST", "/v1/messages", headers or [], raw, body, "anthropic", "anthropic")
    req.route_header = route
    return req


def engine() -> Engine:
    return Engine(None, lambda _: None)  # type: ignore[arg-type]


# -- the plan ---------------------------------------------------------------------------------


def test_no_routes_plans_the_profile_pool_and_says_nothing_of_routes() -> None:
    cfg = cfg_of({})
    plan = engine().planner.plan(cfg, "p", request(), 0.0)
    assert plan.leg is not None and plan.leg.order == ("a", "b", "c")
    assert plan.route_label is None and plan.decision.route is None and plan.refusal is None
    assert plan.conversation is not None and plan.conversation.source == "prefix"
    assert plan.estimate is None  # nothing asked for it


def test_a_claude_code_request_is_planned_without_parsing_its_body() -> None:
    """The session header names the conversation; a profile without routes or context windows
    needs nothing else from a body that may be 500 KB, so it is never parsed."""
    body = json.dumps({"model": "claude-test", "max_tokens": 5, "messages": [], "stream": True})
    req = Request("id", "POST", "/v1/messages", SESSION, body.encode(), api="anthropic",
                  flavor="anthropic")  # fmt: skip
    plan = engine().planner.plan(cfg_of({"strategy": "round-robin"}), "p", req, 0.0)
    assert plan.leg is not None and plan.conversation is not None
    assert plan.conversation.source == "header x-claude-code-session-id"
    assert plan.conversation.ttl == 300 and plan.history is None
    assert req._payload is _LAZY  # never parsed
    # A body that asks for the 1 h cache TTL is read for it.
    one_hour = json.dumps(
        {
            "model": "claude-test",
            "messages": [
                {
                    "role": "user",
                    "content": [
                        {
                            "type": "text",
                            "text": "hi",
                            "cache_control": {"type": "ephemeral", "ttl": "1h"},
                        }
                    ],
                }
            ],
        }
    )
    req = Request("id", "POST", "/v1/messages", SESSION, one_hour.encode(), api="anthropic",
                  flavor="anthropic")  # fmt: skip
    assert engine().planner.plan(cfg_of({}), "p", req, 0.0).conversation.ttl == 3600  # type: ignore[union-attr]


def test_a_route_takes_its_providers_and_the_header_its_name() -> None:
    cfg = cfg_of({"providers": ["a"], "routes": {"background": {"providers": ["b", "c"]}}})
    planner = engine().planner
    plan = planner.plan(cfg, "p", request(model="claude-haiku-4-5"), 0.0)
    assert plan.route_label == "background" and plan.leg is not None
    assert plan.leg.order == ("b", "c") and plan.leg.fallback is False
    assert planner.plan(cfg, "p", request(), 0.0).route_label == "profile"
    named = planner.plan(cfg, "p", request(route="background"), 0.0)
    assert named.decision.reason == "background: header x-router-route"


def test_an_unknown_route_header_is_refused_with_the_known_ones() -> None:
    cfg = cfg_of({"routes": {"think": {"providers": ["b"]}}})
    plan = engine().planner.plan(cfg, "p", request(route="fast"), 0.0)
    assert plan.leg is None and plan.refusal is not None
    status, message, code = plan.refusal
    assert (status, code) == (400, "unknown_route")
    assert "unknown route 'fast'" in message and "routes: think" in message


def test_filtered_candidates_are_skipped_and_all_filtered_is_refused() -> None:
    cfg = cfg_of({}, a={"context_window": 10}, b={"vision": False}, c={})
    planner = engine().planner
    plan = planner.plan(cfg, "p", request(messages=[{"role": "user", "content": "x" * 100}]), 0)
    assert plan.leg is not None and plan.leg.order == ("b", "c")
    assert [(s["provider"], s["reason"]) for s in plan.skipped] == [("a", "context")]
    assert plan.estimate is not None and plan.estimate.source == "bytes"
    image = {"type": "image", "source": {"type": "base64", "media_type": "image/png",
                                         "data": "AAAA"}}  # fmt: skip
    cfg = cfg_of({}, a={"context_window": 10}, b={"vision": False})
    plan = planner.plan(cfg, "p", request(messages=[{"role": "user", "content": [image]}]), 0)
    assert plan.leg is None and plan.refusal is not None
    assert plan.refusal[0] == 400 and plan.refusal[2] == "unservable"
    assert "a: context (est 1.6k > window 10)" in plan.refusal[1]
    assert "b: vision (request has an image)" in plan.refusal[1]


def test_a_route_with_nothing_to_serve_falls_back_at_once_unless_told_not_to() -> None:
    routes = {"long_context": {"providers": ["a"]}}
    cfg = cfg_of({"routes": routes, "long_context_threshold": 10},
                 a={"context_window": 20}, b={}, c={})  # fmt: skip
    long = request(messages=[{"role": "user", "content": "x" * 400}])
    plan = engine().planner.plan(cfg, "p", long, 0.0)
    assert plan.leg is not None and plan.leg.fallback and plan.leg.order == ("b", "c")
    assert plan.leg.selection.reason.startswith("route long_context: no candidate can serve it")
    routes["long_context"]["fallback"] = False
    plan = engine().planner.plan(
        cfg_of(
            {"routes": routes, "long_context_threshold": 10}, a={"context_window": 20}, b={}, c={}
        ),
        "p",
        long,
        0.0,
    )
    assert plan.leg is None and plan.refusal is not None and plan.refusal[0] == 400


def test_the_profile_pool_is_made_only_when_asked_and_once() -> None:
    cfg = cfg_of({"strategy": "round-robin", "affinity": False,
                  "routes": {"think": {"providers": ["a"]}}})  # fmt: skip
    e = engine()
    req = request(thinking={"type": "enabled", "budget_tokens": 4096})
    plan = e.planner.plan(cfg, "p", req, 0.0)
    assert e.selector.counters == {"p/think": 1}  # one counter per route
    leg = e.planner.fallback(cfg, "p", req, plan)
    assert leg is not None and leg.fallback and leg.order == ("b", "c")  # a was the route's
    assert e.planner.fallback(cfg, "p", req, plan) is leg
    assert e.selector.counters == {"p/think": 1, "p": 1}


# -- affinity ---------------------------------------------------------------------------------


def test_rendezvous_binding_and_the_bound_provider_first() -> None:
    cfg = cfg_of({"strategy": "round-robin"})
    e = engine()
    first = e.planner.plan(cfg, "p", request(SESSION), 0.0)
    assert first.leg is not None and first.leg.pin is not None
    again = e.planner.plan(cfg, "p", request(SESSION), 0.0)
    assert again.leg is not None and again.leg.order == first.leg.order  # no shared state
    assert e.selector.counters == {}  # rendezvous: the counter does not move
    assert first.leg.affinity(first.leg.order[0]) == "new"
    other = first.leg.order[1]
    first.leg.success(other, 1.0)  # served by the second in line (a failover)
    bound = e.planner.plan(cfg, "p", request(SESSION), 2.0)
    assert bound.leg is not None and bound.leg.order[0] == other
    assert bound.leg.selection.reason.endswith(f"; bound to {other}")
    assert bound.leg.affinity(other) == "bound"
    assert bound.leg.affinity(first.leg.order[0]) == "rebound"
    # past the TTL (the cache's 300 s, sliding from the last success): expired, the hash picks
    late = e.planner.plan(cfg, "p", request(SESSION), 301.5)
    assert late.leg is not None and late.leg.order == first.leg.order
    assert late.leg.affinity(other) == "expired"


def test_a_binding_never_revives_a_cooling_or_disabled_provider() -> None:
    cfg = cfg_of({"strategy": "least-cost"})
    e = engine()
    plan = e.planner.plan(cfg, "p", request(SESSION), 0.0)
    assert plan.leg is not None
    plan.leg.success("c", 0.0)
    assert e.planner.plan(cfg, "p", request(SESSION), 1.0).leg.order[0] == "c"  # type: ignore[union-attr]
    key = provider_key("c", cfg.providers["c"])
    now = time.monotonic()
    e.health.record(key, now, Failure.SERVER, started=now)  # c cools down
    cooled = e.planner.plan(cfg, "p", request(SESSION), 1.0)
    assert cooled.leg is not None and cooled.leg.order[0] != "c"
    assert "bound to" not in cooled.leg.selection.reason
    off = cfg_of({}, a={}, b={}, c={"enabled": False})
    disabled = e.planner.plan(off, "p", request(SESSION), 1.0)
    assert disabled.leg is not None and "c" not in disabled.leg.order


def test_affinity_off_has_no_pin_but_keeps_the_conversation() -> None:
    # Its usage history serves the long-context estimate, so this profile has a route.
    cfg = cfg_of({"affinity": False, "routes": {"long_context": {"providers": ["c"]}}})
    plan = engine().planner.plan(cfg, "p", request(SESSION), 0.0)
    assert plan.leg is not None and plan.leg.pin is None and plan.leg.affinity("a") is None
    assert plan.conversation is not None and plan.history is not None


def test_a_reload_forgets_bindings_to_moved_or_removed_providers() -> None:
    cfg = cfg_of({"strategy": "round-robin"})
    e = engine()
    e.apply_config(cfg)
    for i, name in enumerate(("a", "b")):
        e.planner.bindings.bind(f"k{i}", name, "p", 300, 0.0)
    moved = cfg_of({"strategy": "round-robin"}, a={"base_url": "https://elsewhere.example.com"},
                   c={})  # fmt: skip
    e.apply_config(moved)
    assert e.planner.bindings.snapshot(1.0) == {}  # a moved, b is gone
    e.planner.bindings.bind("k3", "c", "p", 300, 0.0)
    e.apply_config(moved)  # an unrelated reload keeps them
    assert e.planner.bindings.snapshot(1.0) == {"p": {"c": 1}}


# -- the engine's loop over a plan --------------------------------------------------------------


class Script:
    """Stands in for Exchange.run: each provider answers with its scripted status."""

    def __init__(self, e: Engine, statuses: dict[str, int]) -> None:
        self.e, self.statuses, self.sent = e, statuses, []

    async def __call__(
        self, t: dict[str, float], prov: Any, req: Request, att: Attempt, model: str | None
    ) -> tuple[Any, bool]:
        from llmrouter.proxy.exchange import Answer

        att.model, att.status = model, self.statuses[att.provider]
        self.sent.append((att.provider, model, t["first_byte_timeout"]))
        outcome, retryable, failure = classify_status(att.status)
        if retryable:
            self.e._end(att, outcome, f"HTTP {att.status}", failure)
            return Answer(att.status, [], b"{}"), True
        att.final = True
        if outcome is Outcome.OK:
            att.usage = Usage(input_tokens=50_000, output_tokens=3)
        self.e._end(att, outcome, None)
        return Answer(att.status, [], b"{}"), False


def run(e: Engine, cfg: RouterConfig, req: Request, statuses: dict[str, int]) -> Any:
    script = Script(e, statuses)
    e.exchange.run = script  # type: ignore[method-assign]
    return asyncio.run(e.route(cfg, "p", req)), script


def test_route_fallback_timeouts_models_and_the_lines_that_say_so() -> None:
    big = {"providers": ["a"], "model": "big", "first_byte_timeout": 77}
    cfg = cfg_of({"long_context_threshold": 10, "first_byte_timeout": 9,
                  "routes": {"long_context": big}})  # fmt: skip
    e = engine()
    lines: list[dict[str, Any]] = []
    e.write = lines.append
    answer, script = run(e, cfg, request(SESSION, messages=[{"role": "user", "content": "x" * 99}]),
                         {"a": 503, "b": 200, "c": 200})  # fmt: skip
    assert answer.status == 200 and answer.served_by.provider == "b"
    assert answer.plan is not None and answer.plan.route_label == "long_context"
    assert script.sent == [("a", "big", 77), ("b", "claude-test", 9)]  # each pool's own policy
    assert [(x["provider"], x["route"], x["route_fallback"], x["affinity"]) for x in lines] == [
        ("a", "long_context", False, "new"), ("b", "long_context", True, "new")]  # fmt: skip
    assert lines[1]["candidates"] == ["a", "b", "c"]
    assert lines[1]["reason"] == ("failover: configured order; then the profile's pool: "
                                  "failover: configured order")  # fmt: skip
    assert all(x["conversation"] == answer.plan.conversation.base for x in lines)


def test_binding_only_on_success_and_the_usage_kept_for_the_estimate() -> None:
    cfg = cfg_of({"strategy": "round-robin", "long_context_threshold": 40_000,
                  "routes": {"long_context": {"providers": ["c"]}}})  # fmt: skip
    e = engine()
    answer, _ = run(e, cfg, request(SESSION), {"a": 400, "b": 400, "c": 400})
    assert answer.status == 400  # a final 4xx: the request's fault, nothing bound
    assert e.planner.bindings.size() == 0 and len(e.planner.usage) == 0
    answer, _ = run(e, cfg, request(SESSION), {"a": 200, "b": 200, "c": 200})
    assert answer.status == 200 and e.planner.bindings.size() == 1
    # The provider counted 50k input tokens for this conversation: its next, slightly longer
    # request is estimated from that, not from its few bytes, and takes the long-context route.
    more = request(SESSION, messages=[{"role": "user", "content": "hi"},
                                      {"role": "assistant", "content": "hello"},
                                      {"role": "user", "content": "more"}])  # fmt: skip
    answer, _ = run(e, cfg, more, {"a": 200, "b": 200, "c": 200})
    assert answer.plan.decision.route == "long_context"
    assert answer.plan.estimate is not None and answer.plan.estimate.source == "usage+bytes"


def test_a_refusal_is_an_answer_in_the_api_format_with_no_attempt() -> None:
    cfg = cfg_of({"routes": {"think": {"providers": ["a"]}}})
    answer, script = run(engine(), cfg, request(route="nope"), {})
    assert answer.status == 400 and not answer.attempts and not script.sent
    body = json.loads(answer.body)
    assert body["error"]["type"] == "invalid_request_error"
    assert "unknown route 'nope'" in body["error"]["message"]


@pytest.mark.parametrize("strategy", ["least-latency", "least-cost", "failover"])
def test_every_strategy_keeps_a_live_binding(strategy: str) -> None:
    cfg = cfg_of({"strategy": strategy})
    e = engine()
    plan = e.planner.plan(cfg, "p", request(SESSION), 0.0)
    assert plan.leg is not None
    plan.leg.success("b", 0.0)
    assert e.planner.plan(cfg, "p", request(SESSION), 10.0).leg.order[0] == "b"  # type: ignore[union-attr]
    # a compaction: the cache is cold anyway, the strategy chooses again
    compacting = request([*SESSION, ("x-claude-code-compaction", "1")])
    plan = e.planner.plan(cfg, "p", compacting, 10.0)
    assert plan.leg is not None and plan.leg.affinity("b") == "expired"


def test_the_profile_pool_filters_too_and_its_skips_reach_the_lines() -> None:
    cfg = cfg_of({"routes": {"think": {"providers": ["a"]}}}, a={}, b={"context_window": 5}, c={})
    e = engine()
    lines: list[dict[str, Any]] = []
    e.write = lines.append
    req = request(thinking={"type": "enabled", "budget_tokens": 4096})
    answer, script = run(e, cfg, req, {"a": 529, "b": 200, "c": 200})
    assert answer.served_by.provider == "c" and [p for p, _, _ in script.sent] == ["a", "c"]
    assert lines[-1]["route_fallback"] is True
    assert [(s["provider"], s["reason"]) for s in lines[-1]["skipped"]] == [("b", "context")]
    assert answer.plan.estimate is not None  # asked by b's window, shown by explain
