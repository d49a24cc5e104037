"""Routes and affinity in the hook layer, in process (taddons, tflow): the X-Router-Route header,
the x-router-route response header, the flow comment, router.explain and router.status."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from addonctx import router_taddons
from llmrouter.proxy.addon import Router
from llmrouter.tools.fakeprovider import FakeProvider
from mitmproxy.test import tflow, tutils

SESSION = "0b5e55ed-0000-4000-8000-00000000c0de"


@pytest.fixture(autouse=True)
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path / "home"))


@pytest.fixture
async def fakes() -> AsyncIterator[dict[str, FakeProvider]]:
    fs = {n: FakeProvider(n) for n in ("a", "b", "cheap")}
    for f in fs.values():
        await f.start()
    yield fs
    for f in fs.values():
        await f.stop()


def config(fs: dict[str, FakeProvider]) -> dict[str, Any]:
    return {
        "providers": {
            **{n: {"base_url": f.url, "api": "anthropic"} for n, f in fs.items()},
            "gpt": {"base_url": fs["a"].url, "api": "openai"},
        },
        "profiles": {"default": {
            "hosts": ["api.anthropic.com", "api.openai.com"], "providers": ["a", "b", "gpt"],
            "strategy": "round-robin",
            "routes": {"background": {"providers": ["cheap"], "model": "cheap-model"}},
        }},
    }  # fmt: skip


def flow(model: str = "claude-test", host: str = "api.anthropic.com", **headers: str) -> Any:
    path = "/v1/messages" if "anthropic" in host else "/v1/chat/completions"
    body = {"model": model, "max_tokens": 5, "messages": [{"role": "user", "content": "hi"}]}
    req = tutils.treq(host=host, port=443, scheme="https", method="POST", path=path,
                      headers=((b"content-type", b"application/json"),),
                      content=json.dumps(body).encode())  # fmt: skip
    for k, v in headers.items():
        req.headers[k.replace("_", "-")] = v
    return tflow.tflow(req=req)


async def routed(tmp_path: Path, fs: dict[str, FakeProvider], *flows: Any) -> tuple[Router, str]:
    """Route `flows` one after the other; the router and its router.status afterwards."""
    r = Router()
    path = tmp_path / "profiles.yaml"
    path.write_text(yaml.safe_dump(config(fs)))
    with router_taddons(r) as tctx:
        tctx.configure(r, router_config=str(path), router_log=str(tmp_path / "log.jsonl"))
        await r.running()
        try:
            for f in flows:
                await r.request(f)
            status = tctx.command(r.status)
        finally:
            await r.done()
    return r, status


async def test_route_header_is_taken_off_and_the_route_shown(tmp_path: Path, fakes) -> None:
    named = flow(x_router_route="background", x_claude_code_session_id=SESSION)
    plain = flow()
    r, _ = await routed(tmp_path, fakes, named, plain)
    assert named.response is not None and named.response.status_code == 200
    assert named.response.headers["x-router-route"] == "background"
    assert named.response.headers["x-router-provider"] == "cheap"
    assert "x-router-route" not in fakes["cheap"].requests[0].headers  # never upstream
    assert fakes["cheap"].requests[0].json["model"] == "cheap-model"
    assert named.comment.endswith(" · default/background/round-robin")
    assert plain.response is not None and plain.response.headers["x-router-route"] == "profile"
    explained = r.explain([named])
    assert "route      background: header x-router-route; fallback to the profile's pool" in (
        explained
    )
    assert "from header x-claude-code-session-id" in explained
    assert "affinity   new conversation: the strategy chose" in explained
    assert "bound to cheap after this answer" in explained


async def test_unknown_route_gets_the_apis_own_error(tmp_path: Path, fakes) -> None:
    claude = flow(x_router_route="bulk")
    gpt = flow("gpt-test", host="api.openai.com", x_router_route="bulk")
    await routed(tmp_path, fakes, claude, gpt)
    assert claude.response is not None and claude.response.status_code == 400
    body = json.loads(claude.response.content or b"")
    assert body["error"]["type"] == "invalid_request_error"
    assert "unknown route 'bulk'" in body["error"]["message"]
    assert claude.comment.startswith("no attempt · default/round-robin · router: unknown route")
    assert gpt.response is not None and gpt.response.status_code == 400
    err = json.loads(gpt.response.content or b"")["error"]
    assert err["code"] == "unknown_route" and "routes: background" in err["message"]
    assert not any(f.requests for f in fakes.values())


async def test_bindings_show_in_the_comment_explain_and_status(tmp_path: Path, fakes) -> None:
    turns = [flow(x_claude_code_session_id=SESSION) for _ in range(3)]
    other = flow(x_claude_code_session_id="another-session")
    r, status = await routed(tmp_path, fakes, *turns, other)
    served = turns[0].response.headers["x-router-provider"]
    assert all(f.response.headers["x-router-provider"] == served for f in turns)
    assert turns[0].comment.endswith(" · default/round-robin")  # a new conversation: no note
    conv = r.explain([turns[0]]).split("conversation ")[1].split()[0]
    assert turns[1].comment.endswith(f" · bound {conv[:12]}")
    explained = r.explain([turns[2]])
    assert f"affinity   bound to {served}, 300s of 300s left" in explained
    lines = status.splitlines()
    i = lines.index(next(x for x in lines if x.startswith("affinity: ")))
    assert lines[i] == "affinity: 2 live conversation bindings (2 kept, cap 100000)"
    assert lines[i + 1].startswith("  default: ")
    log = [json.loads(x) for x in (tmp_path / "log.jsonl").read_text().splitlines()]
    assert [x["affinity"] for x in log] == ["new", "bound", "bound", "new"]
    assert len({x["conversation"] for x in log[:3]}) == 1 and log[3]["conversation"] != conv
    assert all(x["route"] is None and x["route_reason"] == "profile: no route matched"
               for x in log)  # fmt: skip
