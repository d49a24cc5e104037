"""Proxy credentials in the hook layer (taddons, tflow): every connection and request of a
router with `access` authenticates against the current config, the router's own pages stay
open only at /healthz, and the router refuses to listen beyond loopback without users."""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from addonctx import router_taddons
from llmrouter.access import hash_token
from llmrouter.proxy.addon import Router
from llmrouter.tools.fakeprovider import FakeProvider
from mitmproxy import exceptions, http
from mitmproxy.addons.proxyauth import ProxyAuth
from mitmproxy.test import tflow, tutils

HOST = "api.anthropic.com"


def users(**extra: Any) -> dict[str, Any]:
    return {
        "alice": {"token_sha256": hash_token("alice-token"), "profiles": ["default"], **extra},
        "bob": {"token_sha256": hash_token("bob-token"), "profiles": ["default", "work"]},
    }


def config(url: str = "http://127.0.0.1:9", access: dict[str, Any] | None = None) -> dict:
    cfg: dict[str, Any] = {
        "providers": {"a": {"base_url": url, "api": "anthropic"}},
        "profiles": {"default": {"hosts": [HOST], "providers": ["a"]},
                     "work": {"hosts": [HOST], "providers": ["a"]}},
    }  # fmt: skip
    if access is not None:
        cfg["access"] = access
    return cfg


def write(tmp_path: Path, cfg: dict[str, Any]) -> str:
    path = tmp_path / "profiles.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return str(path)


def basic(user: str, token: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{token}".encode()).decode()


def connect(host: str = HOST, port: int = 443, auth: str | None = None) -> http.HTTPFlow:
    req = tutils.treq(method=b"CONNECT", host=host, port=port, scheme=b"", path=b"",
                      authority=f"{host}:{port}".encode(), content=b"")  # fmt: skip
    req.headers.clear()
    if auth is not None:
        req.headers["proxy-authorization"] = auth
    return tflow.tflow(req=req)


def api_call(host: str = HOST, path: str = "/v1/messages", auth: str | None = None,
             client: Any = None, **headers: str) -> http.HTTPFlow:  # fmt: skip
    body = json.dumps({"model": "claude-test", "max_tokens": 5, "messages": []}).encode()
    req = tutils.treq(host=host, port=443, scheme=b"https", method=b"POST", path=path.encode(),
                      content=body)  # fmt: skip
    req.headers["content-type"] = "application/json"
    if auth is not None:
        req.headers["proxy-authorization"] = auth
    for k, v in headers.items():
        req.headers[k.replace("_", "-")] = v
    f = tflow.tflow(req=req)
    if client is not None:
        f.client_conn = client
    return f


def plain(url_host: str, path: str = "/", auth: str | None = None) -> http.HTTPFlow:
    req = tutils.treq(host=url_host, port=80, scheme=b"http", method=b"GET", path=path.encode(),
                      content=b"")  # fmt: skip
    req.headers.clear()
    if auth is not None:
        req.headers["proxy-authorization"] = auth
    return tflow.tflow(req=req)


@pytest.fixture
async def fake() -> AsyncIterator[FakeProvider]:
    f = FakeProvider("a")
    await f.start()
    yield f
    await f.stop()


@pytest.fixture(autouse=True)
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path / "home"))


# -- connections -------------------------------------------------------------------------------


def test_connect_without_or_with_bad_credentials_gets_407(tmp_path: Path) -> None:
    r = Router()
    with router_taddons(r) as tctx:
        tctx.configure(r, router_config=write(tmp_path, config(access={"users": users()})))
        for auth in (None, basic("alice", "not-her-Token"), basic("mallory", "x"), "Bearer abc"):
            f = connect(auth=auth)
            r.gate.http_connect(f)
            assert f.response is not None and f.response.status_code == 407, auth
            assert f.response.headers["proxy-authenticate"] == 'Basic realm="llmrouter"'
            assert f.response.headers["connection"] == "close"
            assert "proxy-authorization" not in f.request.headers
            assert b"-Token" not in f.response.content and b"alice-token" not in f.response.content
        ok = connect(auth=basic("alice", "alice-token"))
        r.gate.http_connect(ok)
        assert ok.response is None and "proxy-authorization" not in ok.request.headers


