"""The measurements of `make bench`, each side by side in one run: raw figures plus table rows.

(a) is bare mitmdump with a one-line rewrite script, (b) the router; both intercept TLS for the
"origin" host localhost and send the flow to the same fake provider.
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from loadgen import Client, Reply, StreamTiming, interleaved, mixed, throughput
from procs import cpu_seconds, rss_kib
from tables import Row, fmt, med, pct, spread

Raw = dict[str, Any]


@dataclass(frozen=True)
class Settings:
    quick: bool
    rounds: int
    tp_seconds: float  # one throughput run
    concurrency: int
    lat_n: int  # sequential requests per path per round
    stream_n: int  # streams per path per round
    fo_n: int  # sequential requests per failover case per round
    mem_marks: tuple[int, int]  # RSS after this many requests
    mem_step: int  # RSS sampled every mem_step requests
    warmup: int
    budget: float  # seconds for the whole run


FULL = Settings(False, 5, 1.5, 16, 200, 3, 80, (1000, 10_000), 1000, 100, 450.0)
QUICK = Settings(True, 2, 0.3, 16, 20, 1, 10, (100, 400), 100, 20, 40.0)
STREAM_EVENTS, STREAM_INTERVAL = 50, 0.020


def log(msg: str) -> None:
    print(f"bench: {msg}", file=sys.stderr, flush=True)


class Budget:
    def __init__(self, seconds: float) -> None:
        self.t0 = time.monotonic()
        self.end = self.t0 + seconds

    def left(self) -> float:
        return self.end - time.monotonic()

    def elapsed(self) -> float:
        return time.monotonic() - self.t0


@dataclass
class Env:
    a: Client  # bare mitmdump
    b: Client  # router, default profile -> fast; "stream" -> slow; "cooling" -> bad, fast
    fo: Client  # failover router: default -> fast; refused -> dead, fast; e503 -> bad, fast
    mem: Client  # a fresh router for the memory run
    fast: Client  # straight to the fast fake provider (no proxy)
    slow: Client  # straight to the streaming fake provider
    a_pid: int
    b_pid: int
    mem_pid: int


def _ms(replies: list[Reply]) -> list[float]:
    return [r.seconds * 1000 for r in replies]


def _rounds(s: Settings, budget: Budget, reserve: float, what: str) -> Iterator[int]:
    """Rounds that fit: at least one, then only while `reserve` seconds remain for later."""
    for r in range(s.rounds):
        if r and budget.left() < reserve:
            log(f"{what}: stopping after {r} rounds to stay within the time bound")
            return
        log(f"{what}: round {r + 1}/{s.rounds}")
        yield r


async def warm_up(env: Env, s: Settings) -> None:
    n = s.warmup
    for client in (env.a, env.b, env.fo, env.mem):
        await mixed([client.post], n, s.concurrency, lambda i: 0)
    await asyncio.gather(env.a.stream("stream"), env.b.stream("stream"), env.slow.stream())
    await env.fast.post()


async def throughput_phase(env: Env, s: Settings, budget: Budget, reserve: float) -> Raw:
    """Each round runs a, b, b, a (ABBA), so that a drift in the machine's load cancels out."""
    raw: Raw = {"concurrency": s.concurrency, "seconds": s.tp_seconds, "a": [], "b": []}
    for _ in _rounds(s, budget, reserve, "throughput"):
        got: dict[str, list[dict[str, float | int]]] = {"a": [], "b": []}
        for name in ("a", "b", "b", "a"):
            client, pid = (env.a, env.a_pid) if name == "a" else (env.b, env.b_pid)
            cpu0 = cpu_seconds(pid)
            res = await throughput(client.post, s.tp_seconds, s.concurrency)
            res["cpu_ms_per_req"] = (cpu_seconds(pid) - cpu0) * 1000 / max(1, res["requests"])
            got[name].append(res)
        for name in ("a", "b"):
            n, secs = sum(x["requests"] for x in got[name]), sum(x["seconds"] for x in got[name])
            cpu = med([x["cpu_ms_per_req"] for x in got[name]])
            raw[name].append({"runs": got[name], "rps": n / secs, "cpu_ms_per_req": cpu})
    raw["ratio"] = [b["rps"] / a["rps"] for a, b in zip(raw["a"], raw["b"], strict=True)]
    raw["cpu_ratio"] = [
        a["cpu_ms_per_req"] / b["cpu_ms_per_req"] for a, b in zip(raw["a"], raw["b"], strict=True)
    ]
    return raw


