"""Warm start: replay the tail of the JSONL log so latency and token mix survive a restart."""

from __future__ import annotations

import asyncio
from datetime import datetime
from pathlib import Path
from typing import Any

from llmrouter.config import RouterConfig
from llmrouter.proxy.dispatch import Engine, provider_key
from llmrouter.routing.pricing import Mix
from llmrouter.wire.apis import Usage
from llmrouter.wire.outcome import Failure, Outcome, failure_of
from llmrouter.wire.scrub import model_name

MAX_LINES = 10_000


def _replay(engine: Engine, cfg: RouterConfig, line: dict[str, Any]) -> None:
    prov = cfg.providers.get(line.get("provider"))  # type: ignore[arg-type]
    try:
        when = datetime.fromisoformat(str(line["ts"]).replace("Z", "+00:00")).timestamp()
        outcome = Outcome(line["outcome"])
        stream = bool(line.get("stream"))
    except (KeyError, ValueError, TypeError):
        return
    if prov is None:
        return
    # Capped as the router keeps names now: an older log may hold a client's 100 KB name.
    model = line.get("model")
    model = model_name(model) if isinstance(model, str) else None
    key = provider_key(line["provider"], prov)
    ttft, total, out = line.get("ttft_ms"), line.get("total_ms"), line.get("output_tokens")
    if outcome is Outcome.OK or (stream and isinstance(ttft, int | float)):
        engine.latency.record_ok(
            key, model, stream, when,
            ttft_ms=ttft if isinstance(ttft, int | float) else None,
            total_ms=total if isinstance(total, int | float) else None,
            output_tokens=out if isinstance(out, int) else None,
        )  # fmt: skip
    elif failure_of(outcome, line.get("status")) is not Failure.NONE:
        engine.latency.record_failure(key, model, stream, when)
    profile = line.get("profile")
    if isinstance(profile, str) and profile in cfg.profiles:
        counts = [line.get(k) for k in ("input_tokens", "output_tokens", "cache_read_tokens")]
        usage = Usage(*(n if isinstance(n, int) else None for n in counts))
        engine.mixes.setdefault(profile, Mix()).add(usage)


async def warm_start(engine: Engine, cfg: RouterConfig, path: Path) -> int:
    """Feed the last MAX_LINES attempts to the engine. Returns the number of lines read."""
    from llmrouter.proxy.journal import tail

    lines = await asyncio.to_thread(lambda: list(tail(path, MAX_LINES)))
    for line in lines:
        _replay(engine, cfg, line)
    return len(lines)
