"""`make bench` section 10: two router instances sharing state through Redis, against one
router without Redis, in the same run.

One profiles.yaml for all three: a team user with a monthly budget and affinity on, so every
request does what a team's request does with a shared store, its one round trip (the
conversation's binding and the budget script, pipelined), then settles through the background
queue. (l1) and (l2) run it without Redis (each its own ledger and bindings); (s1) and (s2)
run it with `router_redis` on one redis-server (Debian's, started here on a free port, stopped
by PID); one confdir CA for all, as the README's team recipe has it.

- Added p50: one client, sequential, interleaved l1 (a single instance without Redis), s1, s2
  (the order rotates): median(s1 and s2) - median(l1), per round.
- CPU per request of each instance with Redis against without: l1 and l2 at c=8 each at once,
  then s1 and s2 likewise, in the order local, shared, shared, local per round; each process's
  CPU time over its completed requests. Like against like: two instances serving at once on
  this 2-core box contend for it (loader, fake provider and Redis too), which raises every
  instance's CPU per request, Redis or not; so a pair is measured against a pair. CPU per
  request, not req/s, is the measure.
- Redis's own CPU per request (informational).
"""

from __future__ import annotations

import asyncio
import ssl
from dataclasses import replace
from typing import Any

from loadgen import Client, interleaved, throughput
from phases import Budget, Raw, Settings, _rounds, log
from procs import ROOT, Proc, Procs, cpu_seconds
from tables import Row, fmt, med, pct, spread

TOKEN = "bench-team-token-0123456789abcdef"  # a bench-only user on loopback
CONCURRENCY = 8  # per instance
JOINED = "router: shared state: Redis at"


def team_config(fast: str) -> dict[str, Any]:
    from llmrouter.access import hash_token

    return {
        "providers": {"fast": {"base_url": fast, "api": "anthropic",
                               "price": {"input": 1, "output": 1}}},
        "profiles": {"default": {"hosts": ["localhost"], "providers": ["fast"],
                                 "strategy": "failover"}},
        "access": {"users": {"bench": {"token_sha256": hash_token(TOKEN), "profiles": ["default"],
                                       "limits": {"usd_per_month": 1_000_000}}}},
    }  # fmt: skip


async def _joined(p: Proc) -> None:
    for _ in range(600):  # 30 s
        if JOINED in p.output():
            return
        await asyncio.sleep(0.05)
    raise RuntimeError(f"{p.name} did not join Redis:\n{p.output()}")


async def shared_phase(
    procs: Procs, s: Settings, budget: Budget, reserve: float, fast: str, origin: str,
    ca: ssl.SSLContext, common: dict[str, Any],
) -> Raw:  # fmt: skip
    import sys

    sys.path.insert(0, str(ROOT / "tests"))
    from redisproc import RedisProc

    rp = RedisProc(procs.dir / "redis").start()
    started: list[Proc] = []
    clients: dict[str, Client] = {}
    try:
        cfg = team_config(fast)
        with_redis = {**common, "router_redis": rp.url}
        made = {"l1": procs.router("local1", cfg, common),
                "l2": procs.router("local2", cfg, common),
                "s1": procs.router("shared1", cfg, with_redis),
                "s2": procs.router("shared2", cfg, with_redis)}  # fmt: skip
        started = list(made.values())
        await asyncio.gather(*(asyncio.to_thread(p.wait_ready) for p in started))
        await asyncio.gather(_joined(made["s1"]), _joined(made["s2"]))
        for name, p in made.items():
            proxy = f"http://bench:{TOKEN}@127.0.0.1:{p.port}"
            clients[name] = Client(origin, proxy, ca, limit=CONCURRENCY + 4)
        for c in clients.values():  # warm: connections, caches, the JIT-less interpreter's dicts
            await throughput(c.post, 0.3, CONCURRENCY)
        assert rp.proc is not None
        pids = {k: p.pid for k, p in made.items()} | {"redis": rp.proc.pid}
        raw: Raw = {"concurrency": CONCURRENCY, "seconds": s.tp_seconds, "n_per_round": s.lat_n,
                    "rounds": []}  # fmt: skip
        for _ in _rounds(s, budget, reserve, "shared"):
            rnd: dict[str, Any] = {}
            paths = {k: clients[k].post for k in ("l1", "s1", "s2")}
            got = await interleaved(paths, s.lat_n)
            ms = {k: [r.seconds * 1000 for r in v] for k, v in got.items()}
            rnd["p50_solo_ms"] = pct(ms["l1"], 50)
            rnd["p50_shared_ms"] = pct(ms["s1"] + ms["s2"], 50)
            rnd["added_ms"] = rnd["p50_shared_ms"] - rnd["p50_solo_ms"]
            cpu: dict[str, list[float]] = {k: [] for k in ("l1", "l2", "s1", "s2", "redis")}
            for which in ("local", "shared", "shared", "local"):
                names = ["l1", "l2"] if which == "local" else ["s1", "s2"]
                before = {k: cpu_seconds(pids[k]) for k in [*names, "redis"]}
                res = await asyncio.gather(*(throughput(clients[k].post, s.tp_seconds,
                                                        CONCURRENCY) for k in names))  # fmt: skip
                for k, r in zip(names, res, strict=True):
                    n = max(1, int(r["requests"]))
                    cpu[k].append((cpu_seconds(pids[k]) - before[k]) * 1000 / n)
                if which == "shared":
                    n = max(1, sum(int(r["requests"]) for r in res))
                    cpu["redis"].append((cpu_seconds(pids["redis"]) - before["redis"]) * 1000 / n)
            c = rnd["cpu_ms_per_req"] = {k: med(v) for k, v in cpu.items()}
            c["local"] = (c["l1"] + c["l2"]) / 2
            rnd["cpu_ratio"] = {k: c[k] / c["local"] for k in ("s1", "s2")}
            raw["rounds"].append(rnd)
            log(f"shared: added p50 {fmt(rnd['added_ms'])} ms, CPU/req local {fmt(c['l1'])} "
                f"{fmt(c['l2'])}, with Redis {fmt(c['s1'])} {fmt(c['s2'])} ms")  # fmt: skip
        return raw
    finally:
        for c in clients.values():
            await c.close()
        for p in started:  # before Redis: they flush their queues and leave the instance set
            procs.stop(p)
        rp.stop()