def throughput_rows(raw: Raw) -> list[Row]:
    a, b, ratio = [x["rps"] for x in raw["a"]], [x["rps"] for x in raw["b"]], raw["ratio"]
    ca, cb = [x["cpu_ms_per_req"] for x in raw["a"]], [x["cpu_ms_per_req"] for x in raw["b"]]
    return [
        Row("1", f"throughput, c={raw['concurrency']} (req/s)", fmt(med(a), 0), fmt(med(b), 0),
            f"b/a {spread(ratio)}", "b/a >= 0.90", med(ratio) >= 0.90),
        Row("1", "proxy CPU per request at c=16 (ms)", fmt(med(ca)), fmt(med(cb)),
            f"a/b {spread(raw['cpu_ratio'])}", "- (load-proof view of the ratio)", None),
    ]  # fmt: skip


async def latency_phase(env: Env, s: Settings, budget: Budget, reserve: float) -> Raw:
    raw: Raw = {"n_per_round": s.lat_n, "a_ms": [], "b_ms": [], "a_cpu_ms": [], "b_cpu_ms": []}
    for _ in _rounds(s, budget, reserve, "latency"):
        cpu0 = cpu_seconds(env.a_pid), cpu_seconds(env.b_pid)
        got = await interleaved({"a": env.a.post, "b": env.b.post}, s.lat_n)
        raw["a_cpu_ms"].append((cpu_seconds(env.a_pid) - cpu0[0]) * 1000 / s.lat_n)
        raw["b_cpu_ms"].append((cpu_seconds(env.b_pid) - cpu0[1]) * 1000 / s.lat_n)
        raw["a_ms"].append(_ms(got["a"]))
        raw["b_ms"].append(_ms(got["b"]))
    for q in (50, 99):
        raw[f"a_p{q}"] = [pct(x, q) for x in raw["a_ms"]]
        raw[f"b_p{q}"] = [pct(x, q) for x in raw["b_ms"]]
        raw[f"added_p{q}"] = [b - a for a, b in zip(raw[f"a_p{q}"], raw[f"b_p{q}"], strict=True)]
    return raw


def latency_rows(raw: Raw) -> list[Row]:
    rows = []
    for q, target in ((50, 1.0), (99, None)):
        added = raw[f"added_p{q}"]
        rows.append(Row(
            "2", f"latency p{q}, sequential (ms)", fmt(med(raw[f"a_p{q}"])),
            fmt(med(raw[f"b_p{q}"])), f"added {spread(added)}",
            f"<= {target:g} ms added" if target else "-",
            med(added) <= target if target else None,
        ))  # fmt: skip
    added = [b - a for a, b in zip(raw["a_cpu_ms"], raw["b_cpu_ms"], strict=True)]
    rows.append(Row("2", "proxy CPU per request, sequential (ms)", fmt(med(raw["a_cpu_ms"])),
                    fmt(med(raw["b_cpu_ms"])), f"added {spread(added)}", "-", None))  # fmt: skip
    return rows


