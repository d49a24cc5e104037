"""End to end, scenario routes (issue 10) through the real mitmdump with the anthropic SDK: one
fake provider per route, each route reaching its own provider and model; a route whose
providers all fail falling back to the profile's pool (and the JSONL saying so); least-cost
inside a route ranking by the route's model; capability filters that never send a request a
provider is known to refuse.
"""

from __future__ import annotations

import re
from typing import Any

import anthropic
import pytest
from llmrouter.tools.fakeprovider import Behaviour, FakeProvider
from routerproc import RouterProc, anthropic_client, provider

pytestmark = pytest.mark.e2e

HI = [{"role": "user", "content": "hi"}]
LONG = [{"role": "user", "content": "word " * 4000}]  # 20 KB: ~5.7k tokens by bytes / 3.5
PNG = ("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5"
       "ErkJggg==")  # fmt: skip
IMAGE = {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PNG}}
ROUTES = ("long_context", "subagent", "background", "web_search", "image", "think", "opus")


def routed(fakes: Any) -> tuple[dict[str, Any], dict[str, FakeProvider]]:
    """A profile with every built-in route and a custom one, each on its own provider and model."""
    fs = {n: fakes(n) for n in ("main", *ROUTES)}
    routes: dict[str, Any] = {n: {"providers": [n], "model": f"{n}-model"} for n in ROUTES}
    routes["opus"]["match"] = {"model": "*opus*"}
    routes["web_search"].pop("model")  # no model: the requested one goes through
    cfg = {
        "providers": {n: provider(f) for n, f in fs.items()},
        "profiles": {"default": {"hosts": ["localhost"], "providers": ["main"],
                                 "long_context_threshold": 2000, "routes": routes}},
    }  # fmt: skip
    return cfg, fs


def send(client: Any, model: str = "claude-test", messages: Any = HI, **kw: Any) -> Any:
    return client.messages.with_raw_response.create(
        model=model, max_tokens=20, messages=messages, **kw
    )


def test_each_route_reaches_its_own_provider_and_model(fakes, origin, router) -> None:
    cfg, fs = routed(fakes)
    r = router(cfg)
    client = anthropic_client(r, origin)
    old_image = [{"role": "user", "content": [IMAGE, {"type": "text", "text": "what is it?"}]},
                 {"role": "assistant", "content": "a dot"}, *HI]  # fmt: skip
    cases: list[tuple[str, str, dict[str, Any]]] = [
        # Claude Code's main-loop shape: adaptive thinking, effort high; no route of its own
        ("profile", "main", {"thinking": {"type": "adaptive"},
                             "extra_body": {"output_config": {"effort": "high"}}}),
        ("long_context", "long_context", {"messages": LONG}),
        ("subagent", "subagent", {"extra_headers": {"x-claude-code-agent-id": "agent-7"}}),
        ("background", "background", {"model": "claude-haiku-4-5"}),
        ("web_search", "web_search", {"tools": [{"type": "web_search_20250305",
                                                 "name": "web_search", "max_uses": 1}]}),
        ("image", "image", {"messages": [{"role": "user", "content": [IMAGE]}]}),
        ("profile", "main", {"messages": old_image}),  # an image three turns back: no route
        ("think", "think", {"thinking": {"type": "enabled", "budget_tokens": 2048}}),
        ("opus", "opus", {"model": "claude-opus-4-1"}),
        ("background", "background", {"extra_headers": {"X-Router-Route": "background"}}),
    ]  # fmt: skip
    for label, target, kw in cases:
        h = send(client, **kw).headers
        assert (h["x-router-route"], h["x-router-provider"]) == (label, target), kw
    sent = {n: [q.json["model"] for q in f.requests] for n, f in fs.items()}
    assert sent == {
        "main": ["claude-test", "claude-test"],
        **{n: [f"{n}-model"] for n in ROUTES if n not in ("web_search", "background")},
        "web_search": ["claude-test"],
        "background": ["background-model", "background-model"],
    }
    # X-Router-Route is the router's: it never goes upstream
    assert all("x-router-route" not in q.headers for f in fs.values() for q in f.requests)
    lines = r.wait_lines(len(cases))
    reasons = [(x["route"], x["route_reason"]) for x in lines]
    assert reasons[0] == (None, "profile: no route matched")
    assert re.fullmatch(r"long_context: est 5\.\dk > 2\.0k \(bytes\)", reasons[1][1]), reasons[1]
    assert reasons[2:6] == [
        ("subagent", "subagent: header x-claude-code-agent-id"),
        ("background", "background: model claude-haiku-4-5 ~ *haiku*"),
        ("web_search", "web_search: tool web_search_20250305"),
        ("image", "image: image block in the last user turn"),
    ]
    assert reasons[6:] == [
        (None, "profile: no route matched"),
        ("think", "think: thinking enabled, budget 2048 >= 1024"),
        ("opus", "opus: match model claude-opus-4-1 ~ *opus*"),
        ("background", "background: header x-router-route"),
    ]
    assert all(x["route_fallback"] is False and x["final"] for x in lines)
    r.stop()
    comments = [f.comment for f in r.flows() if f.comment]
    assert re.fullmatch(r"long_context 200 \d+ms · default/long_context/failover",
                        comments[1]), comments[1]  # fmt: skip


def test_unknown_route_header_is_a_clear_error(fakes, origin, router) -> None:
    cfg, fs = routed(fakes)
    r = router(cfg)
    client = anthropic_client(r, origin)
    with pytest.raises(anthropic.BadRequestError) as exc:
        send(client, extra_headers={"X-Router-Route": "bulk"})
    message = exc.value.response.json()["error"]["message"]
    assert "unknown route 'bulk'" in message and "long_context, subagent" in message
    assert not any(f.requests for f in fs.values())
    assert "refused 400" in r.output()


