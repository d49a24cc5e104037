"""End to end, hot reload of router_config in a running mitmdump: an edit takes effect for new
requests within about a second with no restart, a bad edit keeps the last good config and is
logged at error level with the field's path, provider health survives an unrelated edit but
not a base_url change, and a request in flight finishes on the config it started with.
"""

from __future__ import annotations

import re
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import yaml
from llmrouter.tools.fakeprovider import Behaviour, FakeProvider
from routerproc import RouterProc, anthropic_client, provider, wait_for

pytestmark = pytest.mark.e2e

MSG: dict[str, Any] = {"model": "claude-test", "max_tokens": 50,
                       "messages": [{"role": "user", "content": "hi"}]}  # fmt: skip

# A second script in the same mitmdump that records every log record with its level.
LEVELS_SCRIPT = """\
import logging, os
class _Levels(logging.Handler):
    def emit(self, record):
        with open(os.environ["LEVELS_LOG"], "a") as f:
            f.write(f"<{record.levelname}> {record.getMessage()}\\n")
logging.getLogger().addHandler(_Levels(logging.DEBUG))
"""


def config(fakes: dict[str, FakeProvider | str], *order: str, **extra: Any) -> dict[str, Any]:
    # The order and health of each reload decide here: affinity (on by default) would keep the
    # same "hi" conversation on the provider that served it.
    profile = {"hosts": ["localhost"], "providers": list(order or fakes), "affinity": False}
    return {"providers": {n: provider(f) for n, f in fakes.items()},
            "profiles": {"default": profile}, **extra}  # fmt: skip


def reloads(r: RouterProc) -> int:
    return r.output().count("router: reloaded")


def edit(r: RouterProc, cfg: dict[str, Any] | str) -> None:
    """Save a new config, like an editor, and wait until the router has reloaded it."""
    before = reloads(r)
    r.write_config(cfg)
    assert wait_for(lambda: reloads(r) > before, 5), "the edit was not reloaded"


def served(client: Any) -> str:
    return client.messages.with_raw_response.create(**MSG).headers["x-router-provider"]


def test_an_edit_takes_effect_within_a_second(fakes, origin, router) -> None:
    a, b = fakes("a"), fakes("b")
    r = router(config({"a": a, "b": b}, "a"))
    pid = r.proc.pid
    client = anthropic_client(r, origin)
    assert served(client) == "a"
    r.write_config(config({"a": a, "b": b}, "b"))
    t0 = time.monotonic()
    while served(client) != "b":
        assert time.monotonic() - t0 < 5, "the edit never took effect"
        time.sleep(0.05)
    took = time.monotonic() - t0
    assert took < 2.0, f"took {took:.2f}s"
    assert r.proc.pid == pid and r.proc.poll() is None  # no restart
    assert r.wait_lines(lambda ls: ls[-1]["provider"] == "b")[-1]["candidates"] == ["b"]
    # a host added by an edit is intercepted from then on (allow_hosts follows the config)
    by_ip = {"base_url": origin.url}  # https://127.0.0.1:PORT: in no profile yet
    reply = anthropic_client(r, origin, **by_ip).messages.with_raw_response.create(**MSG)
    assert "x-router-provider" not in reply.headers and len(origin.requests) == 1
    cfg = config({"a": a, "b": b}, "b")
    cfg["profiles"]["ip"] = {"hosts": [f"127.0.0.1:{origin.port}"], "providers": ["a"]}
    edit(r, cfg)
    assert served(anthropic_client(r, origin, **by_ip)) == "a" and len(origin.requests) == 1


