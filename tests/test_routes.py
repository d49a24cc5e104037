"""Scenario routes: detection on recorded-shape bodies, order, reasons, policy inheritance."""

from __future__ import annotations

import json
from typing import Any

import claudebodies as cb
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from llmrouter.config import parse_config
from llmrouter.routing.estimate import Estimate, Reported, estimate, kilo
from llmrouter.routing.routes import (
    Decision,
    detect,
    fallback_order,
    has_image,
    image_in_last_user_turn,
    policy_for,
)
from llmrouter.routing.signals import Signals
from llmrouter.schema import BUILTIN_ROUTES, DEFAULT_TIMEOUTS, STRATEGIES, Profile, Route

ALL = {name: {} for name in BUILTIN_ROUTES}
PROVIDERS = {
    "a": {"base_url": "https://a.example.com", "api": "anthropic"},
    "b": {"base_url": "https://b.example.com", "api": "anthropic"},
    "big": {"base_url": "https://big.example.com", "api": "anthropic"},
}


NONE = "profile: no route matched"


def profile(routes: dict[str, Any] | None = None, **kw: Any) -> Profile:
    data = {"hosts": ["api.anthropic.com"], "providers": ["a", "b"], **kw}
    if routes is not None:
        data["routes"] = routes
    cfg = parse_config({"providers": PROVIDERS, "profiles": {"p": data}}, {})
    return cfg.profiles["p"]


def sig(
    body: dict[str, Any],
    headers: list[tuple[str, str]] | None = None,
    path: str = "/v1/messages?beta=true",
    api: str = "anthropic",
) -> Signals:
    raw = cb.encode(body)
    return Signals.of(path, headers if headers is not None else cb.headers(), json.loads(raw),
                      raw, api)  # fmt: skip


def route_of(prof: Profile, s: Signals, last: Reported | None = None, **kw: Any) -> Decision:
    return detect(prof, s, lambda: estimate(s, last), **kw)


# -- the main loop lands on the profile's own pool ---------------------------------------------


def test_claude_code_main_loop_takes_no_route() -> None:
    body = cb.main_loop(3)
    assert body["thinking"] == {"type": "adaptive"}
    assert body["output_config"] == {"effort": "high"}
    assert any(m["role"] == "system" for m in body["messages"][1:])
    assert len(body["tools"]) == 30
    assert 50_000 < len(cb.encode(body)) < 150_000
    d = route_of(profile(ALL), sig(body))
    assert d == Decision(None, "profile: no route matched")


def test_profile_without_routes_says_nothing() -> None:
    assert route_of(profile(), sig(cb.main_loop())) == Decision(None, None)


def test_a_profile_uses_only_the_routes_it_defines() -> None:
    # A haiku call with only `think` defined: no background route, so the profile itself.
    d = route_of(profile({"think": {}}), sig(cb.haiku_side_call()))
    assert d.route is None


# -- each built-in route ---------------------------------------------------------------------


def test_haiku_side_call_is_background() -> None:
    d = route_of(profile(ALL), sig(cb.haiku_side_call()))
    assert d.route == "background"
    assert d.reason == "background: model claude-haiku-4-5-20251001 ~ *haiku*"


def test_background_models_are_the_profiles() -> None:
    prof = profile(ALL, background_models=["gpt-5-nano", "*flash-lite*"])
    assert route_of(prof, sig(cb.haiku_side_call())).route is None
    body = cb.haiku_side_call() | {"model": "gemini-2.5-flash-lite"}
    assert (
        route_of(prof, sig(body)).reason == "background: model gemini-2.5-flash-lite ~ *flash-lite*"
    )


def test_background_by_request_class_header() -> None:
    s = sig(cb.main_loop(), cb.headers(**{"x-claude-code-request-class": "auxiliary"}))
    d = route_of(profile(ALL), s)
    assert d.reason == "background: header x-claude-code-request-class=auxiliary"


@pytest.mark.parametrize(
    ("headers", "attribution", "reason"),
    [
        ({"x-claude-code-agent-id": cb.AGENT}, cb.ATTRIBUTION, "header x-claude-code-agent-id"),
        ({"X-Claude-Code-Request-Class": "subagent"}, cb.ATTRIBUTION,
         "header x-claude-code-request-class=subagent"),
        ({"x-claude-code-request-class": "workflow"}, cb.ATTRIBUTION,
         "header x-claude-code-request-class=workflow"),
        ({}, cb.ATTRIBUTION + " cc_is_subagent=true;", "cc_is_subagent=true in system[0]"),
    ],
)  # fmt: skip
def test_subagent_each_signal_alone(headers: dict[str, str], attribution: str, reason: str) -> None:
    s = sig(cb.main_loop(attribution=attribution), cb.headers(**headers))
    assert route_of(profile(ALL), s).reason == f"subagent: {reason}"


