"""`make bench` section 11: what scenario routes and conversation affinity cost a request, and
what a conversation binding costs in memory. In process, no proxy: a few seconds.

Per body (a Claude Code turn of 50 KB and of 500 KB, `bench/payloads.py`, with Claude Code's
headers and its session id), thread CPU time (`time.thread_time_ns`) per call, in batches of
about 0.1 s, the measures interleaved within each round:
- parse: `json.loads` of the body as the router parses it (`proxy.body.parse_object`): the
  baseline of this run. A profile with routes needs it (the estimate and the usage history
  read the messages and tools); a profile without them routes a Claude Code request unparsed.
- route + key: `Signals.of`, `conversation_of`, the token estimate, `routes.detect` and the
  conversation's key on the chosen route, on the parsed body: what detection itself costs.
- plan: `Planner.plan` for a profile with routes and affinity (route, policy, candidates,
  order, the binding's lookup), on the parsed body; and on the raw body as the router gets
  it (the parse included), next to a profile without routes (no parse).

Bindings: tracemalloc over 100,000 `BindingBook.bind` calls, each with its own 32-hex key (the
conversation's, as `conversation._digest` makes it): bytes per binding, key included.

Alone: `.venv/bin/python bench/routecost.py [--quick] [--addon DIR]`. `make bench` runs it in a
subprocess on the `--router-script`'s package, like section 8.
"""

from __future__ import annotations

import argparse
import gc
import hashlib
import json
import subprocess
import sys
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any

from payloads import SESSION, claude_code_body
from tables import Row, fmt, med, spread

Raw = dict[str, Any]
SIZES = {"50 KB": 50_000, "500 KB": 500_000}
BINDINGS = 100_000
_HERE = Path(__file__).resolve().parent
# What Claude Code 2.1.197 sends besides the body (captured on loopback), minus hop-by-hop.
HEADERS = [
    ("accept", "application/json"),
    ("anthropic-beta", "claude-code-20250219,interleaved-thinking-2025-05-14,"
                       "context-management-2025-06-27"),
    ("anthropic-dangerous-direct-browser-access", "true"),
    ("anthropic-version", "2023-06-01"),
    ("content-type", "application/json"),
    ("user-agent", "claude-cli/2.1.197 (external, cli)"),
    ("x-api-key", "sk-ant-bench-not-a-key"),
    ("x-app", "cli"),
    ("x-claude-code-session-id", SESSION),
    ("x-stainless-lang", "js"),
    ("x-stainless-retry-count", "0"),
]  # fmt: skip


def _config() -> Any:
    from llmrouter.config import parse_config

    def prov(n: str) -> dict[str, str]:
        return {"base_url": f"https://{n}.example.com", "api": "anthropic"}

    pool = {"hosts": ["api.anthropic.com"], "providers": ["anthropic", "backup"],
            "strategy": "failover"}  # fmt: skip
    routes = {
        "opus-cli": {"match": {"model": "*opus*", "header": {"user-agent": "^claude-cli/"}},
                     "providers": ["anthropic"]},
        "long_context": {"providers": ["long"], "model": "claude-sonnet-4-5"},
        "subagent": {"providers": ["cheap", "anthropic"]},
        "background": {"providers": ["cheap"], "model": "claude-haiku-4-5"},
    }  # fmt: skip
    return parse_config({
        "providers": {n: prov(n) for n in ("anthropic", "backup", "cheap", "long")},
        "profiles": {"routes": {**pool, "routes": routes}, "plain": pool},
    }, {})  # fmt: skip


def _per_call_ns(fn: Callable[[], object], n: int) -> float:
    gc.collect()
    t0 = time.thread_time_ns()
    for _ in range(n):
        fn()
    return (time.thread_time_ns() - t0) / n


def _calls(fn: Callable[[], object], seconds: float) -> int:
    """How many calls make a batch of about `seconds` of CPU."""
    one = _per_call_ns(fn, 3)
    return max(3, int(seconds * 1e9 / max(one, 1.0)))


