"""Users' limits on the engine's path, in process with real fake providers: reserved before the
first attempt, settled to the real cost when the answer ends, released on failure, and nothing
left reserved after any ending (ok, stream, client gone, never fetched, all failed, deadline,
cancelled)."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import aiohttp
import pytest
from llmrouter.access import hash_token
from llmrouter.config import RouterConfig, parse_config
from llmrouter.proxy.dispatch import Engine, Request
from llmrouter.proxy.handoff import Handoff
from llmrouter.proxy.limiting import users_status
from llmrouter.proxy.views import users_lines
from llmrouter.schema import Price
from llmrouter.tools.fakeprovider import Behaviour, FakeProvider
from llmrouter.wire.apis import Usage
from llmrouter.wire.outcome import Outcome

PRICE = {"input": 0, "output": 1}  # USD per million: 3000 output tokens cost $0.003
OUT = Behaviour(output_tokens=3000, input_tokens=10)


def config(fakes: dict[str, FakeProvider], limits: dict[str, Any] | None = None,
           price: dict[str, float] | None = PRICE, **profile: Any) -> RouterConfig:  # fmt: skip
    providers = {}
    for name, fake in fakes.items():
        providers[name] = {"base_url": fake.url, "api": "anthropic"}
        if price is not None:
            providers[name]["price"] = price
    user: dict[str, Any] = {"token_sha256": hash_token("alice-token"), "profiles": ["default"]}
    if limits is not None:
        user["limits"] = limits
    prof = {"hosts": ["api.anthropic.com"], "providers": list(fakes), **profile}
    return parse_config({"providers": providers, "profiles": {"default": prof},
                         "access": {"users": {"alice": user}}})  # fmt: skip


def request(stream: bool = False, max_tokens: int = 3000, n: int = 0) -> Request:
    body = {"model": "claude-test", "max_tokens": max_tokens, "stream": stream,
            "messages": [{"role": "user", "content": f"hi {n}"}]}  # fmt: skip
    return Request(f"req{n}-{time.monotonic_ns()}", "POST", "/v1/messages",
                   [("content-type", "application/json")], json.dumps(body).encode())  # fmt: skip


@pytest.fixture
async def engine() -> AsyncIterator[tuple[Engine, list[dict[str, Any]]]]:
    lines: list[dict[str, Any]] = []
    async with aiohttp.ClientSession() as session:
        yield Engine(session, lines.append), lines


@pytest.fixture
async def start() -> AsyncIterator[Callable[..., Any]]:
    started: list[FakeProvider] = []

    async def go(name: str, **kw: Any) -> FakeProvider:
        fake = FakeProvider(name, **kw)
        await fake.start()
        started.append(fake)
        return fake

    yield go
    for fake in started:
        await fake.stop()


async def until(pred: Callable[[], bool]) -> None:
    """Wait (up to 5 s) for a condition the event loop makes true: a relay's end, a sweep."""
    for _ in range(500):
        if pred():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("condition not met within 5 s")


def spent(e: Engine) -> int:
    return e.limits.ledger.spending("alice", time.time())[1]  # the month: no midnight in a test


# -- nothing stays reserved, whatever the ending -----------------------------------------------


async def test_ok_answer_settles_to_the_real_cost(engine, start) -> None:
    e, lines = engine
    cfg = config({"a": await start("a", default=OUT)}, {"usd_per_month": 1})
    answer = await e.route(cfg, "default", request(max_tokens=5000), "alice")
    assert answer.status == 200 and e.limits.ledger.in_flight == 0
    assert spent(e) == 3_000  # the real cost, not the $0.005 reserved
    assert lines[-1]["user"] == "alice" and lines[-1]["charged_usd"] is None


async def test_ok_stream_settles_at_its_end(engine, start) -> None:
    e, lines = engine
    cfg = config({"a": await start("a", default=OUT)}, {"usd_per_month": 1})
    answer = await e.route(cfg, "default", request(stream=True), "alice")
    assert answer.relay is not None and e.limits.ledger.in_flight == 1  # held while it streams
    out: list[bytes] = []

    async def write(b: bytes) -> None:
        out.append(b)

    await answer.relay.pump(write)
    assert b"message_stop" in b"".join(out)
    assert e.limits.ledger.in_flight == 0 and spent(e) == 3_000
    assert lines[-1]["cost_usd"] == pytest.approx(0.003) and lines[-1]["charged_usd"] is None


async def test_client_gone_mid_stream_is_charged_its_reservation(engine, start) -> None:
    e, lines = engine
    slow = Behaviour(output_tokens=3000, deltas=5, interval=0.05)
    cfg = config({"a": await start("a", default=slow)}, {"usd_per_month": 1})
    answer = await e.route(cfg, "default", request(stream=True, max_tokens=4000), "alice")
    assert answer.relay is not None

    async def write(b: bytes) -> None:
        raise ConnectionResetError("client gone")

    with pytest.raises(ConnectionError):
        await answer.relay.pump(write)
    assert e.limits.ledger.in_flight == 0
    assert spent(e) == 4_000  # output unknown: charged the 4000-token bound
    assert lines[-1]["outcome"] == "client_closed" and lines[-1]["charged_usd"] == 0.004