def test_a_pass_through_host_authenticates_too(tmp_path: Path) -> None:
    r = Router()
    with router_taddons(r) as tctx:
        tctx.configure(r, router_config=write(tmp_path, config(access={"users": users()})))
        f = connect("example.com")
        r.gate.http_connect(f)
        assert f.response is not None and f.response.status_code == 407
        f = connect("example.com", auth=basic("alice+work", "alice-token"))  # not hers
        r.gate.http_connect(f)
        assert f.response is not None and f.response.status_code == 403
        assert b"may not use profile 'work'" in f.response.content
        f = plain("example.com")  # plain HTTP in absolute form, no tunnel
        r.gate.requestheaders(f)
        assert f.response is not None and f.response.status_code == 407
        assert f.response.headers["content-type"].startswith("text/plain")
        f = plain("example.com", auth=basic("alice", "alice-token"))
        r.gate.requestheaders(f)
        assert f.response is None and "proxy-authorization" not in f.request.headers


def test_a_forbidden_profile_on_an_intercepted_host_gets_an_api_format_403(tmp_path: Path):
    r = Router()
    with router_taddons(r) as tctx:
        tctx.configure(r, router_config=write(tmp_path, config(access={"users": users()})))
        tunnel = connect(auth=basic("alice+work", "alice-token"))
        r.gate.http_connect(tunnel)
        assert tunnel.response is None  # refused per request, in the API's format
        f = api_call(client=tunnel.client_conn)
        r.gate.requestheaders(f)
        assert f.response is not None and f.response.status_code == 403
        err = json.loads(f.response.content)
        assert err["type"] == "error" and err["error"]["type"] == "permission_error"
        assert "allowed: default" in err["error"]["message"]


async def test_reload_refuses_a_removed_user_on_the_open_connection(tmp_path, fake) -> None:
    r = Router()
    with router_taddons(r) as tctx:
        path = write(tmp_path, config(fake.url, access={"users": users()}))
        tctx.configure(r, router_config=path, router_log=str(tmp_path / "log.jsonl"))
        await r.running()
        try:
            tunnel = connect(auth=basic("alice", "alice-token"))
            r.gate.http_connect(tunnel)
            first = api_call(client=tunnel.client_conn)
            r.gate.requestheaders(first)
            await r.request(first)
            assert first.response is not None and first.response.status_code == 200
            assert first.response.headers["x-router-profile"] == "default"
            write(tmp_path, config(fake.url, access={"users": {"bob": users()["bob"]}}))
            assert tctx.command(r.reload).startswith("reloaded")
            again = api_call(client=tunnel.client_conn)  # the same keep-alive connection
            r.gate.requestheaders(again)
            assert again.response is not None and again.response.status_code == 407
            assert again.response.headers["connection"] == "close"
            assert json.loads(again.response.content)["error"]["type"] == "authentication_error"
            assert len(fake.requests) == 1
            line = json.loads((tmp_path / "log.jsonl").read_text().splitlines()[0])
            assert line["user"] == "alice"
        finally:
            await r.done()


async def test_name_plus_profile_and_header_pick_within_the_users_set(tmp_path, fake) -> None:
    r = Router()
    with router_taddons(r) as tctx:
        tctx.configure(r, router_config=write(tmp_path, config(fake.url, {"users": users()})))
        await r.running()
        try:
            f = api_call(auth=basic("bob+work", "bob-token"))
            await r.request(f)  # requestheaders did not run: the request hook checks alone
            assert f.response is not None and f.response.headers["x-router-profile"] == "work"
            f = api_call(auth=basic("bob", "bob-token"), x_router_profile="work")
            await r.request(f)
            assert f.response is not None and f.response.headers["x-router-profile"] == "work"
            f = api_call(auth=basic("alice", "alice-token"), x_router_profile="work")
            await r.request(f)
            assert f.response is not None and f.response.status_code == 403
            assert "may not use profile 'work'" in json.loads(f.response.content)["error"][
                "message"]  # fmt: skip
            for q in fake.requests:
                assert (
                    "proxy-authorization" not in q.headers and "x-router-profile" not in q.headers
                )
        finally:
            await r.done()


# -- the router's own pages --------------------------------------------------------------------


