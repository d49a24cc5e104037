"""`make bench`: the router's cost, measured side by side against bare mitmproxy in one run.

Everything runs on 127.0.0.1: fake providers (python -m llmrouter.fakeprovider), a bare mitmdump
with a one-line rewrite script (a), the router (b), a failover router and a fresh router for the
memory run. Each is started on a port the OS picked and stopped by its PID. The load generator is
the aiohttp client in bench/loadgen.py. It prints one table and writes the raw figures as JSON.

    .venv/bin/python bench/run.py [--quick] [--out PATH] [--rounds N]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import shutil
import signal
import ssl
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, replace
from importlib import metadata
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bodies
import framing
import phases
import procs
import routecost
import sharedbench
import translation
from loadgen import Client
from phases import FULL, QUICK, Budget, Env, Settings, log
from procs import BASELINE_SCRIPT, ROOT, Proc, Procs, free_port, make_ca, origin_ca
from selection import Selection
from tables import Row, markdown, render

SELECTION_TIME = {True: 20.0, False: 90.0}  # seconds kept for pytest-benchmark


def anthropic(url: str) -> dict[str, str]:
    return {"base_url": url, "api": "anthropic"}


def configs(fast: str, slow: str, bad: str, flaky: str, burst: str, dead: str) -> dict[str, Any]:
    """The routers' profiles.yaml: each serves the TLS origin host `localhost`."""

    def prof(*providers: str) -> dict[str, Any]:
        # affinity off: the same prompt would otherwise stay on the provider that served it,
        # and the failing first candidate would no longer be tried (failover is measured here)
        return {"hosts": ["localhost"], "providers": list(providers), "strategy": "failover",
                "affinity": False}  # fmt: skip

    # A cooldown far below a request's duration: every request tries the failing provider.
    tiny = {"backoff_initial": 0.001, "backoff_max": 0.001}
    # The memory run: a first candidate that fails one time in five, one that refuses, streams.
    memory = {"mixed": prof("flaky", "fast"), "refused": prof("dead", "fast"),
              "fstream": prof("fast")}  # fmt: skip
    return {
        "router": {  # (b): the single-provider failover profile; default health settings
            "providers": {"fast": anthropic(fast), "slow": anthropic(slow), "bad": anthropic(bad),
                          # section 9: the same fakes, as OpenAI-format providers
                          "burst": anthropic(burst), "slow-oa": translation.translated(slow),
                          "burst-oa": translation.translated(burst),
                          "burst-chat": {"base_url": burst, "api": "openai"}},
            "profiles": {"default": prof("fast"), "stream": prof("slow"),
                         "cooling": prof("bad", "fast"), "tstream": prof("slow-oa"),
                         "burst": prof("burst"), "tburst": prof("burst-oa"),
                         "cburst": prof("burst-chat")},
        },
        "router-failover": {  # also the memory run's router in --quick mode
            "providers": {"fast": anthropic(fast), "dead": anthropic(dead), "bad": anthropic(bad),
                          "flaky": anthropic(flaky)},
            "profiles": {"default": prof("fast"), "refused": prof("dead", "fast"),
                         "e503": prof("bad", "fast"), **memory},
            "health": tiny,
        },
        "router-memory": {
            "providers": {"fast": anthropic(fast), "dead": anthropic(dead),
                          "flaky": anthropic(flaky)},
            "profiles": {"default": prof("flaky", "fast"), **memory},
            "health": tiny,
        },
    }  # fmt: skip


async def _ready(*procs: Proc) -> None:
    await asyncio.gather(*(asyncio.to_thread(p.wait_ready) for p in procs))


async def measure(s: Settings, procs: Procs, budget: Budget) -> tuple[dict[str, Any], list[Row]]:
    from llmrouter.tools.fakeprovider import FakeProvider

    ca = make_ca(procs.confdir)
    oca = origin_ca(procs.dir / "origin-ca")
    origin = FakeProvider("origin", ssl_context=oca.server_context())
    origin_port = await origin.start()
    fakes = {
        "fast": procs.fake("fast"),
        "slow": procs.fake("slow", "--deltas", str(phases.STREAM_EVENTS),
                           "--interval", str(phases.STREAM_INTERVAL)),
        "bad": procs.fake("bad", "--faults", "503=1"),
        "flaky": procs.fake("flaky", "--faults", "503=0.2", "--seed", "7"),
        "burst": procs.fake("burst", "--deltas", str(translation.BURST_EVENTS)),
    }  # fmt: skip
    await _ready(*fakes.values())
    urls = {k: p.url for k, p in fakes.items()}
    cfg = configs(**urls, dead=f"http://127.0.0.1:{free_port()}")
    common = {"connection_strategy": "lazy", "ssl_verify_upstream_trusted_ca": oca.ca_pem}
    targets = json.dumps({"default": urls["fast"], "stream": urls["slow"]})
    base = procs.mitmdump("baseline", BASELINE_SCRIPT, common, env={"BENCH_TARGETS": targets})
    if s.quick:  # fewer processes to start: the failover router serves the memory run too
        del cfg["router-memory"]
    routers = {name: procs.router(name, c, common) for name, c in cfg.items()}
    mem = routers.get("router-memory", routers["router-failover"])
    await _ready(base, *routers.values())
    log(f"started {len(procs.started)} processes in {budget.elapsed():.1f}s")

    ctx = ssl.create_default_context(cafile=str(ca))
    origin_url = f"https://localhost:{origin_port}"
    env = Env(
        a=Client(origin_url, base.url, ctx),
        b=Client(origin_url, routers["router"].url, ctx),
        fo=Client(origin_url, routers["router-failover"].url, ctx),
        mem=Client(origin_url, mem.url, ctx),
        fast=Client(urls["fast"], None, None),
        slow=Client(urls["slow"], None, None),
        a_pid=base.pid,
        b_pid=routers["router"].pid,
        mem_pid=mem.pid,
    )
    data: dict[str, Any] = {}
    rows: list[Row] = []
    full = not s.quick
    try:
        await phases.warm_up(env, s)
        # What each later phase needs at least, so that one slow phase cannot eat the bound.
        data["throughput"] = await phases.throughput_phase(env, s, budget, 250 if full else 19)
        rows += phases.throughput_rows(data["throughput"])
        data["latency"] = await phases.latency_phase(env, s, budget, 240 if full else 18)
        rows += phases.latency_rows(data["latency"])
        data["streaming"] = await phases.streaming_phase(env, s, budget, 230 if full else 16)
        rows += phases.streaming_rows(data["streaming"])
        data["failover"] = await phases.failover_phase(env, s, budget, 220 if full else 15)
        rows += phases.failover_rows(data["failover"])
        data["bodies"] = await bodies.bodies_phase(env, s, budget, 200 if full else 12)
        rows += bodies.bodies_rows(data["bodies"])
        data["translation"] = await translation.translation_phase(
            env.b, env.b_pid, s, budget, 160 if full else 10
        )
        rows += translation.translation_rows(data["translation"])
        data["shared"] = await sharedbench.shared_phase(
            procs, s, budget, 110 if full else 7, urls["fast"], origin_url, ctx, common
        )
        rows += sharedbench.shared_rows(data["shared"])
        data["memory"] = await phases.memory_phase(env, s, budget)
        rows += phases.memory_rows(data["memory"])
    finally:
        for c in (env.a, env.b, env.fo, env.mem, env.fast, env.slow):
            await c.close()
        await origin.stop()
    data["origin_requests"] = len(origin.requests)  # routed requests never reach the origin
    data["router_rss_kib_end"] = {n: _rss(p) for n, p in routers.items()}
    return data, rows