async def test_parked_stream_never_fetched_is_settled_by_the_sweep(engine, start) -> None:
    e, lines = engine
    cfg = config({"a": await start("a", default=OUT)}, {"usd_per_month": 1})
    handoff = Handoff(ttl=0.1)
    await handoff.start()
    try:
        answer = await e.route(cfg, "default", request(stream=True), "alice")
        assert answer.relay is not None
        handoff.park(answer.relay)
        await until(lambda: e.limits.ledger.in_flight == 0)
    finally:
        await handoff.stop()
    assert lines[-1]["outcome"] == "client_closed" and lines[-1]["charged_usd"] == 0.003


async def test_all_failed_releases_everything(engine, start) -> None:
    e, lines = engine
    bad = Behaviour(kind="status", status=503)
    cfg = config({"a": await start("a", default=bad), "b": await start("b", default=bad)},
                 {"usd_per_month": 1})  # fmt: skip
    answer = await e.route(cfg, "default", request(), "alice")
    assert answer.status == 503 and len(answer.attempts) == 2
    assert e.limits.ledger.in_flight == 0 and spent(e) == 0
    assert [ln["user"] for ln in lines] == ["alice", "alice"]


async def test_deadline_releases_everything(engine, start) -> None:
    e, _ = engine
    cfg = config({"a": await start("a", default=Behaviour(delay=5))}, {"usd_per_month": 1},
                 deadline=0.2)  # fmt: skip
    answer = await e.route(cfg, "default", request(), "alice")
    assert answer.status == 504 and e.limits.ledger.in_flight == 0 and spent(e) == 0


async def test_cancelled_request_releases_everything(engine, start) -> None:
    e, lines = engine
    fake = await start("a", default=Behaviour(delay=5))
    cfg = config({"a": fake}, {"usd_per_month": 1})
    task = asyncio.create_task(e.route(cfg, "default", request(), "alice"))
    await until(lambda: bool(fake.requests))  # the attempt is out
    assert e.limits.ledger.in_flight == 1
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert e.limits.ledger.in_flight == 0 and spent(e) == 0
    assert lines[-1]["outcome"] == "client_closed"


async def test_a_failover_books_each_attempts_cost(engine, start) -> None:
    e, _ = engine
    cut = Behaviour(kind="inband_error", output_tokens=3000)  # before its first token
    cfg = config({"a": await start("a", default=cut), "b": await start("b", default=OUT)},
                 {"usd_per_month": 1})  # fmt: skip
    answer = await e.route(cfg, "default", request(stream=True), "alice")
    assert answer.relay is not None and answer.served_by.provider == "b"

    async def write(b: bytes) -> None:
        return None

    await answer.relay.pump(write)
    assert e.limits.ledger.in_flight == 0


# -- budgets and rates --------------------------------------------------------------------------


async def test_a_cent_admits_exactly_three_in_sequence_then_429(engine, start) -> None:
    e, _ = engine
    cfg = config({"a": await start("a", default=OUT)}, {"usd_per_month": 0.01})
    statuses = [(await e.route(cfg, "default", request(n=n), "alice")).status for n in range(5)]
    assert statuses == [200, 200, 200, 429, 429]
    denied = await e.route(cfg, "default", request(n=9), "alice")
    headers = dict(denied.headers)
    body = json.loads(denied.body)
    assert body["error"]["type"] == "rate_limit_error"
    assert "usd_per_month budget $0.01 reached" in body["error"]["message"]
    assert 0 < int(headers["retry-after"]) <= 31 * 86400 and headers["x-should-retry"] == "false"
    assert headers["x-router-limit"] == "usd_per_month" and spent(e) == 9_000
    assert denied.plan is not None and denied.plan.refusal[0] == 429  # comment, explain


async def test_a_cent_admits_exactly_three_of_ten_concurrent(engine, start) -> None:
    e, _ = engine
    cfg = config({"a": await start("a", default=Behaviour(output_tokens=3000, delay=0.1))},
                 {"usd_per_month": 0.01})  # fmt: skip
    answers = await asyncio.gather(*(e.route(cfg, "default", request(n=n), "alice")
                                     for n in range(10)))  # fmt: skip
    assert sorted(a.status for a in answers) == [200] * 3 + [429] * 7
    busy = [a for a in answers if a.status == 429]
    assert all(dict(a.headers)["x-should-retry"] == "true" for a in busy)  # only in flight
    assert e.limits.ledger.in_flight == 0 and spent(e) == 9_000


async def test_rpm_sixth_request_in_the_minute_is_refused(engine, start) -> None:
    e, _ = engine
    cfg = config({"a": await start("a")}, {"rpm": 5}, price=None)  # no usd limit: no price needed
    statuses = [(await e.route(cfg, "default", request(n=n), "alice")).status for n in range(6)]
    assert statuses == [200] * 5 + [429]
    six = await e.route(cfg, "default", request(n=7), "alice")
    assert dict(six.headers)["x-router-limit"] == "rpm"
    assert "rpm limit 5 requests per minute" in json.loads(six.body)["error"]["message"]