def test_a_bad_edit_keeps_the_last_good_config(fakes, origin, router, tmp_path: Path) -> None:
    a, b = fakes("a"), fakes("b")
    script = tmp_path / "levels.py"
    script.write_text(LEVELS_SCRIPT)
    levels = tmp_path / "levels.log"
    r = router(config({"a": a, "b": b}, "a"), "-s", str(script), env={"LEVELS_LOG": str(levels)})
    client = anthropic_client(r, origin)
    assert served(client) == "a"
    bad = config({"a": a, "b": b}, "b")
    bad["profiles"]["default"]["strategy"] = "fastest"
    r.write_config(bad)

    def logged() -> str:
        return levels.read_text() if levels.exists() else ""

    assert wait_for(lambda: "not reloaded" in logged(), 5), logged()
    errors = [m for m in re.split(r"^(?=<)", logged(), flags=re.M) if "not reloaded" in m]
    assert errors[0].startswith("<ERROR>") and "profiles.default.strategy" in errors[0]
    assert "fastest" in errors[0]
    time.sleep(0.6)  # a watcher poll later, still the old config
    assert served(client) == "a"
    r.write_config("providers: [not, a, mapping\n")  # not even YAML
    assert wait_for(lambda: logged().count("not reloaded") >= 2, 5)
    assert served(client) == "a" and not b.requests
    # fixed, written in place (truncate and write, as some editors save): it applies
    before = reloads(r)
    r.config_path.write_text(yaml.safe_dump(config({"a": a, "b": b}, "b")))
    assert wait_for(lambda: reloads(r) > before, 5), "the in-place edit was not reloaded"
    assert served(client) == "b"


def test_health_survives_an_unrelated_edit_but_not_a_new_base_url(fakes, origin, router) -> None:
    a = fakes("a", default=Behaviour(kind="status", status=429, headers={"retry-after": "30"}))
    b, c = fakes("b"), fakes("c")
    r = router(config({"a": a, "b": b}))
    client = anthropic_client(r, origin)
    assert served(client) == "b"  # a answered 429 retry-after 30: cooling 30 s
    assert r.wait_lines(2)[0]["cooldown_s"] == 30
    a.set_default(Behaviour())  # a is fine now, but its cooldown has not run out
    edit(r, config({"a": a, "b": b, "c": c}, "a", "b", "c"))  # an unrelated edit
    assert served(client) == "b"
    assert len(a.requests) == 1, "a's cooldown was forgotten by the reload"
    line = r.wait_lines(3)[-1]
    assert line["skipped"][0]["provider"] == "a" and "cooling" in line["skipped"][0]["reason"]
    # a new base_url is a new provider: its health starts afresh
    edit(r, config({"a": a.url + "/prefix", "b": b, "c": c}, "a", "b", "c"))
    assert served(client) == "a"
    assert a.requests[-1].path == "/prefix/v1/messages"


def test_a_request_in_flight_finishes_on_its_config(fakes, origin, router) -> None:
    # old config: a (503 after 1 s) -> b (a slow stream); new config: only c
    a = fakes("a", default=Behaviour(kind="status", status=503, delay=1.0))
    b = fakes("b", default=Behaviour(deltas=6, interval=0.25))
    c = fakes("c")
    r = router(config({"a": a, "b": b}))
    client = anthropic_client(r, origin)

    def stream() -> tuple[str, int, str]:
        with client.messages.stream(**MSG) as s:
            deltas = sum(1 for e in s if e.type == "content_block_delta")
            return (
                s.get_final_message().content[0].text,
                deltas,
                s.response.headers["x-router-provider"],
            )

    with ThreadPoolExecutor(1) as pool:
        inflight = pool.submit(stream)
        assert wait_for(lambda: len(a.requests) == 1, 5)
        edit(r, config({"c": c}))  # a and b are gone from the new config
        assert served(client) == "c"  # new requests use the new config at once
        assert not inflight.done()
        text, deltas, by = inflight.result(20)
    assert by == "b" and deltas == 6 and text.startswith("Hello from b.")
    lines = r.wait_lines(3)
    assert len(lines) == 3
    old = [x for x in lines if x["provider"] in ("a", "b")]
    assert [(x["provider"], x["final"]) for x in old] == [("a", False), ("b", True)]
    assert all(x["candidates"] == ["a", "b"] and x["outcome"] != "client_closed" for x in old)
    assert old[1]["outcome"] == "ok"
