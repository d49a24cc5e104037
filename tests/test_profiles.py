"""Which profile serves a request: proxy user > header > router_profile > first in file order."""

from __future__ import annotations

import re

import pytest
from llmrouter.config import RouterConfig, parse_config
from llmrouter.routing.profiles import HostIndex, Resolution, allow_hosts_patterns, resolve

ANTHROPIC, OPENAI, LOCAL = "api.anthropic.com", "api.openai.com", "localhost"


@pytest.fixture(scope="module")
def cfg() -> RouterConfig:
    prov = {"base_url": "https://x.example.com", "api": "anthropic"}
    return parse_config(
        {
            "providers": {"x": prov},
            "profiles": {
                # file order matters: `first` is the first to serve api.anthropic.com
                "first": {"hosts": [ANTHROPIC], "providers": ["x"]},
                "default": {"hosts": [ANTHROPIC, OPENAI], "providers": ["x"]},
                "work": {"hosts": [ANTHROPIC], "providers": ["x"]},
                "openai-only": {"hosts": [OPENAI], "providers": ["x"]},
                "local": {"hosts": ["localhost:8443", "[::1]:9000", "127.0.0.1"],
                          "providers": ["x"]},
            },
        },
        {},
    )  # fmt: skip


@pytest.fixture(scope="module")
def index(cfg: RouterConfig) -> HostIndex:
    return HostIndex(cfg)


def res(
    cfg: RouterConfig,
    index: HostIndex,
    host: str = ANTHROPIC,
    port: int = 443,
    *,
    user: str | None = None,
    header: str | None = None,
    default: str = "default",
) -> Resolution:
    return resolve(cfg, index, host, port, proxy_user=user, header=header, default=default)


def test_proxy_user_wins_over_everything(cfg: RouterConfig, index: HostIndex) -> None:
    assert res(cfg, index, user="work", header="first") == Resolution("work")
    assert res(cfg, index, user="work") == Resolution("work")


def test_header_wins_over_router_profile(cfg: RouterConfig, index: HostIndex) -> None:
    assert res(cfg, index, header="work") == Resolution("work")
    assert res(cfg, index, header="first", default="work") == Resolution("first")


def test_router_profile_when_it_serves_the_host(cfg: RouterConfig, index: HostIndex) -> None:
    assert res(cfg, index) == Resolution("default")
    assert res(cfg, index, default="work") == Resolution("work")


def test_first_in_file_order_when_router_profile_does_not_serve(
    cfg: RouterConfig, index: HostIndex
) -> None:
    assert res(cfg, index, default="openai-only") == Resolution("first")
    assert res(cfg, index, OPENAI, default="work") == Resolution("default")
    assert res(cfg, index, default="not-a-profile") == Resolution("first")


def test_named_profile_not_serving_the_host_falls_back_with_a_note(
    cfg: RouterConfig, index: HostIndex
) -> None:
    got = res(cfg, index, user="openai-only")
    assert got.profile == "default" and got.error is None
    assert got.note == (
        f"profile 'openai-only' (proxy user) does not serve {ANTHROPIC}; using 'default'"
    )
    got = res(cfg, index, header="openai-only", default="work")
    assert got.profile == "work"
    assert got.note == (
        f"profile 'openai-only' (X-Router-Profile header) does not serve {ANTHROPIC}; using 'work'"
    )
    # a proxy user that does not serve the host sends it to rules 3 and 4, not to the header
    got = res(cfg, index, user="openai-only", header="work")
    assert got.profile == "default"


@pytest.mark.parametrize(("user", "header"), [("nope", None), (None, "nope"), ("nope", "work")])
def test_unknown_profile_is_an_error_listing_known(
    cfg: RouterConfig, index: HostIndex, user: str | None, header: str | None
) -> None:
    got = res(cfg, index, user=user, header=header)
    assert got.profile is None
    source = "proxy user" if user else "X-Router-Profile header"
    assert got.error == (
        f"unknown profile 'nope' (from the {source}); "
        "known profiles: first, default, work, openai-only, local"
    )


def test_empty_names_are_ignored(cfg: RouterConfig, index: HostIndex) -> None:
    assert res(cfg, index, user="", header="") == Resolution("default")


def test_host_nobody_serves_passes_through(cfg: RouterConfig, index: HostIndex) -> None:
    assert res(cfg, index, "example.org") == Resolution(None)
    got = res(cfg, index, "example.org", user="work")
    assert got.profile is None and got.note is not None and "does not serve" in got.note


def test_host_without_port_matches_any_port(index: HostIndex) -> None:
    assert index.serving(ANTHROPIC, 443) == ["first", "default", "work"]
    assert index.serving(ANTHROPIC, 8080) == ["first", "default", "work"]
    assert index.serving("API.Anthropic.COM", 443) == ["first", "default", "work"]
    assert index.serving("127.0.0.1", 1) == ["local"]


def test_host_with_port_matches_that_port_only(cfg: RouterConfig, index: HostIndex) -> None:
    assert index.serving(LOCAL, 8443) == ["local"]
    assert index.serving(LOCAL, 443) == []
    assert not index.intercepts(LOCAL, 8080)
    assert index.intercepts(LOCAL, 8443)
    assert res(cfg, index, LOCAL, 8443) == Resolution("local")
    assert res(cfg, index, LOCAL, 80) == Resolution(None)


def test_ipv6_hosts_with_and_without_brackets(index: HostIndex) -> None:
    assert index.serving("::1", 9000) == ["local"]  # mitmproxy reports it bare
    assert index.serving("[::1]", 9000) == ["local"]
    assert index.serving("::1", 9001) == []


def test_allow_hosts_patterns(cfg: RouterConfig) -> None:
    pats = [re.compile(p) for p in allow_hosts_patterns(cfg)]

    def allowed(hostport: str) -> bool:
        return any(p.search(hostport) for p in pats)

    assert allowed("api.anthropic.com:443")
    assert allowed("api.openai.com:8443")
    assert allowed("localhost:8443")
    assert not allowed("localhost:443")
    assert allowed("::1:9000")
    assert allowed("127.0.0.1:80")
    assert not allowed("api.anthropic.com.evil.com:443")
    assert not allowed("xapi.anthropic.com:443")
    assert not allowed("127.0.0.12:80")