def _measures(body: bytes) -> tuple[dict[str, Callable[[], object]], str | None]:
    """The calls to time, and the route the body takes."""
    from llmrouter.proxy.body import parse_object
    from llmrouter.proxy.dispatch import Engine
    from llmrouter.proxy.exchange import Request
    from llmrouter.routing.conversation import conversation_of
    from llmrouter.routing.estimate import estimate
    from llmrouter.routing.routes import detect
    from llmrouter.routing.signals import Signals

    cfg = _config()
    payload = parse_object(body)
    assert payload is not None
    planner = Engine(None, lambda _: None).planner  # type: ignore[arg-type]
    now = time.monotonic()

    def parsed() -> Request:
        return Request("id", "POST", "/v1/messages", HEADERS, body, payload)

    def raw() -> Request:
        return Request("id", "POST", "/v1/messages", HEADERS, body)

    # The conversation is bound already, as it is from its second turn on.
    for pname in ("routes", "plain"):
        plan = planner.plan(cfg, pname, parsed(), now)
        assert plan.leg is not None and plan.leg.want is not None, plan
        planner.bindings.bind(plan.leg.want[0], plan.leg.order[0], pname, 300.0, now)
    profile = cfg.profiles["routes"]
    req = parsed()

    def route_and_key() -> object:
        sig = Signals.of(req.path, req.headers, lambda: req.payload, req.body, req.api, req.model)
        conv = conversation_of(sig, "routes")
        assert conv is not None
        decision = detect(profile, sig, lambda: estimate(sig, None))
        return conv.key(decision.route)

    route = planner.plan(cfg, "routes", raw(), now).decision.route
    return {
        "parse": lambda: parse_object(body),
        "route_key": route_and_key,
        "plan": lambda: planner.plan(cfg, "routes", req, now),
        "plan_raw": lambda: planner.plan(cfg, "routes", raw(), now),
        "plain_raw": lambda: planner.plan(cfg, "plain", raw(), now),
    }, route


def cpu_phase(quick: bool) -> Raw:
    rounds, batch = (2, 0.03) if quick else (5, 0.1)
    raw: Raw = {"rounds": rounds, "sizes": {}}
    for name, size in SIZES.items():
        body = claude_code_body(size)
        fns, route = _measures(body)
        counts = {k: _calls(fn, batch) for k, fn in fns.items()}
        got: dict[str, list[float]] = {k: [] for k in fns}
        for _ in range(rounds):
            for k, fn in fns.items():
                got[k].append(_per_call_ns(fn, counts[k]) / 1000)
        raw["sizes"][name] = {"bytes": len(body), "route": route, "calls": counts,
                              "us": got}  # fmt: skip
    return raw


def binding_phase(n: int = BINDINGS) -> Raw:
    from llmrouter.routing.affinity import BindingBook

    book = BindingBook(cap=n)
    now = time.monotonic()
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    for i in range(n):
        key = hashlib.sha256(f"routes\0\0{i}".encode()).hexdigest()[:32]
        book.bind(key, "anthropic", "routes", 300.0, now)
    after = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    assert book.size() == n
    return {"bindings": n, "bytes": after - before, "per_binding": (after - before) / n}


def measure(quick: bool) -> Raw:
    return {"cpu": cpu_phase(quick), "bindings": binding_phase()}


def routecost_phase(router_script: str, quick: bool) -> Raw:
    """Section 11 in a fresh process on the package beside `router_script` (as section 8)."""
    addon = str(Path(router_script).resolve().parent)
    cmd = [sys.executable, str(_HERE / "routecost.py"), "--json", "--addon", addon]
    out = subprocess.run(cmd + (["--quick"] if quick else []), capture_output=True, text=True,
                         timeout=300, check=True)  # fmt: skip
    return json.loads(out.stdout)


def routecost_rows(raw: Raw) -> list[Row]:
    rows = []
    for name, size in raw["cpu"]["sizes"].items():
        us = size["us"]
        parse, plan = med(us["parse"]), med(us["plan"])
        of_parse = [p / q * 100 for p, q in zip(us["plan"], us["parse"], strict=True)]
        rows.append(Row(
            "11", f"planner, routes + affinity, {name} Claude Code body (µs CPU)",
            f"parse {fmt(parse, 0)}", fmt(plan, 1),
            f"{spread(of_parse, 1)} % of the parse; route+key {fmt(med(us['route_key']), 1)}; "
            f"raw body {fmt(med(us['plan_raw']), 0)} (no routes {fmt(med(us['plain_raw']), 1)})"
            f"; route {size['route'] or 'profile'}", "-", None,
        ))  # fmt: skip
    b = raw["bindings"]
    rows.append(Row("11", "conversation bindings: memory (B per binding)", "-",
                    fmt(b["per_binding"], 0),
                    f"{b['bindings']:,}: {fmt(b['bytes'] / 2**20, 1)} MiB (tracemalloc)", "-",
                    None))  # fmt: skip
    return rows


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="make bench section 11 alone")
    ap.add_argument("--quick", action="store_true", help="2 short rounds instead of 5")
    ap.add_argument("--addon", help="import llmrouter from this directory (another checkout)")
    ap.add_argument("--json", action="store_true", help="print the raw figures only")
    args = ap.parse_args(argv)
    if args.addon:
        sys.path.insert(0, args.addon)
    raw = measure(args.quick)
    if args.json:
        print(json.dumps(raw))
        return 0
    from tables import render

    print(json.dumps(raw, indent=1))
    print(render(routecost_rows(raw)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