def test_a_failing_route_falls_back_to_the_profile(fakes, origin, router) -> None:
    main, backup = fakes("main"), fakes("backup")
    big = fakes("big", default=Behaviour(kind="status", status=503))
    huge = fakes("huge", default=Behaviour(kind="status", status=529))
    routes = {"long_context": {"providers": ["big", "huge"], "model": "big-model"},
              "background": {"providers": ["big"], "fallback": False}}  # fmt: skip
    cfg = {
        "providers": {n: provider(f) for n, f in
                      (("main", main), ("backup", backup), ("big", big), ("huge", huge))},
        "profiles": {"default": {"hosts": ["localhost"], "providers": ["main", "backup", "big"],
                                 "long_context_threshold": 2000, "routes": routes}},
        "health": {"backoff_initial": 0.01, "backoff_max": 0.01},
    }  # fmt: skip
    r = router(cfg)
    client = anthropic_client(r, origin)
    h = send(client, messages=LONG).headers
    assert (h["x-router-route"], h["x-router-provider"], h["x-router-attempts"]) == (
        "long_context", "main", "3")  # fmt: skip
    assert main.requests[0].json["model"] == "claude-test"  # the profile's own model rule
    lines = r.wait_lines(3)
    assert [(x["provider"], x["route_fallback"]) for x in lines] == [
        ("big", False), ("huge", False), ("main", True)]  # fmt: skip
    assert all(x["route"] == "long_context" for x in lines)
    assert lines[-1]["candidates"] == ["big", "huge", "main", "backup"]  # big is the route's
    assert "then the profile's pool: failover: configured order" in lines[-1]["reason"]
    # fallback: false -> the route's own failure is the answer
    with pytest.raises(anthropic.InternalServerError):
        send(client, model="claude-haiku-4-5")
    last = r.wait_lines(4)[-1]
    assert (last["route"], last["provider"], last["route_fallback"]) == ("background", "big", False)
    assert len(main.requests) == 1 and not backup.requests
    r.stop()
    [comment] = [f.comment for f in r.flows() if "main 200" in (f.comment or "")]
    assert " · default/long_context/failover" in comment
    assert comment.endswith(" · fell back to the profile")


def test_least_cost_in_a_route_ranks_by_the_route_model(fakes, origin, router) -> None:
    x, y = fakes("x"), fakes("y")
    cfg = {
        "providers": {
            "x": provider(x, price={"input": 5, "output": 25}),  # every model at $5/$25
            "y": provider(y, models={"*": "claude-opus-4-1"}),  # genai-prices by model
        },
        "profiles": {"default": {
            "hosts": ["localhost"], "providers": ["x", "y"], "strategy": "least-cost",
            "routes": {"background": {"model": "claude-3-5-haiku-latest"}},
        }},
    }  # fmt: skip
    r = router(cfg)
    client = anthropic_client(r, origin)
    # The profile: y sends opus ($15/$75), x costs $5/$25: x first.
    assert send(client).headers["x-router-provider"] == "x"
    # The route sends haiku 3.5 to every candidate: y ($0.8/$4) is now the cheaper one.
    h = send(client, model="claude-haiku-4-5").headers
    assert (h["x-router-route"], h["x-router-provider"], h["x-router-strategy"]) == (
        "background", "y", "least-cost")  # fmt: skip
    assert y.requests[0].json["model"] == "claude-3-5-haiku-latest"  # route > provider models
    profile_line, route_line = r.wait_lines(2)
    assert profile_line["candidates"] == ["x", "y"] and route_line["candidates"] == ["y", "x"]
    assert route_line["model"] == "claude-3-5-haiku-latest"
    assert re.fullmatch(r"least-cost: \$[\d.]+/M blended", route_line["reason"])


def test_capabilities_filter_and_refuse_with_the_reason(fakes, origin, router) -> None:
    tiny, roomy, text = fakes("tiny"), fakes("roomy"), fakes("text")
    cfg = {
        "providers": {"tiny": provider(tiny, context_window=1000),
                      "roomy": provider(roomy, context_window=200_000),
                      "text": provider(text, vision=False)},
        "profiles": {"default": {"hosts": ["localhost"], "providers": ["tiny", "roomy"]},
                     "textonly": {"hosts": ["localhost"], "providers": ["text", "tiny"]}},
    }  # fmt: skip
    r: RouterProc = router(cfg)
    client = anthropic_client(r, origin)
    assert send(client).headers["x-router-provider"] == "tiny"
    assert send(client, messages=LONG).headers["x-router-provider"] == "roomy"
    assert len(tiny.requests) == 1  # the long one was never sent to the small window
    line = r.wait_lines(2)[-1]
    [skip] = line["skipped"]
    assert (skip["provider"], skip["reason"]) == ("tiny", "context")
    assert re.fullmatch(r"est 5\.\dk > window 1\.0k", skip["detail"]), skip
    with pytest.raises(anthropic.BadRequestError) as exc:
        send(client, messages=[{"role": "user", "content": [IMAGE, {"type": "text",
             "text": "word " * 400}]}], extra_headers={"X-Router-Profile": "textonly"})  # fmt: skip
    message = exc.value.response.json()["error"]["message"]
    assert message == (
        "router: no provider can serve this request: text: vision (request has an image); "
        "tiny: context (est 2.2k > window 1.0k)"
    )
    assert not text.requests and len(tiny.requests) == 1