async def streaming_phase(env: Env, s: Settings, budget: Budget, reserve: float) -> Raw:
    raw: Raw = {"events": STREAM_EVENTS, "interval_ms": STREAM_INTERVAL * 1000, "rounds": []}
    for _ in _rounds(s, budget, reserve, "streaming"):
        streams: list[dict[str, StreamTiming]] = []
        for _k in range(s.stream_n):  # a, b and direct concurrently: the same moment's noise
            a, b, d = await asyncio.gather(
                env.a.stream("stream"), env.b.stream("stream"), env.slow.stream()
            )
            streams.append({"a": a, "b": b, "direct": d})
        raw["rounds"].append([{k: vars_of(v) for k, v in t.items()} for t in streams])
    per: dict[str, list[float]] = {}
    for rnd in raw["rounds"]:

        def m(f: Callable[[dict[str, Any]], float], rnd: list[dict[str, Any]] = rnd) -> float:
            return med([f(t) for t in rnd])

        for p in ("a", "b", "direct"):
            per.setdefault(f"{p}_first_ms", []).append(m(lambda t, p=p: t[p]["first"] * 1000))
            per.setdefault(f"{p}_content_ms", []).append(
                m(lambda t, p=p: t[p]["first_content"] * 1000)
            )
            per.setdefault(f"{p}_last_ms", []).append(m(lambda t, p=p: t[p]["last"] * 1000))
            per.setdefault(f"{p}_span_ms", []).append(
                m(lambda t, p=p: (t[p]["last"] - t[p]["first_content"]) * 1000)
            )
        for p in ("a", "b"):
            per.setdefault(f"{p}_last_lag_ms", []).append(
                m(lambda t, p=p: (t[p]["last"] - t["direct"]["last"]) * 1000)
            )
        per.setdefault("added_first_ms", []).append(
            m(lambda t: (t["b"]["first"] - t["a"]["first"]) * 1000)
        )
    every = [t for rnd in raw["rounds"] for t in rnd]
    raw["per_round"] = per
    raw["b_last_lag_max_ms"] = max((t["b"]["last"] - t["direct"]["last"]) * 1000 for t in every)
    raw["deltas_ok"] = all(t[p]["deltas"] == STREAM_EVENTS for t in every for p in t)
    return raw


def vars_of(t: StreamTiming) -> dict[str, float | int]:
    return {"first": t.first, "first_content": t.first_content, "last": t.last, "deltas": t.deltas}


def streaming_rows(raw: Raw) -> list[Row]:
    p = raw["per_round"]
    expected = (raw["events"] - 1) * raw["interval_ms"]
    span_ok = med(p["b_span_ms"]) >= 0.9 * expected and raw["deltas_ok"]
    return [
        Row("3", "stream: first SSE event (ms)", fmt(med(p["a_first_ms"])),
            fmt(med(p["b_first_ms"])), f"added {spread(p['added_first_ms'])}",
            "<= 2 ms added", med(p["added_first_ms"]) <= 2.0),
        Row("3", "stream: last event after direct's (ms)", fmt(med(p["a_last_lag_ms"])),
            fmt(med(p["b_last_lag_ms"])),
            f"b {spread(p['b_last_lag_ms'])}, max {fmt(raw['b_last_lag_max_ms'])}",
            "<= 20 ms", med(p["b_last_lag_ms"]) <= 20.0),
        Row("3", f"stream: first->last content ({raw['events']}x{raw['interval_ms']:g} ms)",
            fmt(med(p["a_span_ms"]), 0), fmt(med(p["b_span_ms"]), 0),
            f"direct {fmt(med(p['direct_span_ms']), 0)}", f">= {0.9 * expected:.0f} (unbuffered)",
            span_ok),
    ]  # fmt: skip


async def failover_phase(env: Env, s: Settings, budget: Budget, reserve: float) -> Raw:
    prime = await env.b.post("cooling")  # the first candidate answers 503: cooling from now on
    raw: Raw = {"prime_attempts": prime.attempts, "n_per_round": s.fo_n, "rounds": []}
    calls = {
        "rtt": env.fast.post,  # client -> fake provider, no proxy: one round trip
        "fo_direct": env.fo.post,
        "refused": lambda: env.fo.post("refused"),
        "e503": lambda: env.fo.post("e503"),
        "b_direct": env.b.post,
        "cooling": lambda: env.b.post("cooling"),
    }
    for _ in _rounds(s, budget, reserve, "failover"):
        got = await interleaved(calls, s.fo_n)
        raw["rounds"].append(
            {k: [(round(r.seconds * 1000, 4), r.attempts) for r in v] for k, v in got.items()}
        )
    p50: dict[str, list[float]] = {k: [] for k in calls}
    probes = wrong = 0
    for rnd in raw["rounds"]:
        for k, v in rnd.items():
            if k == "cooling":
                probes += sum(1 for _, n in v if n != 1)
                v = [x for x in v if x[1] == 1]  # a probe after the cooldown is not "skipped"
            elif k in ("refused", "e503"):
                wrong += sum(1 for _, n in v if n != 2)
            p50[k].append(pct([ms for ms, _ in v], 50))
    raw["p50_ms"] = p50
    raw["cooling_probes"], raw["failover_not_two_attempts"] = probes, wrong
    raw["added_ms"] = {
        "refused": [r - d for r, d in zip(p50["refused"], p50["fo_direct"], strict=True)],
        "e503": [r - d for r, d in zip(p50["e503"], p50["fo_direct"], strict=True)],
        "cooling": [r - d for r, d in zip(p50["cooling"], p50["b_direct"], strict=True)],
    }
    return raw


