"""Users' budgets and request rates on the request path: what a request reserves before its
first attempt, what it is charged when it ends, and the 429 a denied one gets.

The decisions are made by `state/limits.py` (the ledger: windows, check-and-reserve in one
step) and `state/reservation.py` (the bound of one request's cost); this module puts them on
the engine's path, so that `dispatch.Engine` only asks:

    refused = await admit(engine.limits, cfg, req, plan, ctx, estimate)  # before attempt 1
    book(engine.limits, att)      # each attempt's end: a final one settles the reservation
    close(engine.limits, ctx)     # the request ended with no final attempt: settle or release

`LocalLimits` is the engine's one door to the limits, shaped like the shared backend
(`state/backends.py`): `await reserve(Reservation, now)`, then `settle` or `release`. Swapping
it for Redis is swapping this object (see `reserve`).
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from llmrouter.proxy.exchange import Answer, Request
from llmrouter.routing import pricing
from llmrouter.routing.estimate import estimate
from llmrouter.routing.routes import fallback_order, policy_for
from llmrouter.routing.signals import Signals
from llmrouter.schema import RouterConfig
from llmrouter.state import limitstart
from llmrouter.state.limits import MICRO, Denial, Grant, Ledger, usd_to_micro, windows_for
from llmrouter.state.limittypes import Reservation
from llmrouter.state.reservation import plan_reservation, requested_max_tokens
from llmrouter.wire import apis
from llmrouter.wire.outcome import Outcome
from llmrouter.wire.scrub import model_name

if TYPE_CHECKING:
    from llmrouter.proxy.attempt import Attempt, Ctx
    from llmrouter.proxy.planning import Plan, Planner

logger = logging.getLogger("llmrouter")


class LocalLimits:
    """This instance's budgets and rates: the local Ledger behind an async `reserve`.

    The Redis backend offers the same verdicts through `StateBackend.begin(conversation,
    reservation, now)` (one round trip with the conversation's binding) and the same
    `settle`/`release`; an adapter whose `reserve` returns `(await begin(None, r, now)).verdict`
    drops in here.
    """

    def __init__(self, ledger: Ledger | None = None) -> None:
        self.ledger = ledger if ledger is not None else Ledger()
        self.ready = asyncio.Event()  # cleared while the spend is rebuilt from the journal
        self.ready.set()

    async def reserve(self, r: Reservation, now_unix: float) -> Grant | Denial:
        if not self.ready.is_set():  # a request at start-up waits for the journal's spend
            await self.ready.wait()
            now_unix = time.time()
        # One synchronous step from here: no other request can slip in between check and hold.
        return self.ledger.reserve(r.user, r.windows, r.amount, now_unix)

    def settle(self, grant: Grant, actual_micro: int, now_unix: float) -> None:
        self.ledger.settle(grant, actual_micro, now_unix)

    def release(self, grant: Grant, now_unix: float) -> None:
        self.ledger.release(grant, now_unix)

    def rebuilding(self, path: Path, backups: int) -> asyncio.Task[None]:
        """Rebuild the spend from the journal in the background; `reserve` waits until done.
        `ready` is cleared now, before any request can reserve."""
        self.ready.clear()
        return asyncio.create_task(self._rebuild(path, backups))

    async def _rebuild(self, path: Path, backups: int) -> None:
        try:
            warn = await limitstart.rebuild(self.ledger, path, time.time(), backups)
            if warn:
                logger.warning(warn)
        except Exception:  # budgets then start from zero: say so loudly, never hang requests
            logger.exception("router: spend not rebuilt from the journal; budgets start at 0")
        finally:
            self.ready.set()


@dataclass(slots=True)
class Hold:
    """One request's reservation, from admission until its final attempt ends."""

    grant: Grant
    bound: int  # micro-USD reserved: what an answer whose usage was cut short is charged
    unpriced: frozenset[str] = frozenset()  # candidates a user with a usd budget never gets
    spent: int = 0  # micro-USD booked by the attempts ended so far


def candidate_prices(
    cfg: RouterConfig, req: Request, plan: Plan
) -> dict[str, pricing.ModelPrice | None]:
    """The price of the model each candidate would be sent: the first pool's, and the
    profile's pool a route falls back to (a failover may go there: it must stay reserved)."""
    assert plan.leg is not None
    profile = cfg.profiles[plan.profile]
    pools = [(plan.leg.policy, plan.leg.order)]
    rest = fallback_order(plan.policy, profile)
    if rest:
        pools.append((policy_for(profile, None), rest))
    out: dict[str, pricing.ModelPrice | None] = {}
    for policy, names in pools:
        for n in names:
            if n not in out:
                prov = cfg.providers[n]
                model = model_name(policy.model_for(prov, req.model))
                out[n] = pricing.price_of(model, prov.price, prov.base_url)
    return out


async def admit(
    limits: LocalLimits, planner: Planner, cfg: RouterConfig, req: Request, plan: Plan, ctx: Ctx
) -> Answer | None:
    """Reserve the request against its user's limits (ctx.user): None when it may go (then
    ctx.hold is set), else the answer the client gets: a 429, or a 403 when no candidate has
    a price for a user with a usd budget (the input estimate is made only for such a user)."""
    account = cfg.access.users.get(ctx.user) if cfg.access is not None and ctx.user else None
    if account is None or ctx.user is None:
        return None
    user, wall = ctx.user, time.time()
    windows = windows_for(account.limits, wall)
    amount, unpriced = 0, frozenset[str]()
    if any(w.name != "rpm" for w in windows):
        tokens = input_estimate(planner, req, plan)
        res = plan_reservation(candidate_prices(cfg, req, plan), tokens,
                               requested_max_tokens(req.payload))  # fmt: skip
        unpriced = frozenset(res.unpriced)
        why = f"no known price; user {user} has a usd budget"
        for n in res.unpriced:  # fail closed: an unknown price could not be counted
            ctx.skipped.append({"provider": n, "reason": "unpriced", "detail": why})
        if not res.usable:
            msg = (f"router: user {user} has a usd budget and no candidate of profile "
                   f"{plan.profile!r} has a known price (the operator can set `price:` on "
                   f"{', '.join(res.unpriced)})")  # fmt: skip
            return _refused(req.api, plan, 403, msg, "unpriced_for_budget", [])
        amount = res.amount
    verdict = await limits.reserve(Reservation(user, tuple(windows), amount), wall)
    if isinstance(verdict, Denial):
        return denied(req.api, plan, verdict)
    ctx.hold = Hold(verdict, amount, unpriced)
    return None


def denied(api: apis.ApiName, plan: Plan, d: Denial) -> Answer:
    """A 429 in the API's format: retry-after at the window's reset (or, when only requests in
    flight or the rpm window are in the way, when one more fits), naming the limit."""
    rpm = d.window.name == "rpm"
    retry = d.why in ("busy", "rpm")  # seconds away; exhausted or too large: not worth a retry
    headers = [
        ("retry-after", str(max(1, math.ceil(d.retry_after)))),
        ("x-should-retry", "true" if retry else "false"),  # the SDKs obey it
        ("x-router-limit", d.window.name),
    ]
    code = "rate_limit_exceeded" if rpm else "budget_exceeded"
    return _refused(api, plan, 429, f"router: {d.message}", code, headers)


def _refused(
    api: apis.ApiName, plan: Plan, status: int, msg: str, code: str,
    headers: list[tuple[str, str]],
) -> Answer:  # fmt: skip
    plan.refusal = (status, msg, code)  # the flow's comment and router.explain tell it
    logger.info(f"router: {plan.profile}: refused {status}: {msg}")
    body = apis.error_body(api, status, msg, code)
    return Answer(status, [("content-type", "application/json"), *headers], body, plan=plan)


def _served(att: Attempt) -> bool:
    """Its answer reached the client: a 2xx, or a stream past its commit point."""
    return att.ttft is not None or (att.status is not None and 200 <= att.status < 300)


def book(limits: LocalLimits, att: Attempt) -> None:
    """An attempt ended: add its cost to the request's hold; the final one settles it.

    A served answer whose usage the router could not read whole (a stream cut, abandoned or
    without its final usage; a body with no usage; no price) is charged its reservation: the
    provider may have billed anything up to it, and a budget must not leak through streams
    nobody finished."""
    hold = att.ctx.hold
    if hold is None:
        return
    charge = usd_to_micro(att.cost or 0.0)
    u = att.usage
    # A whole body's usage is final (an embedding reports input only); a stream's only once
    # it ended cleanly with its output count.
    whole = (
        att.outcome is Outcome.OK
        and att.cost is not None
        and (u.output_tokens is not None or (not att.ctx.stream and u.input_tokens is not None))
    )
    if att.final and hold.bound and _served(att) and not whole:
        charge = max(charge, hold.bound)
        att.charged = charge / MICRO
    hold.spent += charge
    if att.final:
        att.ctx.hold = None
        limits.settle(hold.grant, hold.spent, time.time())


def close(limits: LocalLimits, ctx: Ctx) -> None:
    """The request ended without a final attempt (all failed, deadline, cancelled, refused):
    book what its attempts cost, or give the whole reservation back."""
    hold, ctx.hold = ctx.hold, None
    if hold is None:
        return
    if hold.spent:
        limits.settle(hold.grant, hold.spent, time.time())
    else:
        limits.release(hold.grant, time.time())


# -- what router.status and /status show ----------------------------------------------------


@dataclass(frozen=True, slots=True)
class UserStatus:
    name: str
    profiles: list[str]
    in_flight: int  # requests holding a reservation
    today_usd: float  # settled spend, limits or not
    month_usd: float
    # per configured limit: usd_* -> limit_usd, spent_usd, reserved_usd, left_usd, resets_in_s;
    # rpm -> limit, used, left
    limits: dict[str, dict[str, float | int]] = field(default_factory=dict)


def users_status(cfg: RouterConfig, ledger: Ledger, now_unix: float) -> list[UserStatus]:
    """Each configured user's spend and what is left of each limit. No tokens, no hashes."""
    if cfg.access is None:
        return []
    out = []
    for name, account in cfg.access.users.items():
        day, month = ledger.spending(name, now_unix)
        limits: dict[str, dict[str, float | int]] = {}
        for w in windows_for(account.limits, now_unix):
            used = ledger.spent(name, w)
            if w.name == "rpm":
                limits[w.name] = {"limit": w.limit, "used": used,
                                  "left": max(0, w.limit - used)}  # fmt: skip
                continue
            held = ledger.reserved(name, w)
            limits[w.name] = {
                "limit_usd": w.limit / MICRO, "spent_usd": used / MICRO,
                "reserved_usd": held / MICRO, "left_usd": max(0, w.limit - used - held) / MICRO,
                "resets_in_s": round(w.reset_at - now_unix),
            }  # fmt: skip
        out.append(UserStatus(name, list(account.profiles), ledger.holding(name), day / MICRO,
                              month / MICRO, limits))  # fmt: skip
    return out


def input_estimate(planner: Planner, req: Request, plan: Plan) -> int:
    """The request's input tokens as routing estimates them (`routing.estimate`): the plan's
    when a route or a context window made one, else made now (only for a usd budget)."""
    if plan.estimate is not None:
        return plan.estimate.tokens
    sig = Signals.of(req.path, req.headers, lambda: req.payload, req.body, req.api, req.model)
    last = planner.usage.get(plan.history[0]) if plan.history is not None else None
    return estimate(sig, last).tokens
