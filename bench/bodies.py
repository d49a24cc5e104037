"""Section 7 of `make bench`: the router's CPU per request against bare mitmdump at three
request sizes: the 80-byte request of the other sections, and Claude Code-shaped bodies of
50 KB (a first turn) and 500 KB (a session grown by its history; bench/payloads.py).

Both proxies get the same load (ABBA runs at concurrency `s.concurrency`), and each one's CPU
time is read from /proc before and after: CPU per request is what the machine's load does not
distort, where a throughput ratio would. The 500 KB goal: the router adds at most 15 %.
"""

from __future__ import annotations

from typing import Any

from loadgen import BODY, throughput
from payloads import SESSION, claude_code_body
from phases import Budget, Env, Settings, _rounds
from procs import cpu_seconds
from tables import Row, fmt, med, spread

Raw = dict[str, Any]
SIZES: dict[str, bytes] = {
    "80 B": BODY,
    "50 KB": claude_code_body(50_000),
    "500 KB": claude_code_body(500_000),
}
TARGET_ADDED_PCT: dict[str, float] = {"500 KB": 15.0}
# Claude Code names its session in a header as well as in metadata.user_id: sent with its
# bodies, as Claude Code does (the conversation key then needs nothing from the body).
_CLAUDE_CODE = {"x-claude-code-session-id": SESSION}


async def bodies_phase(env: Env, s: Settings, budget: Budget, reserve: float) -> Raw:
    raw: Raw = {"concurrency": s.concurrency, "seconds": s.tp_seconds, "sizes": {}}
    for name, body in SIZES.items():
        raw["sizes"][name] = {"bytes": len(body), "a": [], "b": [], "added_pct": []}
    for _ in _rounds(s, budget, reserve, "body sizes"):
        for name, body in SIZES.items():
            runs: dict[str, list[dict[str, Any]]] = {"a": [], "b": []}
            for who in ("a", "b", "b", "a"):  # ABBA: a drift in the machine's load cancels
                client, pid = (env.a, env.a_pid) if who == "a" else (env.b, env.b_pid)
                cpu0 = cpu_seconds(pid)

                hdrs = None if body is BODY else _CLAUDE_CODE

                async def call(client: Any = client, body: bytes = body, hdrs: Any = hdrs) -> Any:
                    return await client.post(body=body, headers=hdrs)

                res = await throughput(call, s.tp_seconds, s.concurrency)
                res["cpu_ms_per_req"] = (cpu_seconds(pid) - cpu0) * 1000 / max(1, res["requests"])
                runs[who].append(res)
            size = raw["sizes"][name]
            for who in ("a", "b"):
                n = sum(x["requests"] for x in runs[who])
                secs = sum(x["seconds"] for x in runs[who])
                cpu = med([x["cpu_ms_per_req"] for x in runs[who]])
                size[who].append({"runs": runs[who], "rps": n / secs, "cpu_ms_per_req": cpu})
            a, b = size["a"][-1]["cpu_ms_per_req"], size["b"][-1]["cpu_ms_per_req"]
            size["added_pct"].append((b - a) / a * 100)
    return raw


def bodies_rows(raw: Raw) -> list[Row]:
    rows = []
    for name, size in raw["sizes"].items():
        if not size["a"]:
            continue
        a = med([x["cpu_ms_per_req"] for x in size["a"]])
        b = med([x["cpu_ms_per_req"] for x in size["b"]])
        ratio = [y["rps"] / x["rps"] for x, y in zip(size["a"], size["b"], strict=True)]
        target = TARGET_ADDED_PCT.get(name)
        added = med(size["added_pct"])
        rows.append(Row(
            "7", f"proxy CPU per request, {name} body, c={raw['concurrency']} (ms)", fmt(a),
            fmt(b), f"added {spread(size['added_pct'], 1)} %; req/s b/a {fmt(med(ratio))}",
            f"<= {target:g} % added" if target else "-",
            added <= target if target else None,
        ))  # fmt: skip
    return rows