def test_subagent_as_captured_from_claude_code_2_1_197() -> None:
    # Both signals at once, attribution exactly as captured.
    attribution = (
        "x-anthropic-billing-header: cc_version=2.1.197.ffc; cc_entrypoint=sdk-cli; "
        "cc_is_subagent=true;"
    )
    body = cb.main_loop(attribution=attribution) | {"thinking": {"type": "disabled"}}
    s = sig(body, cb.headers(**{"x-claude-code-agent-id": cb.AGENT}))
    assert route_of(profile(ALL), s).route == "subagent"


def test_subagent_marker_elsewhere_than_system0_does_not_count() -> None:
    body = cb.main_loop()
    body["system"][2]["text"] += " cc_is_subagent=true"
    assert route_of(profile(ALL), sig(body)).route is None


def test_codex_subagent_and_its_exceptions() -> None:
    prof = profile(ALL)
    spawn = sig(cb.codex_turn(), cb.codex_headers(**{"x-openai-subagent": "collab_spawn"}),
                "/v1/responses", "openai")  # fmt: skip
    assert route_of(prof, spawn).reason == "subagent: header x-openai-subagent=collab_spawn"
    compact = sig(cb.codex_turn(), cb.codex_headers(**{"x-openai-subagent": "compact"}),
                  "/v1/responses", "openai")  # fmt: skip
    assert route_of(profile({"subagent": {}}), compact).route is None
    memory = sig(cb.codex_turn(), cb.codex_headers(**{"x-openai-subagent": "memory_consolidation"}),
                 "/v1/responses", "openai")  # fmt: skip
    assert route_of(prof, memory).route == "background"


def test_claude_code_web_search_call() -> None:
    d = route_of(profile(ALL), sig(cb.web_search_call()))
    assert d.reason == "web_search: tool web_search_20250305"


def test_main_loop_with_a_websearch_client_tool_is_not_web_search() -> None:
    # Claude Code's own WebSearch tool is a client tool (name, no type): not the server tool.
    body = cb.main_loop()
    body["tools"].append({"name": "WebSearch", "description": "search", "input_schema": {}})
    assert route_of(profile(ALL), sig(body)).route is None


@pytest.mark.parametrize(
    "kind", ["web_search", "web_search_preview", "web_search_preview_2025_03_11"]
)
def test_openai_web_search_tools(kind: str) -> None:
    body = cb.codex_turn()
    body["tools"] = [{"type": kind}]
    s = sig(body, cb.codex_headers(), "/v1/responses", "openai")
    assert route_of(profile(ALL), s).reason == f"web_search: tool {kind}"


def test_chat_completions_web_search_options() -> None:
    body = {"model": "gpt-4o-search-preview", "messages": [{"role": "user", "content": "news"}],
            "web_search_options": {}}  # fmt: skip
    s = sig(body, [], "/v1/chat/completions", "openai")
    assert route_of(profile(ALL), s).reason == "web_search: web_search_options"


def test_image_in_the_last_turn_vs_three_turns_back() -> None:
    prof = profile(ALL)
    now = cb.main_loop(4, image_turns=(4,))  # in the latest tool result
    assert route_of(prof, sig(now)).reason == "image: image block in the last user turn"
    back = cb.main_loop(4, image_turns=(1,))  # three turns back
    assert route_of(prof, sig(back)).route is None
    assert has_image(sig(back))  # but a text-only provider still cannot take it


def test_image_in_the_first_prompt() -> None:
    body = cb.main_loop(0, image_turns=(0,))
    assert route_of(profile(ALL), sig(body)).route == "image"


def test_system_messages_after_the_last_user_turn_are_skipped() -> None:
    body = cb.main_loop(0, image_turns=(0,))
    body["messages"].append({"role": "system", "content": "reminder"})
    assert image_in_last_user_turn(body["messages"]) == "image"


