"""The hook layer, in process, with mitmproxy's own test helpers (taddons, tflow, tutils)."""

from __future__ import annotations

import base64
import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from addonctx import router_taddons
from llmrouter.proxy.addon import Router
from llmrouter.tools.fakeprovider import Behaviour, FakeProvider
from mitmproxy import exceptions
from mitmproxy.test import taddons, tflow, tutils

KEY = "sk-provider-secret-0123456789"


def write(tmp_path: Path, config: dict[str, Any]) -> str:
    path = tmp_path / "profiles.yaml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    return str(path)


def two_profiles(url_a: str, url_b: str) -> dict[str, Any]:
    return {
        "providers": {
            "a": {"base_url": url_a, "api": "anthropic", "api_key": KEY},
            "b": {"base_url": url_b, "api": "anthropic"},
        },
        "profiles": {
            "default": {"hosts": ["api.anthropic.com"], "providers": ["a", "b"]},
            "work": {"hosts": ["api.anthropic.com"], "providers": ["b"]},
        },
    }


def messages_flow(host: str = "api.anthropic.com", path: str = "/v1/messages", **headers: str):
    body = json.dumps({"model": "claude-test", "max_tokens": 5, "messages": []}).encode()
    req = tutils.treq(host=host, port=443, scheme="https", method="POST", path=path,
                      headers=((b"content-type", b"application/json"),), content=body)  # fmt: skip
    for k, v in headers.items():
        req.headers[k.replace("_", "-")] = v
    req.headers["x-api-key"] = "client-key"
    req.headers["host"] = host  # as clients send it: mitmweb must not show it on routed flows
    return tflow.tflow(req=req)


@pytest.fixture(autouse=True)
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # mitmproxy's confdir (~/.mitmproxy) holds the default JSONL: keep the user's home out of it.
    monkeypatch.setenv("HOME", str(tmp_path / "home"))


def router_context(r: Router) -> taddons.context:
    return router_taddons(r)


@pytest.fixture
def config_path(tmp_path: Path) -> str:
    return write(tmp_path, two_profiles("http://127.0.0.1:9", "http://127.0.0.1:9"))


def test_configure_sets_lazy_connections_and_intercepts_only_profile_hosts(config_path) -> None:
    r = Router()
    with router_context(r) as tctx:
        tctx.configure(r, router_config=config_path)
        assert tctx.options.connection_strategy == "lazy"
        assert len(tctx.options.allow_hosts) == 2  # the profiles' host and the router's own
        assert "api\\.anthropic\\.com" in tctx.options.allow_hosts[0]
        assert tctx.options.allow_hosts[1] == r"^llmrouter\.invalid:\d+$"


def test_user_scoping_of_interception_is_left_alone(config_path) -> None:
    r = Router()
    with router_context(r) as tctx:
        tctx.configure(r, ignore_hosts=["example.com"], router_config=config_path)
        assert tctx.options.allow_hosts == []
    r = Router()
    with router_context(r) as tctx:
        tctx.configure(r, allow_hosts=["mine.example"], router_config=config_path)
        assert tctx.options.allow_hosts == ["mine.example"]


