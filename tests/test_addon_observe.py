"""The Router's observability hooks, in process: its pages, metrics fed from every attempt
record, the LLM view, the flow-body option and the TLS-trust hint."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
from llmrouter.proxy.addon import Router
from llmrouter.tools.fakeprovider import FakeProvider
from mitmproxy import contentviews, exceptions, tls
from mitmproxy.proxy.layers.http import HttpRequestHook
from mitmproxy.proxy.layers.tls import TlsFailedClientHook
from mitmproxy.test import taddons, tflow, tutils
from prometheus_client.parser import text_string_to_metric_families
from test_addon import messages_flow, router_context, two_profiles, write

NOWHERE = "http://127.0.0.1:9"


@pytest.fixture(autouse=True)
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path / "home"))  # the default JSONL: not the user's


def page_flow(path: str, method: str = "GET", scheme: str = "http") -> tflow.HTTPFlow:
    req = tutils.treq(host="llmrouter.invalid", port=443 if scheme == "https" else 80,
                      scheme=scheme, method=method, path=path, content=b"")  # fmt: skip
    return tflow.tflow(req=req)


async def get(tctx: taddons.context, path: str, **kw: str) -> tuple[int, bytes]:
    """A request through every addon's request hook, in mitmproxy's order (the Router, then its
    child addons)."""
    f = page_flow(path, **kw)
    await tctx.master.addons.handle_lifecycle(HttpRequestHook(f))
    assert f.response is not None
    return f.response.status_code, f.response.content or b""


async def test_pages_say_not_running_until_started_then_count_attempts(
    tmp_path: Path, providers: tuple[FakeProvider, FakeProvider]
) -> None:
    a, b = providers
    r = Router()
    with router_context(r) as tctx:
        tctx.configure(r, router_config=write(tmp_path, two_profiles(a.url, b.url)))
        code, body = await get(tctx, "/healthz")
        assert code == 503 and "not running" in json.loads(body)["reason"]
        await r.running()
        try:
            assert (await get(tctx, "/healthz"))[0] == 200
            f = messages_flow()
            await r.request(f)  # a 503, then b serves
            assert f.response is not None and f.response.status_code == 200
            code, body = await get(tctx, "/metrics", scheme="https")
            assert code == 200
            samples = {
                (s.name, tuple(sorted(s.labels.items()))): s.value
                for fam in text_string_to_metric_families(body.decode())
                for s in fam.samples
            }
            labels = (("outcome", "http_error"), ("profile", "default"), ("provider", "a"))
            key = ("llmrouter_attempts_total", labels)
            assert samples[key] == 1
            assert samples["llmrouter_failovers_total", (("profile", "default"),)] == 1
            code, body = await get(tctx, "/status")
            status = json.loads(body)
            assert code == 200 and status["config"] == tctx.options.router_config
            assert {p["name"]: p["state"] for p in status["providers"]} == {
                "a": "cooling", "b": "healthy"}  # fmt: skip
            assert (await get(tctx, "/healthz", method="POST"))[0] == 405
        finally:
            await r.done()


def test_flow_body_option_and_the_llm_view(tmp_path: Path) -> None:
    r = Router()
    with router_context(r) as tctx:
        assert tctx.options.router_flow_body_max_kb == 1024
        assert "llm" in contentviews.registry  # registered when the addon loads
        tctx.configure(r, router_config=write(tmp_path, two_profiles(NOWHERE, NOWHERE)))
        tctx.configure(r, router_flow_body_max_kb=0)  # 0: keep none
        with pytest.raises(exceptions.OptionsError, match="router_flow_body_max_kb must be >= 0"):
            tctx.configure(r, router_flow_body_max_kb=-1)


def test_tls_failure_for_an_intercepted_host_names_the_fix_once_per_client(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    r = Router()
    with router_context(r) as tctx:
        tctx.configure(r, router_config=write(tmp_path, two_profiles(NOWHERE, NOWHERE)))

        def failed(sni: str, error: str, ip: str = "10.1.2.3") -> None:
            client = tflow.tclient_conn()
            client.peername, client.sni, client.error = (ip, 50000), sni, error
            tctx.master.addons.trigger(TlsFailedClientHook(tls.TlsData(client, None)))  # type: ignore[arg-type]

        with caplog.at_level(logging.WARNING, logger="llmrouter"):
            failed("api.anthropic.com", "Client TLS handshake failed: tlsv1 alert unknown ca")
            failed("api.anthropic.com", "Client TLS handshake failed: tlsv1 alert unknown ca")
            failed("example.com", "tlsv1 alert unknown ca", ip="10.9.9.9")  # not intercepted
            failed("llmrouter.invalid", "tlsv1 alert unknown ca", ip="10.7.7.7")  # its pages
        hints = [m for m in caplog.messages if "broke off TLS" in m]
        assert len(hints) == 2 and "client 10.7.7.7 broke off TLS for llmrouter.invalid" in hints[1]
        assert "client 10.1.2.3 broke off TLS for api.anthropic.com" in hints[0]
        assert "NODE_EXTRA_CA_CERTS=" in hints[0] and "SSL_CERT_FILE=" in hints[0]
