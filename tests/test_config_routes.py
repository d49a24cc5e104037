"""profiles.yaml: routes, affinity and capability fields; every error names its path."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from llmrouter.config import ConfigError, parse_config
from llmrouter.schema import BUILTIN_ROUTES

BASE: dict[str, Any] = {
    "providers": {
        "a": {"base_url": "https://a.example.com", "api": "anthropic"},
        "b": {"base_url": "https://b.example.com", "api": "anthropic"},
        "big": {"base_url": "https://big.example.com", "api": "anthropic"},
    },
    "profiles": {"p": {"hosts": ["api.anthropic.com"], "providers": ["a", "b"]}},
}


def with_routes(routes: Any, **profile: Any) -> dict[str, Any]:
    data = copy.deepcopy(BASE)
    data["profiles"]["p"]["routes"] = routes
    data["profiles"]["p"].update(profile)
    return data


def error_of(data: dict[str, Any]) -> str:
    with pytest.raises(ConfigError) as e:
        parse_config(data, {})
    return str(e.value)


def test_defaults() -> None:
    cfg = parse_config(BASE, {})
    p = cfg.profiles["p"]
    assert p.routes == {}
    assert p.long_context_threshold == 60_000
    assert p.background_models == ["*haiku*"]
    assert p.think_min_budget == 1024
    assert p.think_efforts == ["high", "xhigh"]
    assert p.affinity is True and p.affinity_ttl is None and p.translate is True
    a = cfg.providers["a"]
    assert a.context_window is None and a.vision is True


def test_a_full_routes_block() -> None:
    cfg = parse_config(
        with_routes({
            "long_context": {"providers": ["big"], "model": "claude-sonnet-4-5", "fallback": False,
                             "first_byte_timeout": 120, "deadline": 900},
            "background": {"strategy": "least-cost", "models": {"*": "claude-haiku-4-5"}},
            "subagent": {"affinity": False},
            "think": {"weights": {"a": 3}, "affinity_ttl": 3600, "translate": False},
            "opus": {"match": {"model": "*opus*", "header": {"User-Agent": "^claude-cli"},
                               "path": "/v1/messages", "min_tokens": 1000}},
        }),
        {},
    )  # fmt: skip
    routes = cfg.profiles["p"].routes
    assert list(routes) == ["long_context", "background", "subagent", "think", "opus"]
    assert routes["long_context"].providers == ["big"]
    m = routes["opus"].match
    assert m is not None
    assert m.model == ["*opus*"]
    assert m.header == {"user-agent": "^claude-cli"}  # names are case-insensitive


def test_unknown_route_name_is_an_error() -> None:
    msg = error_of(with_routes({"long_ctx": {"providers": ["big"]}}))
    assert msg == (
        "profiles.p.routes.long_ctx: unknown route 'long_ctx'; built-in routes are "
        f"{', '.join(BUILTIN_ROUTES)}, and a custom route needs a `match:` block"
    )


def test_builtin_route_with_match_is_an_error() -> None:
    msg = error_of(with_routes({"background": {"match": {"model": "*mini*"}}}))
    assert msg.startswith("profiles.p.routes.background.match: 'background' is a built-in route")


def test_route_name_must_travel_in_a_header() -> None:
    msg = error_of(with_routes({"my route": {"match": {"model": "*"}}}))
    assert msg.startswith("profiles.p.routes.my route: a route name is letters, digits")


@pytest.mark.parametrize(
    ("routes", "fragment"),
    [
        ({"think": {"providers": ["nope"]}},
         "profiles.p.routes.think.providers[0]: unknown provider 'nope'; known: a, b, big"),
        ({"think": {"providers": ["a", "a"]}},
         "profiles.p.routes.think.providers: lists a more than once"),
        ({"think": {"providers": []}}, "profiles.p.routes.think.providers: List should have"),
        ({"think": {"weights": {"big": 1}}},
         "profiles.p.routes.think.weights.big: 'big' is not one of this route's providers (a, b)"),
        ({"think": {"providers": ["big"], "weights": {"a": 1}}},
         "profiles.p.routes.think.weights.a: 'a' is not one of this route's providers (big)"),
        ({"think": {"strategy": "fastest"}}, "profiles.p.routes.think.strategy: Input should be"),
        ({"think": {"model": "m", "models": {"*": "n"}}},
         "profiles.p.routes.think: give `model` or `models`, not both"),
        ({"think": {"idle_timeout": 0}},
         "profiles.p.routes.think.idle_timeout: Input should be greater than 0"),
        ({"think": {"affinity_ttl": -5}},
         "profiles.p.routes.think.affinity_ttl: Input should be greater than 0"),
        ({"think": {"stratgy": "failover"}},
         "profiles.p.routes.think.stratgy: unknown field (check the spelling); allowed: "),
        ({"x": {"match": {}}},
         "profiles.p.routes.x.match: needs at least one of model, header, path, min_tokens"),
        ({"x": {"match": {"header": {"user-agent": "(unclosed"}}}},
         "profiles.p.routes.x.match.header: user-agent: '(unclosed' is not a valid regex"),
        ({"x": {"match": {"min_tokens": 0}}},
         "profiles.p.routes.x.match.min_tokens: Input should be greater than or equal to 1"),
        ({"x": {"match": {"modle": "*"}}},
         "profiles.p.routes.x.match.modle: unknown field (check the spelling); allowed: model, "
         "header, path, min_tokens"),
        ("not a map", "profiles.p.routes: Input should be a valid dictionary"),
    ],
)  # fmt: skip
def test_route_errors_name_the_path(routes: Any, fragment: str) -> None:
    assert fragment in error_of(with_routes(routes))


@pytest.mark.parametrize(
    ("field", "value", "fragment"),
    [
        ("long_context_threshold", 0, "profiles.p.long_context_threshold: Input should be greater"),
        ("think_min_budget", -1, "profiles.p.think_min_budget: Input should be greater"),
        ("background_models", 3, "profiles.p.background_models: Input should be a valid list"),
        ("affinity", "sometimes", "profiles.p.affinity: Input should be a valid boolean"),
        ("affinity_ttl", 0, "profiles.p.affinity_ttl: Input should be greater than 0"),
    ],
)  # fmt: skip
def test_profile_field_errors_name_the_path(field: str, value: Any, fragment: str) -> None:
    assert fragment in error_of(with_routes({}, **{field: value}))


@pytest.mark.parametrize(
    ("field", "value", "fragment"),
    [
        ("context_window", 0, "providers.a.context_window: Input should be greater than or equal"),
        ("context_window", "big", "providers.a.context_window: Input should be a valid integer"),
        ("vision", "no way", "providers.a.vision: Input should be a valid boolean"),
    ],
)
def test_provider_capability_errors_name_the_path(field: str, value: Any, fragment: str) -> None:
    data = copy.deepcopy(BASE)
    data["providers"]["a"][field] = value
    assert fragment in error_of(data)


def test_one_glob_or_effort_may_be_a_string() -> None:
    p = parse_config(with_routes({}, background_models="*mini*", think_efforts="max"), {})
    assert p.profiles["p"].background_models == ["*mini*"]
    assert p.profiles["p"].think_efforts == ["max"]


def test_every_bad_route_is_reported() -> None:
    msg = error_of(with_routes({"a1": {}, "think": {"providers": ["zz"]}, "web_search": {}}))
    lines = msg.splitlines()
    assert [line.split(":", 1)[0] for line in lines] == [
        "profiles.p.routes.a1",
        "profiles.p.routes.think.providers[0]",
    ]