@pytest.mark.parametrize(
    ("content", "kind"),
    [
        ([{"type": "document", "source": {"type": "base64", "media_type": "application/pdf",
                                          "data": "JVBERi0x"}}], "document"),
        ([{"type": "text", "text": "look"},
          {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBOR"}}], "image_url"),
        ([{"type": "input_image", "image_url": "data:image/png;base64,iVBOR"}], "input_image"),
        ([{"type": "tool_result", "tool_use_id": "t", "content": "no image"}], None),
    ],
)  # fmt: skip
def test_image_block_kinds(content: list[Any], kind: str | None) -> None:
    assert image_in_last_user_turn([{"role": "user", "content": content}]) == kind


def test_adaptive_thinking_and_effort_high_are_not_think() -> None:
    assert route_of(profile({"think": {}}), sig(cb.main_loop())).route is None


@pytest.mark.parametrize(
    ("budget", "expected"),
    [(1024, "think: thinking enabled, budget 1024 >= 1024"), (1023, NONE), (None, NONE)],
)
def test_think_with_explicit_budget(budget: int | None, expected: str) -> None:
    thinking: dict[str, Any] = {"type": "enabled"}
    if budget is not None:
        thinking["budget_tokens"] = budget
    body = cb.main_loop() | {"thinking": thinking}
    assert route_of(profile({"think": {}}), sig(body)).reason == expected


def test_think_min_budget_is_the_profiles() -> None:
    body = cb.main_loop() | {"thinking": {"type": "enabled", "budget_tokens": 5000}}
    assert route_of(profile({"think": {}}, think_min_budget=8000), sig(body)).route is None


@pytest.mark.parametrize(
    ("effort", "responses", "expected"),
    [
        ("high", True, "think: reasoning.effort=high"),
        ("xhigh", True, "think: reasoning.effort=xhigh"),
        ("medium", True, NONE),
        ("high", False, "think: reasoning_effort=high"),
        ("low", False, NONE),
    ],
)
def test_think_openai_efforts(effort: str, responses: bool, expected: str) -> None:
    if responses:
        s = sig(cb.codex_turn(effort=effort), cb.codex_headers(), "/v1/responses", "openai")
    else:
        body = {"model": "o3", "messages": [{"role": "user", "content": "hi"}],
                "reasoning_effort": effort}  # fmt: skip
        s = sig(body, [], "/v1/chat/completions", "openai")
    assert route_of(profile({"think": {}}), s).reason == expected


def test_think_efforts_are_the_profiles() -> None:
    s = sig(cb.codex_turn(effort="medium"), cb.codex_headers(), "/v1/responses", "openai")
    assert route_of(profile({"think": {}}, think_efforts=["medium"]), s).route == "think"


# -- long context -------------------------------------------------------------------------------


def test_long_context_from_bytes_alone() -> None:
    body = cb.main_loop(60)  # ~420 KB
    s = sig(body)
    d = route_of(profile(ALL), s)
    assert d.route == "long_context"
    est = estimate(s)
    assert est.source == "bytes"
    assert d.reason == f"long_context: est {kilo(est.tokens)} > 60k (bytes)"


def test_long_context_from_usage_history() -> None:
    # A small body whose conversation the provider already counted at 70k (say, big images
    # or a tokenizer that counts more than bytes suggest): the history decides.
    body = cb.main_loop(2)
    s = sig(body)
    assert route_of(profile(ALL), s).route is None
    last = Reported(tokens=70_000, size=len(s.body) - 3000, messages=len(body["messages"]) - 2)
    d = route_of(profile(ALL), s, last)
    assert d.route == "long_context"
    assert d.reason is not None
    assert d.reason.startswith("long_context: est 71k > 60k (usage+bytes)")


def test_long_context_threshold_is_the_profiles() -> None:
    s = sig(cb.main_loop(2))
    assert route_of(profile(ALL, long_context_threshold=10_000), s).route == "long_context"


def test_long_context_comes_before_the_other_builtins() -> None:
    body = cb.main_loop(60, attribution=cb.ATTRIBUTION + " cc_is_subagent=true;")
    assert route_of(profile(ALL), sig(body)).route == "long_context"


def test_estimate_is_not_computed_when_no_route_needs_it() -> None:
    calls = []

    def est() -> Estimate:
        calls.append(1)
        return Estimate(1, "bytes")

    detect(profile({"subagent": {}, "think": {}}), sig(cb.main_loop()), est)
    assert calls == []
    detect(profile({"long_context": {}}), sig(cb.main_loop()), est)
    assert calls == [1]


# -- explicit header and custom routes ----------------------------------------------------------


def test_explicit_header_wins() -> None:
    d = route_of(profile(ALL), sig(cb.haiku_side_call()), explicit="think")
    assert d == Decision("think", "think: header x-router-route")


@pytest.mark.parametrize("name", ["nope", "image"])
def test_explicit_unknown_route_is_an_error(name: str) -> None:
    d = route_of(profile({"think": {}, "background": {}}), sig(cb.main_loop()), explicit=name)
    assert d.route is None
    assert d.error == (
        f"unknown route {name!r} (from the X-Router-Route header); this profile's routes: "
        "think, background"
    )


def test_explicit_header_on_a_profile_without_routes() -> None:
    d = route_of(profile(), sig(cb.main_loop()), explicit="think")
    assert d.error is not None and d.error.endswith("this profile's routes: none")


def test_custom_routes_before_builtins_in_file_order() -> None:
    routes = {
        "background": {},
        "opus": {"match": {"model": ["*opus*", "*sonnet*"]}},
        "claude-tools": {"match": {"header": {"User-Agent": "^claude-cli/"}}},
    }
    prof = profile(routes)
    d = route_of(prof, sig(cb.main_loop()))
    assert d == Decision("opus", "opus: match model claude-opus-4-8 ~ *opus*")
    d = route_of(prof, sig(cb.haiku_side_call()))
    assert d == Decision("claude-tools", "claude-tools: match header user-agent ~ ^claude-cli/")


def test_custom_route_all_conditions_must_hold() -> None:
    routes = {
        "big-opus": {
            "match": {"model": "*opus*", "path": "/v1/messages", "min_tokens": 100_000,
                      "header": {"x-app": "^cli$"}},
        }
    }  # fmt: skip
    prof = profile(routes)
    assert route_of(prof, sig(cb.main_loop(2))).route is None  # too small
    d = route_of(prof, sig(cb.main_loop(60)))
    assert d.route == "big-opus"
    assert d.reason is not None
    assert "path /v1/messages ~ /v1/messages" in d.reason and "(bytes)" in d.reason
    assert route_of(prof, sig(cb.main_loop(60), cb.headers()[:-1])).route is None  # no x-app
    assert route_of(prof, sig(cb.main_loop(60), path="/v1/messages/count_tokens")).route is None


def test_custom_route_header_regex_is_searched() -> None:
    prof = profile({"team": {"match": {"header": {"user-agent": "cli/2\\.1"}}}})
    assert route_of(prof, sig(cb.main_loop())).route == "team"


# -- the effective policy -----------------------------------------------------------------------


def test_route_inherits_the_profiles_strategy_not_failover() -> None:
    prof = profile({"background": {"providers": ["big"]}}, strategy="least-cost")
    pol = policy_for(prof, "background")
    assert pol.strategy == "least-cost"
    assert pol.providers == ("big",)


def test_policy_of_the_profile_itself() -> None:
    prof = profile(strategy="round-robin", weights={"a": 2}, affinity=False, affinity_ttl=60)
    pol = policy_for(prof, None)
    assert (pol.route, pol.providers, pol.strategy, dict(pol.weights)) == (
        None, ("a", "b"), "round-robin", {"a": 2},
    )  # fmt: skip
    assert (pol.affinity, pol.affinity_ttl, pol.fallback) == (False, 60, False)
    assert pol.counter("p") == "p"
    assert policy_for(profile({"think": {}}), "think").counter("p") == "p/think"


def test_model_precedence() -> None:
    cfg = parse_config(
        {
            "providers": PROVIDERS | {
                "m": {"base_url": "https://m.example.com", "api": "anthropic",
                      "models": {"*opus*": "provider-opus", "*": "provider-any"}},
            },
            "profiles": {"p": {"hosts": ["h"], "providers": ["m"], "routes": {
                "background": {"model": "route-model"},
                "think": {"models": {"*opus*": "route-opus"}},
            }}},
        },
        {},
    )  # fmt: skip
    prof, m = cfg.profiles["p"], cfg.providers["m"]
    assert policy_for(prof, "background").model_for(m, "claude-opus-4-8") == "route-model"
    think = policy_for(prof, "think")
    assert think.model_for(m, "claude-opus-4-8") == "route-opus"
    assert think.model_for(m, "claude-haiku") == "provider-any"  # no route glob: provider's
    assert policy_for(prof, None).model_for(cfg.providers["a"], "x") == "x"
    assert policy_for(prof, None).model_for(m, None) is None


def test_route_timeouts_beat_provider_and_profile() -> None:
    prof = profile({"long_context": {"first_byte_timeout": 120}}, first_byte_timeout=20)
    resolved = dict(DEFAULT_TIMEOUTS) | {"first_byte_timeout": 20.0, "connect_timeout": 2.0}
    out = policy_for(prof, "long_context").timeouts_for(resolved)
    assert out == resolved | {"first_byte_timeout": 120}
    assert policy_for(prof, None).timeouts_for(resolved) == resolved


def test_fallback_order() -> None:
    prof = profile({"long_context": {"providers": ["big", "a"]}, "think": {"fallback": False}})
    assert fallback_order(policy_for(prof, "long_context"), prof) == ("b",)
    assert fallback_order(policy_for(prof, "think"), prof) == ()
    assert fallback_order(policy_for(prof, None), prof) == ()


# Every field a profile may set that a route inherits, with values to draw.
_PROFILE_VALUES: dict[str, st.SearchStrategy[Any]] = {
    "strategy": st.sampled_from(STRATEGIES),
    "weights": st.dictionaries(st.sampled_from(["a", "b"]), st.floats(0, 10), min_size=1),
    "deadline": st.floats(1, 1000),
    "affinity": st.booleans(),
    "affinity_ttl": st.floats(1, 7200),
    "translate": st.booleans(),
    **{k: st.floats(0.5, 900) for k in DEFAULT_TIMEOUTS},
}
_ROUTE_VALUES: dict[str, st.SearchStrategy[Any]] = {
    **_PROFILE_VALUES,
    "providers": st.sampled_from([["big"], ["b", "a"], ["a", "big"]]),
    "weights": st.dictionaries(st.sampled_from(["a", "b", "big"]), st.floats(0, 10), min_size=1),
    "fallback": st.booleans(),
}


@settings(max_examples=300, deadline=None)
@given(
    st.fixed_dictionaries({}, optional=_PROFILE_VALUES),
    st.fixed_dictionaries({}, optional=_ROUTE_VALUES),
    st.sampled_from(BUILTIN_ROUTES),
)
def test_inheritance_never_yields_a_builtin_default_where_the_profile_set_a_value(
    prof_fields: dict[str, Any], route_fields: dict[str, Any], name: str
) -> None:
    if "weights" in route_fields and "providers" in route_fields:
        route_fields["weights"] = {k: v for k, v in route_fields["weights"].items()
                                   if k in route_fields["providers"]} or None  # fmt: skip
        if route_fields["weights"] is None:
            del route_fields["weights"]
    elif "weights" in route_fields:
        route_fields["weights"] = {k: v for k, v in route_fields["weights"].items() if k != "big"}
        if not route_fields["weights"]:
            del route_fields["weights"]
    prof = profile({name: route_fields}, **prof_fields)
    route = Route(**route_fields)
    pol = policy_for(prof, name)
    resolved = {k: -1.0 for k in DEFAULT_TIMEOUTS}  # what the profile/provider chain gave

    def expect(field: str, profile_value: Any) -> Any:
        if field in route_fields:
            return getattr(route, field)
        return profile_value  # inherited: exactly the profile's, set or default

    assert pol.strategy == expect("strategy", prof.strategy)
    assert dict(pol.weights) == dict(expect("weights", prof.weights))
    assert pol.deadline == expect("deadline", prof.deadline)
    assert pol.affinity == expect("affinity", prof.affinity)
    assert pol.affinity_ttl == expect("affinity_ttl", prof.affinity_ttl)
    assert pol.translate == expect("translate", prof.translate)
    assert pol.providers == tuple(expect("providers", prof.providers))
    assert pol.fallback == route_fields.get("fallback", True)
    timeouts = pol.timeouts_for(resolved)
    for k in DEFAULT_TIMEOUTS:
        assert timeouts[k] == route_fields.get(k, -1.0)
    # Where the profile set a value and the route did not, it is the profile's value.
    for field, value in prof_fields.items():
        if field in route_fields or field in DEFAULT_TIMEOUTS:
            continue
        got = getattr(pol, field)
        assert (dict(got) if field == "weights" else got) == value