async def test_unpriced_candidates_are_skipped_for_a_usd_budget(engine, start) -> None:
    e, lines = engine
    a, b = await start("a"), await start("b", default=OUT)
    cfg = config({"a": a, "b": b}, {"usd_per_month": 1}, price=None)
    cfg.providers["b"] = cfg.providers["b"].model_copy(update={"price": Price(**PRICE)})
    answer = await e.route(cfg, "default", request(), "alice")
    assert answer.status == 200 and answer.served_by.provider == "b" and not a.requests
    why = "no known price; user alice has a usd budget"
    assert {"provider": "a", "reason": "unpriced", "detail": why} in lines[0]["skipped"]
    nothing = config({"a": a}, {"usd_per_month": 1}, price=None)
    refused = await e.route(nothing, "default", request(), "alice")
    assert refused.status == 403 and "set `price:` on a" in json.loads(refused.body)["error"][
        "message"]  # fmt: skip
    assert e.limits.ledger.in_flight == 0


async def test_users_without_limits_are_counted_and_shown(engine, start) -> None:
    e, _ = engine
    cfg = config({"a": await start("a", default=OUT)})
    assert (await e.route(cfg, "default", request(), "alice")).status == 200
    (status,) = users_status(cfg, e.limits.ledger, time.time())
    assert status.today_usd == pytest.approx(0.003) and status.limits == {}
    assert users_lines([status]) == ["users: 1 (access)",
                                     "  alice  day $0.003 · month $0.003 · no limits"]  # fmt: skip


async def test_status_shows_what_is_left(engine, start) -> None:
    e, _ = engine
    cfg = config({"a": await start("a", default=OUT)}, {"usd_per_month": 0.01, "rpm": 30})
    await e.route(cfg, "default", request(), "alice")
    (status,) = users_status(cfg, e.limits.ledger, time.time())
    month = status.limits["usd_per_month"]
    assert month["left_usd"] == pytest.approx(0.007)
    assert month["spent_usd"] == pytest.approx(0.003)
    assert status.limits["rpm"] == {"limit": 30, "used": 1, "left": 29}
    line = users_lines([status])[1]
    assert "month $0.003 of $0.01 ($0.007 left, resets in" in line and "rpm 1 of 30" in line
    assert "token" not in json.dumps(status.limits)


async def test_requests_wait_for_the_spend_rebuilt_from_the_journal(engine, start, tmp_path):
    e, _ = engine
    cfg = config({"a": await start("a", default=OUT)}, {"usd_per_month": 0.01})
    journal = tmp_path / "router.jsonl"
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime())
    journal.write_text(json.dumps({"ts": stamp, "user": "alice", "cost_usd": 0.009,
                                   "attempt": 1}) + "\n")  # fmt: skip
    task = e.limits.rebuilding(journal, 5)
    first = asyncio.create_task(e.route(cfg, "default", request(), "alice"))
    await task
    answer = await first
    assert answer.status == 429 and spent(e) == 9_000  # $0.009 + $0.003 > $0.01
    assert e.limits.ledger.in_flight == 0


@pytest.mark.parametrize(
    ("stream", "outcome", "usage", "charged"),
    [
        (False, Outcome.OK, Usage(10, 20), None),  # a whole answer: its cost
        (False, Outcome.OK, Usage(10, None), None),  # an embedding reports input only
        (False, Outcome.OK, Usage(), 0.005),  # no usage at all: the reservation
        (True, Outcome.OK, Usage(10, 20), None),
        (True, Outcome.OK, Usage(10, None), 0.005),  # a chat stream without include_usage
        (True, Outcome.TRUNCATED, Usage(10, 1), 0.005),  # cut after message_start
        (True, Outcome.CLIENT_CLOSED, Usage(10, 1), 0.005),
    ],
)  # fmt: skip
def test_what_a_served_answer_is_charged(stream, outcome, usage, charged) -> None:
    from llmrouter.proxy.attempt import Attempt, Ctx
    from llmrouter.proxy.limiting import Hold, LocalLimits, book
    from llmrouter.state.limits import windows_for

    limits = LocalLimits()
    grant = limits.ledger.reserve("alice", windows_for(None, time.time()), 5_000, time.time())
    ctx = Ctx("rid", "default", "failover", "anthropic", "m", stream, 0.0, user="alice")
    ctx.hold = Hold(grant, 5_000)
    att = Attempt(ctx, 1, "a", "a https://a", False, status=200, final=True, usage=usage)
    att.ttft = time.monotonic() if stream else None
    att.end(outcome, None)
    att.cost = 0.00003 if usage != Usage() else None
    book(limits, att)
    assert att.charged == charged and ctx.hold is None and limits.ledger.in_flight == 0
    month = limits.ledger.spending("alice", time.time())[1]
    assert month == (5_000 if charged else 30)