def _rss(p: Proc) -> int | None:
    from procs import rss_kib

    try:
        return rss_kib(p.pid) if p.alive() else None
    except (OSError, RuntimeError):
        return None


def machine() -> dict[str, Any]:
    cpu = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        git = ["git", "rev-parse", "--short", "HEAD"]
        commit = subprocess.run(git, cwd=ROOT, capture_output=True, text=True, timeout=5).stdout
        commit = commit.strip()
    except (OSError, subprocess.SubprocessError):
        commit = ""
    return {
        "cpus": os.cpu_count(),
        "cpu": cpu,
        "loadavg": os.getloadavg(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "mitmproxy": metadata.version("mitmproxy"),
        "aiohttp": metadata.version("aiohttp"),
        "commit": commit,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="smoke mode: < 40 s, fewer rounds")
    parser.add_argument(
        "--out",
        type=Path,
        help="JSON of the raw figures (default bench/results.json; --quick: one in the temp dir)",
    )
    parser.add_argument("--rounds", type=int, help="rounds per measurement (default 5; quick 2)")
    parser.add_argument("--keep", action="store_true", help="keep the work dir (logs, configs)")
    parser.add_argument(
        "--router-script",
        default=procs.ROUTER_SCRIPT,
        help="the router's mitmproxy script, e.g. another checkout's, for before/after figures",
    )
    parser.add_argument("--markdown", action="store_true", help="also print a Markdown table")
    args = parser.parse_args(argv)
    s = QUICK if args.quick else FULL
    procs.ROUTER_SCRIPT = str(Path(args.router_script).resolve())
    if args.rounds:
        s = replace(s, rounds=max(1, args.rounds))
    default_out = Path(tempfile.gettempdir()) / "llmrouter-bench-quick.json"
    out: Path = args.out or (default_out if s.quick else ROOT / "bench" / "results.json")
    workdir = Path(tempfile.mkdtemp(prefix="llmrouter-bench-"))
    started = Procs(workdir)
    budget = Budget(s.budget)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # unwinds through the finally
    meta = {"quick": s.quick, "router_script": procs.ROUTER_SCRIPT, "settings": asdict(s),
            "machine": machine(), "started": time.strftime("%Y-%m-%dT%H:%M:%S%z")}  # fmt: skip
    selection = Selection(s.quick, workdir)
    try:
        if s.quick:
            selection.start()
        try:
            data, rows = asyncio.run(measure(s, started, budget))
        finally:
            started.stop_all()
        sel_time = SELECTION_TIME[s.quick] if s.quick else max(30.0, budget.left() + 30)
        data["selection"], sel_rows = selection.finish(sel_time)
        log("framing: one huge SSE event through the relay")
        data["framing"] = framing.framing_phase(procs.ROUTER_SCRIPT, s.quick)
        sel_rows += framing.framing_rows(data["framing"])
        log("route cost: the planner and conversation bindings, in process")
        data["routecost"] = routecost.routecost_phase(procs.ROUTER_SCRIPT, s.quick)
        sel_rows += routecost.routecost_rows(data["routecost"])
    finally:
        selection.stop()
    rows = sorted(rows + sel_rows, key=lambda r: int(r.section))  # 10 and 11 after 9
    meta["seconds"] = round(budget.elapsed(), 1)
    meta["loadavg_end"] = os.getloadavg()
    result = {"meta": meta, **data, "table": [r.as_dict() for r in rows]}
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1, default=str) + "\n")
    print(render(rows))
    if args.markdown:
        print()
        print(markdown(rows))
    missed = [r for r in rows if r.ok is False]
    print(f"\n{len(rows) - len(missed)} of {len(rows)} rows met or informational; "
          f"{len(missed)} missed. {meta['seconds']}s. Raw figures: {out}")  # fmt: skip
    if args.keep:
        print(f"work dir kept: {workdir}")
    else:
        shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
