"""Micro-benchmark of the shared state's hot path on loopback: what `begin` costs a request.

Starts its own redis-server (free port, no persistence, stopped by PID) and measures, in one
process, side by side:
- a bare redis-py PING (the floor: one round trip through redis-py with hiredis);
- `begin(conversation, reservation)`: the binding read and the limit script, pipelined: latency
  of one call at a time, and CPU per call;
- the same with 32 callers at once (auto-pipelined into shared batches);
- the bookkeeping after an answer (a new binding + settle through the background queue), CPU
  per request;
- `begin` while the breaker is open (local state): what an outage adds to a request.

    .venv/bin/python bench/shared_rtt.py [--n 3000] [--json PATH]

The phase-2 `make bench` adds the end-to-end two-instance run; this isolates the Redis part.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import redis.asyncio as aioredis
from llmrouter.schema import Shared
from llmrouter.state.limittypes import Grant, Reservation, Window
from llmrouter.state.redisbackend import RedisBackend


def _start_redis(tmp: Path) -> tuple[subprocess.Popen[bytes], int]:
    exe = shutil.which("redis-server")
    if exe is None:
        sys.exit("redis-server is not installed (make redis)")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen(
        [exe, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
         "--dir", str(tmp)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2) as c:
                c.sendall(b"PING\r\n")
                if c.recv(16).startswith(b"+PONG"):
                    return proc, port
        except OSError:
            time.sleep(0.02)
    proc.kill()
    sys.exit("redis-server did not start")


def _stats(samples: list[float]) -> dict[str, float]:
    s = sorted(samples)
    return {
        "p50_us": statistics.median(s) * 1e6,
        "p90_us": s[int(len(s) * 0.9)] * 1e6,
        "p99_us": s[int(len(s) * 0.99)] * 1e6,
    }


async def _sequential(n: int, fn: Callable[[], Awaitable[Any]]) -> dict[str, float]:
    for _ in range(min(200, n)):
        await fn()
    lat = []
    cpu0 = time.process_time()
    for _ in range(n):
        t0 = time.perf_counter()
        await fn()
        lat.append(time.perf_counter() - t0)
    cpu = time.process_time() - cpu0
    return {**_stats(lat), "cpu_us_per_call": cpu / n * 1e6}


async def _concurrent(n: int, width: int, fn: Callable[[], Awaitable[Any]]) -> dict[str, float]:
    lat: list[float] = []

    async def worker() -> None:
        for _ in range(n // width):
            t0 = time.perf_counter()
            await fn()
            lat.append(time.perf_counter() - t0)

    cpu0, t0 = time.process_time(), time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(width)))
    wall, cpu = time.perf_counter() - t0, time.process_time() - cpu0
    return {**_stats(lat), "calls_per_s": len(lat) / wall, "cpu_us_per_call": cpu / len(lat) * 1e6}


async def run(url: str, n: int) -> dict[str, Any]:
    out: dict[str, Any] = {}
    bare = aioredis.from_url(url)
    out["ping"] = await _sequential(n, bare.ping)

    backend = RedisBackend(Shared.model_validate({"redis": url, "prefix": "bench:"}))
    await backend.start()
    backend.watch(["p1 http://x", "p2 http://y"])
    day = Window("usd_per_day", "day:bench", 10**15, time.time() + 3600)
    rpm = Window("rpm", "rpm:bench", 10**9, time.time() + 60)
    reservation = Reservation("bench", (day, rpm), 2_000)
    grants: list[Grant] = []

    async def begin() -> None:
        got = await backend.begin(("ab" * 16,), reservation, time.time())
        assert isinstance(got.verdict, Grant) and not got.local, got
        grants.append(got.verdict)

    async def begin_binding_only() -> None:
        await backend.begin(("ab" * 16,), None, time.time())

    out["begin_binding_only"] = await _sequential(n, begin_binding_only)
    await bare.config_resetstat()
    out["begin"] = await _sequential(n, begin)
    stats = await bare.info("commandstats")
    out["begin"]["redis_us_per_script"] = stats.get("cmdstat_evalsha", {}).get("usec_per_call")
    link = backend.store.link
    b0, c0 = link.batches, link.calls
    out["begin_32_concurrent"] = await _concurrent(n, 32, begin)
    out["begin_32_concurrent"]["calls_per_batch"] = (link.calls - c0) / (link.batches - b0)

    # bookkeeping after the answer: enqueue bind + settle, flushed by the background worker;
    # a new conversation each time (the worst case: a repeated binding is not rewritten)
    cpu0 = time.process_time()
    for i, g in enumerate(grants[:n]):
        backend.bindings.bind(f"{i:032x}", "p1", "bench", 300, time.monotonic())
        backend.settle(g, 1_500, time.time())
        await asyncio.sleep(0)
    await backend.store.drained()
    out["after_answer"] = {"cpu_us_per_request": (time.process_time() - cpu0) / n * 1e6}
    grants.clear()

    link.failed(ConnectionError("bench: breaker forced open"))  # what an outage costs

    async def local() -> None:
        got = await backend.begin(("ab" * 16,), reservation, time.time())
        assert got.local

    out["begin_breaker_open"] = await _sequential(n, local)
    await backend.stop()
    await bare.aclose()
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=3000, help="calls per measurement")
    ap.add_argument("--json", type=Path, help="also write the figures here")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="llmrouter-rtt-") as tmp:
        proc, port = _start_redis(Path(tmp))
        try:
            figures = asyncio.run(run(f"redis://127.0.0.1:{port}/0", args.n))
        finally:
            proc.terminate()
            proc.wait(5)
    print(f"{'measurement':<24} {'p50 µs':>8} {'p90 µs':>8} {'p99 µs':>8} {'CPU µs':>8}  other")
    for name, f in figures.items():
        cpu = f.get("cpu_us_per_call", f.get("cpu_us_per_request", float("nan")))
        shown = ("calls_per_s", "calls_per_batch", "redis_us_per_script")
        other = ", ".join(f"{k}={v:,.1f}" for k, v in f.items() if k in shown and v is not None)
        cells = [f"{f[k]:>8.1f}" if k in f else f"{'':>8}" for k in ("p50_us", "p90_us", "p99_us")]
        print(f"{name:<24} {' '.join(cells)} {cpu:>8.1f}  {other}")
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
