"""Section 9 of `make bench`: what translation costs a streamed request, in the router's CPU.

One router (b), one Anthropic client (the load generator), profiles on the same fake provider
process: `stream` / `burst` send the stream to it as an Anthropic provider (no translation),
`tstream` / `tburst` as an OpenAI-format one (the request translated to Chat Completions, the
answer's chunks back to Anthropic events). The fake serves both APIs, so the upstream work is
alike and only the router's differs. Per round, runs of `CONCURRENCY` streams back to back in
a palindrome order (ABBA, ABCCBA), so that a drift in the machine's load cancels; the router's
CPU time (utime + stime from /proc) per request, and the added %.

Two cases:
- paced: a first Claude Code turn (50 KB body: its request is translated too) and 50 content
  events 20 ms apart, as real token streams arrive. The target, <= 10 % added, applies here.
- burst: a small request and 300 events written at once, so that a few reads carry them all:
  the worst case, where per-event work meets almost no other work. Its control (`cburst`) is
  an OpenAI client streaming the same answer in Chat Completions form with no translation: an
  OpenAI-format stream is twice the bytes of an Anthropic one, and relaying those costs too.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

from loadgen import STREAM_BODY, Client, chat_stream, throughput
from payloads import claude_code_body
from phases import Budget, Settings, _rounds, log
from procs import cpu_seconds
from tables import Row, fmt, med, spread

Raw = dict[str, Any]
CONCURRENCY = 8
BURST_EVENTS = 300
TARGET_ADDED_PCT = 10.0
CHAT_BODY = json.dumps({"model": "bench-model", "stream": True,
                        "stream_options": {"include_usage": True},
                        "messages": [{"role": "user", "content": "hi"}]}).encode()  # fmt: skip
PACED_BODY = claude_code_body(50_000, stream=True)
# case -> variant -> profile; "plain" is the reference, "translated" the measure
CASES: dict[str, dict[str, str]] = {
    "paced": {"plain": "stream", "translated": "tstream"},
    "burst": {"plain": "burst", "translated": "tburst", "chat": "cburst"},
}
SECONDS = {"paced": (3.0, 1.2), "burst": (1.5, 0.4)}  # per run: (full, quick)


def translated(url: str) -> dict[str, Any]:
    """The fake as an OpenAI-format provider: a key (the client's is Anthropic's) and a model."""
    return {"base_url": url, "api": "openai", "api_key": "bench-key",
            "models": {"*": "bench-model"}}  # fmt: skip


def _call(b: Client, case: str, variant: str) -> Callable[[], Awaitable[Any]]:
    profile = CASES[case][variant]
    if variant == "chat":
        return lambda: chat_stream(b, profile, CHAT_BODY)
    body = PACED_BODY if case == "paced" else STREAM_BODY
    return lambda: b.stream(profile, body)


async def translation_phase(
    b: Client, b_pid: int, s: Settings, budget: Budget, reserve: float
) -> Raw:
    raw: Raw = {"concurrency": CONCURRENCY, "cases": {}}
    for case, variants in CASES.items():
        raw["cases"][case] = {"seconds": SECONDS[case][s.quick], "added_pct": {},
                              **{v: [] for v in variants}}  # fmt: skip
    for _ in _rounds(s, budget, reserve, "translation"):
        for case, variants in CASES.items():
            names = list(variants)
            runs: dict[str, list[dict[str, Any]]] = {v: [] for v in names}
            for who in names + names[::-1]:  # a palindrome: a drift in the load cancels
                cpu0 = cpu_seconds(b_pid)
                res = await throughput(_call(b, case, who), SECONDS[case][s.quick], CONCURRENCY)
                if res["errors"]:
                    log(f"translation {case} {who}: {res['errors']} errors")
                res["cpu_ms_per_req"] = (cpu_seconds(b_pid) - cpu0) * 1000 / max(1, res["requests"])
                runs[who].append(res)
            c = raw["cases"][case]
            for who in names:
                c[who].append(
                    {
                        "runs": runs[who],
                        "cpu_ms_per_req": med([x["cpu_ms_per_req"] for x in runs[who]]),
                    }
                )
            plain = c["plain"][-1]["cpu_ms_per_req"]
            for who in names[1:]:
                added = (c[who][-1]["cpu_ms_per_req"] - plain) / plain * 100
                c["added_pct"].setdefault(who, []).append(added)
    return raw


_WHAT = {
    ("paced", "translated"): "50 KB Claude Code request, 50 events 20 ms apart, translated",
    ("burst", "translated"): f"small request, {BURST_EVENTS} events at once, translated",
    ("burst", "chat"): f"small request, {BURST_EVENTS} events at once, OpenAI client, not "
    "translated (control)",
}


def translation_rows(raw: Raw) -> list[Row]:
    rows = []
    for case, c in raw["cases"].items():
        if not c["plain"]:
            continue
        p = med([x["cpu_ms_per_req"] for x in c["plain"]])
        for who, added in c["added_pct"].items():
            v = med([x["cpu_ms_per_req"] for x in c[who]])
            target = case == "paced"
            rows.append(Row(
                "9", f"router CPU per stream vs Anthropic->Anthropic: {_WHAT[case, who]} (ms)",
                fmt(p), fmt(v), f"added {spread(added, 1)} %",
                f"<= {TARGET_ADDED_PCT:g} % added" if target else "-",
                med(added) <= TARGET_ADDED_PCT if target else None,
            ))  # fmt: skip
    return rows