def failover_rows(raw: Raw) -> list[Row]:
    p, add = raw["p50_ms"], raw["added_ms"]
    rtt = med(p["rtt"])
    ok = raw["failover_not_two_attempts"] == 0
    return [
        Row("4", "failover: 1st refuses, p50 (ms)", f"b {fmt(med(p['fo_direct']))}",
            fmt(med(p["refused"])), f"added {spread(add['refused'])}", "<= 5 ms added",
            ok and med(add["refused"]) <= 5.0),
        Row("4", "failover: 1st answers 503, p50 (ms)", f"rtt {fmt(rtt)}", fmt(med(p["e503"])),
            f"added {spread(add['e503'])}", "~1 round trip (<= rtt + 1 ms)",
            ok and med(add["e503"]) <= rtt + 1.0),
        Row("4", "failover: 1st cooling, p50 (ms)", f"b {fmt(med(p['b_direct']))}",
            fmt(med(p["cooling"])), f"added {spread(add['cooling'])}", "~0 (<= 0.5 ms added)",
            med(add["cooling"]) <= 0.5),
    ]  # fmt: skip


async def memory_phase(env: Env, s: Settings, budget: Budget) -> Raw:
    """A fresh router under mixed load: 5% streams, 5% refused first candidates, the rest on a
    first candidate that answers 503 one time in five."""
    calls = [
        lambda: env.mem.post("mixed"),
        lambda: env.mem.post("refused"),
        lambda: env.mem.stream("fstream"),
    ]

    def kind(i: int) -> int:
        return 2 if i % 20 == 0 else 1 if i % 20 == 10 else 0

    samples = [(0, rss_kib(env.mem_pid))]
    raw: Raw = {"marks": list(s.mem_marks), "samples": samples, "errors": 0}
    done, last = 0, s.mem_marks[-1]
    while done < last:
        step = min(s.mem_step, last - done)
        if done >= s.mem_marks[0] and budget.left() < 5:
            log("memory: stopping early to stay within the time bound")
            break
        base = done
        got = await mixed(calls, step, s.concurrency, lambda i, base=base: kind(base + i))
        raw["errors"] += got["errors"]
        done += step
        samples.append((done, rss_kib(env.mem_pid)))
        if done % (s.mem_step * 5) == 0 or done == last:
            log(f"memory: {done} requests, RSS {samples[-1][1] / 1024:.1f} MiB")
    rss = dict(samples)
    first, end = s.mem_marks[0], samples[-1][0]
    raw["rss_first_kib"], raw["rss_last_kib"], raw["last_count"] = rss[first], rss[end], end
    raw["growth_pct"] = (rss[end] - rss[first]) / rss[first] * 100
    raw["bytes_per_request"] = (rss[end] - rss[first]) * 1024 / max(1, end - first)
    return raw


def memory_rows(raw: Raw) -> list[Row]:
    first, last = raw["marks"][0], raw["last_count"]
    return [
        Row("6", "memory: router RSS (MiB)", f"{first}: {fmt(raw['rss_first_kib'] / 1024, 1)}",
            f"{last}: {fmt(raw['rss_last_kib'] / 1024, 1)}",
            f"growth {fmt(raw['growth_pct'], 1)}% ({fmt(raw['bytes_per_request'], 0)} B/req)",
            "flat within 10%", raw["growth_pct"] <= 10.0 and raw["errors"] == 0),
    ]  # fmt: skip