def page(path: str, direct: bool = False, **headers: str) -> http.HTTPFlow:
    host = "127.0.0.1" if direct else "llmrouter.invalid"
    req = tutils.treq(host=host, port=8080 if direct else 80, scheme=b"http", method=b"GET",
                      path=path.encode(), content=b"")  # fmt: skip
    req.headers.clear()
    for k, v in headers.items():
        req.headers[k.replace("_", "-")] = v
    f = tflow.tflow(req=req)
    if direct:
        f.client_conn.sockname = ("127.0.0.1", 8080)
    return f


def test_healthz_is_open_and_the_other_pages_need_a_user(tmp_path: Path) -> None:
    r = Router()
    with router_taddons(r) as tctx:
        tctx.configure(r, router_config=write(tmp_path, config(access={"users": users()})))
        for direct in (False, True):
            f = page("/healthz", direct)
            r.gate.requestheaders(f)
            assert f.response is None  # the observer answers it
        f = page("/status")
        r.gate.requestheaders(f)
        assert f.response is not None and f.response.status_code == 407
        f = page("/metrics", direct=True)
        r.gate.requestheaders(f)
        assert f.response is not None and f.response.status_code == 401
        assert f.response.headers["www-authenticate"] == 'Basic realm="llmrouter"'
        f = page("/metrics", direct=True, authorization=basic("alice", "alice-token"))
        r.gate.requestheaders(f)
        assert f.response is None and "authorization" not in f.request.headers  # never saved
        f = page("/status", proxy_authorization=basic("alice", "alice-token"))
        r.gate.requestheaders(f)
        assert f.response is None


# -- safe by default ---------------------------------------------------------------------------


def test_listening_beyond_loopback_needs_users_or_router_open(tmp_path: Path) -> None:
    r = Router()
    with router_taddons(r) as tctx:
        open_cfg = write(tmp_path, config())
        tctx.configure(r, router_config=open_cfg)
        for host in ("", "0.0.0.0", "192.168.1.10"):
            with pytest.raises(exceptions.OptionsError, match=r"llmrouter\.access add NAME"):
                tctx.configure(r, listen_host=host)
        tctx.configure(r, router_open=True, listen_host="0.0.0.0")
        tctx.configure(r, router_open=False, listen_host="::1")
        tctx.configure(r, mode=["regular@127.0.0.2:8080"])
        with pytest.raises(exceptions.OptionsError, match=r"refusing to listen on '0\.0\.0\.0'"):
            tctx.configure(r, mode=["regular@0.0.0.0:8080"])


def test_with_users_it_listens_wide_but_keeps_them(tmp_path: Path) -> None:
    r = Router()
    with router_taddons(ProxyAuth(), r) as tctx:
        tctx.configure(r, router_config=write(tmp_path, config(access={"users": users()})))
        tctx.configure(r, listen_host="0.0.0.0")
        write(tmp_path, config())  # access removed while listening on every interface
        out = tctx.command(r.reload)
        assert out.startswith("not reloaded") and "refusing to listen" in out
        assert r.config is not None and r.config.access is not None
        with pytest.raises(exceptions.OptionsError, match="socks5 mode"):
            tctx.configure(r, mode=["socks5"])
        with pytest.raises(exceptions.OptionsError, match="proxyauth"):
            tctx.configure(r, proxyauth="any")


def test_no_server_no_check(tmp_path: Path) -> None:
    r = Router()
    with router_taddons(r, listen_host="") as tctx:  # the default: every interface
        tctx.configure(r, server=False)  # mitmdump -n -r flows: nothing listens
        tctx.configure(r, router_config=write(tmp_path, config()))
        assert r.config is not None


def test_start_up_refusal_is_one_error_line(tmp_path: Path, caplog) -> None:
    r = Router()
    with router_taddons(r, listen_host="") as tctx:  # the default: every interface
        tctx.configure(r, router_config=write(tmp_path, config()))  # start-up's first configure
    errors = [x.getMessage() for x in caplog.records if x.levelname == "ERROR"]
    assert len(errors) == 1 and "refusing to listen on '' (every interface)" in errors[0]
    assert "--listen-host 127.0.0.1" in errors[0]  # mitmproxy exits on it, before listening
