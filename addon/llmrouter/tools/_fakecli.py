"""The fake provider's command line: ``python -m llmrouter.tools.fakeprovider --name a``."""

from __future__ import annotations

import argparse
import asyncio
import signal

from llmrouter.tools import fakeprovider
from llmrouter.tools._fakebehaviour import Behaviour, parse_faults
from llmrouter.tools._fakecache import PromptCache
from llmrouter.tools.fakeprovider import FakeProvider


async def _serve_cli(args: argparse.Namespace) -> int:
    default = Behaviour(
        ttft=args.ttft, interval=args.interval, deltas=args.deltas, delay=args.delay
    )
    faults = parse_faults(args.faults) if args.faults else None
    cache = PromptCache() if args.prompt_cache else None
    fake = FakeProvider(
        args.name,
        default=default,
        faults=faults,
        seed=args.seed,
        prompt_cache=cache,
        strict=args.strict,
    )
    await fake.start(port=args.port)
    stopped = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stopped.set)
    print(f"fakeprovider {fake.name} listening on {fake.url}", flush=True)
    try:
        await stopped.wait()
    finally:
        await fake.stop()
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m llmrouter.tools.fakeprovider", description=fakeprovider.__doc__
    )
    parser.add_argument("--name", default="fake")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--faults", default="", help="e.g. 503=0.2,inband_error=0.1,cut=0.05")
    parser.add_argument("--ttft", type=float, default=0.0)
    parser.add_argument("--interval", type=float, default=0.0)
    parser.add_argument("--deltas", type=int, default=3)
    parser.add_argument("--delay", type=float, default=0.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--prompt-cache", action="store_true", help="simulate a prompt cache per conversation"
    )
    parser.add_argument(
        "--strict", action="store_true", help="refuse what the real API refuses (see _fakecheck)"
    )
    return asyncio.run(_serve_cli(parser.parse_args(argv)))