def test_bad_config_is_an_options_error_with_the_field_path(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    cfg = two_profiles("http://127.0.0.1:9", "not a url")
    cfg["profiles"]["work"]["strategy"] = "fastest"
    r = Router()
    with router_context(r) as tctx:
        # At start-up: an error line (mitmproxy exits on it), not a traceback.
        tctx.configure(r, router_config=write(tmp_path, cfg))
        (error,) = [x.getMessage() for x in caplog.records if x.levelname == "ERROR"]
        assert "providers.b.base_url" in error and "profiles.work.strategy" in error
        assert r.config is None
        # At runtime: an OptionsError, which mitmproxy rolls back and shows.
        good = tmp_path / "good.yaml"
        good.write_text(yaml.safe_dump(two_profiles("http://127.0.0.1:9", "http://127.0.0.1:9")))
        tctx.configure(r, router_config=str(good))
        with pytest.raises(exceptions.OptionsError) as e:
            tctx.configure(r, router_config=write(tmp_path, cfg))
        assert "providers.b.base_url" in str(e.value)
        assert "profiles.work.strategy" in str(e.value)
        with pytest.raises(exceptions.OptionsError, match="file not found"):
            tctx.configure(r, router_config=str(tmp_path / "missing.yaml"))


def test_unknown_default_profile_and_bad_log_sizes_are_refused(config_path) -> None:
    r = Router()
    with router_context(r) as tctx:
        tctx.configure(r, router_config=config_path)
        with pytest.raises(exceptions.OptionsError, match="known: default, work"):
            tctx.configure(r, router_profile="nope")
        with pytest.raises(exceptions.OptionsError, match=">= 1"):
            tctx.configure(r, router_log_max_mb=0)


async def test_not_intercepted_hosts_and_paths_are_untouched(config_path) -> None:
    r = Router()
    with router_context(r) as tctx:
        tctx.configure(r, router_config=config_path)
        other = messages_flow(host="example.com", x_router_profile="work")
        await r.request(other)
        assert other.response is None and other.request.host == "example.com"
        models = messages_flow(path="/v1/models")
        models.request.method = "GET"
        await r.request(models)
        assert models.response is None and models.request.host == "api.anthropic.com"
        assert models.request.headers["x-api-key"] == "client-key"


async def test_unknown_profile_gets_an_api_error_listing_known_profiles(config_path) -> None:
    r = Router()
    with router_context(r) as tctx:
        tctx.configure(r, router_config=config_path)
        await r.running()
        f = messages_flow(x_router_profile="nope")
        try:
            await r.request(f)
        finally:
            await r.done()
        assert f.response is not None and f.response.status_code == 400
        body = json.loads(f.response.content or b"")
        assert body["type"] == "error" and body["error"]["type"] == "invalid_request_error"
        assert "default" in body["error"]["message"] and "work" in body["error"]["message"]


async def test_a_routed_request_fails_over_and_is_explained(tmp_path: Path, providers) -> None:
    a, b = providers
    r = Router()
    with router_context(r) as tctx:
        path = write(tmp_path, two_profiles(a.url, b.url))
        tctx.configure(r, router_config=path, router_log=str(tmp_path / "log.jsonl"))
        await r.running()
        try:
            f = messages_flow()
            await r.request(f)
            assert f.response is not None and f.response.status_code == 200
            assert f.response.headers["x-router-provider"] == "b"
            assert f.response.headers["x-router-attempts"] == "2"
            assert f.marked == ":arrow_right_hook:"  # ↪: drawn without an emoji font
            assert re.fullmatch(r"a 503 \d+ms → b 200 \d+ms · default/failover", f.comment)
            # The flow shows the provider's real URL, not the original host.
            assert f.request.pretty_url.startswith(b.url)
            assert a.requests[0].headers["x-api-key"] == KEY  # a's key, to a only
            assert b.requests[0].headers["x-api-key"] == "client-key"  # b passes through
            explained = r.explain([f])
            assert "failover" in explained and "#1 a" in explained and "#2 b" in explained
            status = tctx.command(r.status)
            assert "cooling" in status and "server" in status
            assert KEY not in f.comment and KEY not in explained and KEY not in status
            assert KEY not in str(f.request.headers)
        finally:
            await r.done()
        lines = (tmp_path / "log.jsonl").read_text().splitlines()
        assert [json.loads(x)["provider"] for x in lines] == ["a", "b"]
        assert KEY not in "".join(lines)


async def test_proxy_user_selects_the_profile_and_never_goes_upstream(
    tmp_path: Path, providers
) -> None:
    a, b = providers
    r = Router()
    with router_context(r) as tctx:
        tctx.configure(r, router_config=write(tmp_path, two_profiles(a.url, b.url)))
        await r.running()
        try:
            f = messages_flow()
            f.request.headers["proxy-authorization"] = (
                "Basic " + base64.b64encode(b"work:").decode()
            )
            await r.request(f)
            assert f.response is not None and f.response.headers["x-router-profile"] == "work"
            assert not a.requests and "proxy-authorization" not in b.requests[0].headers
        finally:
            await r.done()


def test_reload_command_keeps_the_last_good_config(
    config_path: str, caplog: pytest.LogCaptureFixture
) -> None:
    r = Router()
    with router_context(r) as tctx:
        tctx.configure(r, router_config=config_path)
        Path(config_path).write_text("providers: {}\nprofiles: {}\n")
        out = tctx.command(r.reload)
        assert out.startswith("not reloaded") and r.config is not None
        assert set(r.config.profiles) == {"default", "work"}
        errors = [r.getMessage() for r in caplog.records if r.levelname == "ERROR"]
        assert any("config not reloaded" in m and "providers:" in m for m in errors)


def test_log_options_apply_while_running(tmp_path: Path, config_path: str) -> None:
    r = Router()
    with router_context(r) as tctx:
        log = tmp_path / "a.jsonl"
        tctx.configure(r, router_config=config_path, router_log=str(log))
        assert r.journal is not None and r.journal.path == log
        tctx.configure(r, router_log_max_mb=7, router_log_backups=2)
        assert (r.journal.max_bytes, r.journal.backups) == (7 * 1024 * 1024, 2)
        tctx.configure(r, router_log=str(tmp_path / "b.jsonl"))
        assert r.journal.path == tmp_path / "b.jsonl"


async def test_a_401_on_pass_through_auth_fails_over_without_benching_the_provider(
    tmp_path: Path,
) -> None:
    # `b` has no key: its 401 is about the client's credentials, not the provider.
    a = FakeProvider("a")
    b = FakeProvider("b", default=Behaviour(kind="status", status=401))
    await a.start()
    await b.start()
    cfg = two_profiles(a.url, b.url)
    cfg["profiles"]["default"]["providers"] = ["b", "a"]
    r = Router()
    try:
        with router_context(r) as tctx:
            tctx.configure(r, router_config=write(tmp_path, cfg))
            await r.running()
            try:
                f = messages_flow()
                await r.request(f)
                assert f.response is not None and f.response.headers["x-router-provider"] == "a"
                assert "the client's credentials" in f.comment or "401" in f.comment
                status = tctx.command(r.status)
                row = next(line for line in status.splitlines() if line.startswith("b "))
                assert "healthy" in row and "auth" not in row
            finally:
                await r.done()
    finally:
        await a.stop()
        await b.stop()