def shared_rows(raw: Raw) -> list[Row]:
    rounds = raw["rounds"]
    added = [r["added_ms"] for r in rounds]
    solo = [r["p50_solo_ms"] for r in rounds]
    shared = [r["p50_shared_ms"] for r in rounds]
    cpu = {k: [r["cpu_ms_per_req"][k] for r in rounds] for k in ("local", "s1", "s2", "redis")}
    ratio = {k: [r["cpu_ratio"][k] for r in rounds] for k in ("s1", "s2")}
    worst = max(med(ratio["s1"]), med(ratio["s2"]))
    c = raw["concurrency"]
    return [
        Row("10", "2 instances + Redis: latency p50, sequential (ms)", f"1 alone {fmt(med(solo))}",
            fmt(med(shared)), f"added {spread(added)}", "<= 0.3 ms added", med(added) <= 0.3),
        Row("10", f"2 instances + Redis: CPU per request, c={c} each (ms)",
            f"2 alone {fmt(med(cpu['local']))}",
            f"{fmt(med(cpu['s1']))} / {fmt(med(cpu['s2']))}",
            f"x{spread(ratio['s1'])} / x{spread(ratio['s2'])}", "<= 1.1x each", worst <= 1.1),
        Row("10", "Redis CPU per request (ms)", "-", fmt(med(cpu["redis"]), 3), "-", "-", None),
    ]  # fmt: skip


async def _alone(s: Settings, rounds: int) -> Raw:
    """Section 10 by itself: its own fake provider, TLS origin and CA."""
    import tempfile
    from pathlib import Path

    from llmrouter.tools.fakeprovider import FakeProvider
    from procs import make_ca, origin_ca

    procs = Procs(Path(tempfile.mkdtemp(prefix="llmrouter-bench-shared-")))
    try:
        ca = make_ca(procs.confdir)
        oca = origin_ca(procs.dir / "origin-ca")
        origin = FakeProvider("origin", ssl_context=oca.server_context())
        port = await origin.start()
        fast = procs.fake("fast")
        await asyncio.to_thread(fast.wait_ready)
        common = {"connection_strategy": "lazy", "ssl_verify_upstream_trusted_ca": oca.ca_pem}
        ctx = ssl.create_default_context(cafile=str(ca))
        settings = replace(s, rounds=rounds)
        try:
            return await shared_phase(procs, settings, Budget(3600), 0, fast.url,
                                      f"https://localhost:{port}", ctx, common)  # fmt: skip
        finally:
            await origin.stop()
    finally:
        procs.stop_all()


def main() -> None:
    """`.venv/bin/python bench/sharedbench.py [--rounds N] [--quick]`: section 10 alone."""
    import argparse
    import json

    from phases import FULL, QUICK
    from tables import render

    ap = argparse.ArgumentParser(description=main.__doc__)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    raw = asyncio.run(_alone(QUICK if args.quick else FULL, args.rounds))
    print(json.dumps(raw, indent=1))
    print(render(shared_rows(raw)))


if __name__ == "__main__":
    main()
