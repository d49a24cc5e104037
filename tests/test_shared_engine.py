"""The engine on a Redis backend, in process, against a real redis-server and fake providers:
one round trip on a request's path (its bindings and its reservation together, nothing else),
a stream's hold renewed past its lease until it ends, and nothing rebuilt from the journal at
start-up (the cluster's spend is in Redis).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from llmrouter.access import hash_token
from llmrouter.config import RouterConfig, parse_config
from llmrouter.proxy.dispatch import Engine, Request
from llmrouter.schema import Shared
from llmrouter.state.redisbackend import RedisBackend
from llmrouter.tools.fakeprovider import Behaviour, FakeProvider
from redisproc import RedisProc
from sharedhelp import PREFIX, raw
from sharedhelp import wait_for as until

pytestmark = pytest.mark.redis

OUT = Behaviour(output_tokens=3000, input_tokens=10)  # $0.003 at $1 per million output tokens


def config(fake: FakeProvider, **profile: Any) -> RouterConfig:
    user = {"token_sha256": hash_token("t"), "profiles": ["default"],
            "limits": {"usd_per_month": 1}}  # fmt: skip
    prof = {"hosts": ["api.anthropic.com"], "providers": ["a", "b"], **profile}
    providers = {n: {"base_url": fake.url, "api": "anthropic", "price": {"input": 0, "output": 1}}
                 for n in ("a", "b")}  # fmt: skip
    return parse_config({"providers": providers, "profiles": {"default": prof},
                         "access": {"users": {"alice": user}}})  # fmt: skip


def request(stream: bool = False) -> Request:
    body = {"model": "claude-test", "max_tokens": 3000, "stream": stream,
            "messages": [{"role": "user", "content": "hi"}]}  # fmt: skip
    headers = [("content-type", "application/json"), ("x-claude-code-session-id", "s-1")]
    return Request(f"r-{time.monotonic_ns()}", "POST", "/v1/messages", headers,
                   json.dumps(body).encode())  # fmt: skip


@pytest.fixture
async def fake() -> AsyncIterator[FakeProvider]:
    f = FakeProvider("a", default=OUT)
    await f.start()
    yield f
    await f.stop()


@pytest.fixture
async def engine(redis_server: RedisProc) -> AsyncIterator[Callable[..., Any]]:
    made: list[tuple[Engine, bool]] = []

    async def make(*, run: bool = True, **shared: Any) -> Engine:
        if not run:  # these count round trips: a busy box must not send a call local (50 ms)
            shared.setdefault("timeout", 1.0)
        s = Shared.model_validate({"redis": redis_server.url, "prefix": PREFIX, **shared})
        backend = RedisBackend(s, tick=0.1)
        e = Engine(session, lambda _: None, state=backend)
        if run:
            await backend.start()
        else:  # connected, with no background task: every call the requests make is counted
            async with asyncio.timeout(10):
                while not backend.store.link.up:
                    await backend.store.sync.resync()
        made.append((e, run))
        return e

    async with aiohttp.ClientSession() as session:
        yield make
        for e, run in made:
            if run:
                await e.state.stop()


async def test_a_request_reads_its_bindings_and_reserves_in_one_round_trip(
    fake, engine, redis_server
) -> None:
    e = await engine(run=False)
    st = e.state.store  # type: ignore[attr-defined]
    # A route that falls back to the profile: both pools' bindings, and the budget, at once.
    cfg = config(fake, routes={"background": {"providers": ["b"]}}, background_models=["*"])
    e.apply_config(cfg)
    calls, batches = st.link.calls, st.link.batches
    answer = await e.route(cfg, "default", request(), "alice")
    assert answer.status == 200 and answer.plan is not None
    assert answer.plan.wants and len(answer.plan.wants) == 2  # the route's and the profile's
    assert (st.link.calls, st.link.batches) == (calls + 1, batches + 1)
    assert {op.kind for op in st.outbox._pending.values()} == {"bind", "settle"}  # queued
    # A request of no user and no conversation asks Redis nothing.
    plain = Request("r-plain", "POST", "/v1/messages", [], json.dumps({"model": "m"}).encode())
    cfg_plain = config(fake, affinity=False)
    e.apply_config(cfg_plain)
    assert (await e.route(cfg_plain, "default", plain)).status == 200
    assert st.link.calls == calls + 1
    # Stopping flushes what is queued (the settlement) before it leaves.
    await e.state.stop()
    month = time.strftime("%Y-%m", time.gmtime())
    assert await raw(redis_server.url, "HGET", f"{PREFIX}lim:alice:month:{month}", "s") == b"3000"


async def test_a_stream_keeps_its_hold_past_the_lease_until_it_ends(
    fake, engine, redis_server
) -> None:
    e = await engine(lease=0.5)  # renewed every tick (0.1 s) while the stream runs
    fake.set_default(Behaviour(output_tokens=3000, deltas=15, interval=0.1))
    cfg = config(fake)
    e.apply_config(cfg)
    answer = await e.route(cfg, "default", request(stream=True), "alice")
    assert answer.relay is not None
    month = time.strftime("%Y-%m", time.gmtime())
    counters = f"{PREFIX}lim:alice:month:{month}"
    assert await raw(redis_server.url, "HGET", counters, "h") == b"3000"
    out: list[bytes] = []

    async def write(b: bytes) -> None:
        out.append(b)

    t0 = time.monotonic()
    pump = asyncio.create_task(answer.relay.pump(write))
    await asyncio.sleep(1.0)  # twice the lease: an unrenewed hold would be gone by now
    other = await engine()  # another instance's reservation drops expired leases
    other.apply_config(cfg)
    assert (await other.route(cfg, "default", request(), "alice")).status == 200
    assert time.monotonic() - t0 > 1.0 and not pump.done()
    assert int(await raw(redis_server.url, "HGET", counters, "h")) == 3000  # still held
    await pump
    assert b"message_stop" in b"".join(out)
    await until(lambda: not e.state.store.outbox, within=5.0)  # type: ignore[attr-defined]
    await until(lambda: not other.state.store.outbox, within=5.0)  # type: ignore[attr-defined]
    got = await raw(redis_server.url, "HMGET", counters, "s", "h")
    assert got == [b"6000", b"0"]  # both settled to their real cost, nothing held


async def test_nothing_is_rebuilt_from_the_journal_with_a_shared_store(
    engine, tmp_path: Path
) -> None:
    e = await engine(run=False)
    journal = tmp_path / "router.jsonl"
    journal.write_text(json.dumps({"user": "alice", "cost_usd": 1.0, "ts": time.time()}) + "\n")
    assert e.limits.rebuilding(journal, 1) is None  # this instance's lines are in Redis already
    assert e.limits.ready.is_set()
