"""Section 8 of `make bench`: SSE framing cost of one huge event after the commit point.

The relay forwards whole events only, so one event waits until its end. A relay that re-joins
its pending bytes for every chunk is quadratic in the event's size (48 MB took 8.7 s and
stalled other flows); a linear one costs the same per byte at any size. Each size runs in a
subprocess that imports the router's own package (`--router-script`'s), so a before/after
comparison measures the two code bases.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from tables import Row, fmt

_PROBE = r"""
import asyncio, json, sys, time
sys.path.insert(0, sys.argv[1])
from llmrouter.proxy.relay import Relay
from llmrouter.wire.sse import StreamMeter

size = int(sys.argv[2])
START = b'event: message_start\ndata: {"type":"message_start","message":{}}\n\n'
DELTA = b'event: content_block_delta\ndata: {"type":"content_block_delta"}\n\n'
STOP = b'event: message_stop\ndata: {"type":"message_stop"}\n\n'
big = b"event: content_block_delta\ndata: " + b"x" * size + b"\n\n"
chunks = [big[i : i + 65536] for i in range(0, len(big), 65536)] + [STOP]

class Content:
    async def readany(self):
        return chunks.pop(0) if chunks else b""

class Resp:
    content = Content()
    def close(self):
        pass

async def main():
    meter = StreamMeter("anthropic", "anthropic")
    meter.feed(START + DELTA)
    out = []
    async def write(data):
        out.append(len(data))
    relay = Relay(Resp(), 200, [], START + DELTA, meter, "anthropic", 30.0, lambda end: None)
    t0 = time.process_time()
    await relay.pump(write)
    return time.process_time() - t0, sum(out)

seconds, sent = asyncio.run(main())
print(json.dumps({"seconds": seconds, "sent": sent}))
"""


def _run(addon_dir: str, size: int) -> dict[str, Any]:
    out = subprocess.run([sys.executable, "-c", _PROBE, addon_dir, str(size)],
                         capture_output=True, text=True, timeout=300, check=True)  # fmt: skip
    return json.loads(out.stdout)


def framing_phase(router_script: str, quick: bool) -> dict[str, Any]:
    addon_dir = str(Path(router_script).resolve().parent)
    small, large = (3, 12) if quick else (12, 48)
    raw: dict[str, Any] = {"sizes_mb": [small, large]}
    for mb in (small, large):
        raw[f"{mb}MB"] = _run(addon_dir, mb * 2**20)
    raw["ratio"] = raw[f"{large}MB"]["seconds"] / max(1e-9, raw[f"{small}MB"]["seconds"])
    return raw


def framing_rows(raw: dict[str, Any]) -> list[Row]:
    small, large = raw["sizes_mb"]
    s, big = raw[f"{small}MB"]["seconds"], raw[f"{large}MB"]["seconds"]
    k = large / small
    return [
        Row("8", f"SSE framing: one {large} MB event relayed in 64 KB chunks (CPU s)",
            f"{small} MB: {fmt(s, 3)}", fmt(big, 3),
            f"{large}/{small} MB time {fmt(raw['ratio'], 1)}x (linear {k:g}x, quadratic "
            f"{k * k:g}x)", f"linear (<= {1.5 * k:g}x)", raw["ratio"] <= 1.5 * k),
    ]  # fmt: skip
