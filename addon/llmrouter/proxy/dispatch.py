"""One request's journey: strategy order -> attempts -> the answer the client gets.

The engine owns the routing state (health, latency, token mix) and runs the attempt loop; each
attempt is made by `exchange.Exchange`, and its end is booked here (health, latency, cost, the
JSONL line). This module knows nothing of mitmproxy flows: the addon turns a flow into a
`Request` and an `Answer` back into a flow.
"""

from __future__ import annotations

import hashlib
import logging
import math
import time
from collections.abc import Callable, Iterator
from typing import Any

import aiohttp

from llmrouter.config import Provider, RouterConfig, key_of
from llmrouter.proxy import limiting
from llmrouter.proxy.attempt import Attempt, Ctx
from llmrouter.proxy.exchange import Answer, Exchange, Request
from llmrouter.proxy.planning import Leg, Plan, Planner
from llmrouter.routing import crossapi, pricing
from llmrouter.routing.strategies import Selection, Selector
from llmrouter.state.backends import LocalBackend, StateBackend
from llmrouter.state.health import HealthSettings
from llmrouter.wire import apis
from llmrouter.wire.apis import ApiName, Usage
from llmrouter.wire.outcome import Failure, Outcome, failure_of
from llmrouter.wire.scrub import Scrubber, cap, model_name, printable

__all__ = ["Answer", "Engine", "Request", "provider_key"]

logger = logging.getLogger("llmrouter")


def provider_key(name: str, provider: Provider) -> str:
    """State survives a reload for providers whose name and base_url are unchanged."""
    return f"{name} {provider.base_url}"


def _key_hash(provider: Provider) -> str | None:
    key = key_of(provider)
    return hashlib.sha256(key.encode()).hexdigest() if key is not None else None


class Engine:
    """Routing state shared by every flow and kept across reloads, and the attempt loop."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        write: Callable[[dict[str, Any]], None],
        selector: Selector | None = None,
        state: StateBackend | None = None,
    ) -> None:
        self.session = session
        self.write = write
        # Health, latency, bindings and limits: this process's, or shared through Redis.
        self.state = state if state is not None else LocalBackend()
        self.health = self.state.health
        self.latency = self.state.latency
        self.limits = self.state.limits  # users' budgets and rates; kept across reloads
        self.selector = selector or Selector(start=self.state.offset)
        self.mixes: dict[str, pricing.Mix] = {}
        self._key_hashes: dict[str, str | None] = {}
        self.scrub = Scrubber(())
        self.exchange = Exchange(session, self.state, self._end)
        self.planner = Planner(self.health, self.latency, self.selector, self.mixes, provider_key,
                               self.state.bindings)  # fmt: skip

    def apply_config(self, cfg: RouterConfig) -> None:
        """Keep the state of providers that survived a reload; forget the others."""
        h = cfg.health
        self.health.settings = HealthSettings(
            h.rate_limit_cooldown, h.backoff_initial, h.backoff_max, h.auth_cooldown, h.max_cooldown
        )
        keys = {provider_key(n, p): _key_hash(p) for n, p in cfg.providers.items()}
        for key, digest in keys.items():
            if self._key_hashes.get(key, digest) != digest:
                self.health.forgive_auth(key)
        self.planner.apply_config(cfg)
        self._key_hashes = keys
        self.health.retain(keys)
        self.latency.retain(set(keys))
        self.state.watch(keys, cfg.access.users if cfg.access is not None else ())
        self.scrub = Scrubber(k for p in cfg.providers.values() if (k := key_of(p)) is not None)
        self.exchange.scrub = self.scrub

    # -- the attempt loop --------------------------------------------------------------------

    async def route(
        self, cfg: RouterConfig, pname: str, req: Request, user: str | None = None
    ) -> Answer:
        profile = cfg.profiles[pname]
        started = time.monotonic()
        plan = self.planner.draft(cfg, pname, req, started)
        if plan.leg is None:
            return self._refuse(req, plan)
        deadline = started + (plan.policy.deadline or cfg.deadline(profile))
        ctx = Ctx(req.id, pname, plan.policy.strategy, req.api, model_name(req.model), req.stream,
                  deadline)  # fmt: skip
        ctx.skipped = list(plan.skipped)
        ctx.route, ctx.route_reason = plan.decision.route, plan.decision.reason
        ctx.conversation = plan.conversation.base if plan.conversation else None
        ctx.history = plan.history
        ctx.user = user
        # Reserved before the first attempt (settled when the last ends), with the binding
        # read in the same step: one round trip to a shared state, none without one.
        asked = limiting.ask(self.planner, cfg, req, plan, ctx) if user is not None else None
        if isinstance(asked, Answer):
            return asked
        verdict = None
        if plan.wants or asked is not None:
            r = asked.reservation if asked is not None else None
            verdict = (await self.state.begin(plan.wants, r, time.time())).verdict
        self.planner.pin(plan)
        if asked is not None:
            refused = limiting.admitted(asked, verdict, req.api, plan, ctx)
            if refused is not None:
                return refused
        sel = plan.leg.selection
        ctx.candidates, ctx.reason = list(sel.order), sel.reason

        attempts: list[Attempt] = []
        last_http: Answer | None = None
        # A failed attempt's line is written once the next one starts or the loop ends, so that
        # it lists the candidates skipped after it (cooled or probed meanwhile by other flows).
        held: Attempt | None = None
        try:
            for leg, name, forced in self._tries(cfg, pname, req, plan, ctx):
                if time.monotonic() >= ctx.deadline_at:
                    break
                if ctx.hold is not None and name in ctx.hold.unpriced:
                    continue  # skipped at admission: a usd budget needs a known price
                prov = cfg.providers[name]
                key = provider_key(name, prov)
                probe = await self.state.acquire(key, time.monotonic(), force=forced)
                if probe is None:
                    reason = self._skip_reason(key, time.monotonic())
                    ctx.skipped.append({"provider": name, "reason": reason})
                    continue
                if held is not None:
                    self._write_line(held)
                att = held = Attempt(ctx, len(attempts) + 1, name, key, probe)
                att.affinity, att.fallback = leg.affinity(name), leg.fallback
                attempts.append(att)
                timeouts = leg.policy.timeouts_for(cfg.timeouts(profile, prov))
                model = leg.policy.model_for(prov, req.model)
                answer, retry = await self.exchange.run(timeouts, prov, req, att, model)
                if not retry and answer is not None:
                    held = None  # a final attempt writes its own line when it really ends
                    if 200 <= answer.status < 300:  # a 2xx, or a stream past its commit point
                        leg.success(name, time.monotonic())
                    answer.attempts, answer.selection, answer.served_by = attempts, sel, att
                    answer.plan = plan
                    return answer
                if answer is not None:
                    last_http = answer
        finally:
            if held is not None and held.outcome is not None:
                self._write_line(held)
            if not any(a.final for a in attempts):  # a final attempt settles when it ends
                limiting.close(self.limits, ctx)

        keys = [provider_key(n, cfg.providers[n]) for n in ctx.candidates]
        recovery = self.health.earliest_recovery(keys, time.monotonic())
        deadline_hit = time.monotonic() >= ctx.deadline_at
        if last_http is not None and not deadline_hit:
            last_http.attempts, last_http.selection, last_http.plan = attempts, sel, plan
            if recovery:  # the provider's own Retry-After may be later than another's recovery
                last_http.headers = [
                    (k, v) for k, v in last_http.headers
                    if k.lower() not in ("retry-after", "retry-after-ms")
                ]  # fmt: skip
                last_http.headers.append(("retry-after", str(math.ceil(recovery))))
            return last_http
        timed_out = deadline_hit or (
            attempts and all(a.outcome is Outcome.TIMEOUT for a in attempts)
        )
        chain = "; ".join(a.summary() for a in attempts) or "none tried"
        why = "deadline exceeded" if deadline_hit else "all providers failed"
        route = plan.decision.route
        scope = f"route {route!r} of profile {pname!r}" if route else f"profile {pname!r}"
        msg = f"router: {why} for {scope}: {chain}"
        answer = self._synthetic(req.api, 504 if timed_out else 502, msg, attempts, sel, recovery)
        answer.plan = plan
        return answer

    def _tries(
        self, cfg: RouterConfig, pname: str, req: Request, plan: Plan, ctx: Ctx
    ) -> Iterator[tuple[Leg, str, bool]]:
        """(pool, provider, forced) in try order: the route's ready candidates, then, with
        `fallback`, the profile's. Cooling ones are skipped; when no pool has a ready one, the
        one that recovers first is tried anyway (never refuse without trying)."""
        leg = plan.leg
        while leg is not None:
            now = time.monotonic()
            keys = {n: provider_key(n, cfg.providers[n]) for n in leg.order}
            ready = [n for n in leg.order if self.health.available(keys[n], now)]
            # The profile's pool is made only when needed: making it turns its counter.
            after = None
            if not ready and not leg.fallback:
                after = self._fallback(cfg, pname, req, plan, ctx)
            forced = not ready and not (
                after is not None and any(self._ready(cfg, n, now) for n in after.order)
            )
            if forced:
                ready = [min(leg.order, key=lambda n: self.health.until(keys[n]))]
            for n in leg.order:
                if n not in ready:
                    ctx.skipped.append({"provider": n, "reason": self._skip_reason(keys[n], now)})
            for n in ready:
                yield leg, n, forced
            if after is None and not leg.fallback:
                after = self._fallback(cfg, pname, req, plan, ctx)
            leg = after

    def _fallback(
        self, cfg: RouterConfig, pname: str, req: Request, plan: Plan, ctx: Ctx
    ) -> Leg | None:
        """The profile's pool after the route's, once; the lines from then on show it."""
        known = len(plan.skipped)
        after = self.planner.fallback(cfg, pname, req, plan)
        ctx.skipped += plan.skipped[known:]  # its capability filters
        if after is not None:
            ctx.candidates += [n for n in after.order if n not in ctx.candidates]
            ctx.reason += f"; then the profile's pool: {after.selection.reason}"
        return after

    def _ready(self, cfg: RouterConfig, name: str, now: float) -> bool:
        return self.health.available(provider_key(name, cfg.providers[name]), now)

    def _refuse(self, req: Request, plan: Plan) -> Answer:
        """No attempt: an unknown X-Router-Route, or no candidate that can serve the request."""
        status, msg, code = plan.refusal or (502, "router: nothing to try", "router_error")
        logger.info(f"router: {req.id[:8]} {plan.profile}: refused {status}: {msg}")
        body = apis.error_body(req.api, status, msg, code)
        sel = Selection((), msg)
        return Answer(status, [("content-type", "application/json")], body, None, [], sel,
                      plan=plan)  # fmt: skip

    def _skip_reason(self, key: str, now: float) -> str:
        wait = self.health.until(key) - now
        return f"cooling {math.ceil(wait)}s" if wait > 0 else "probe in flight"

    def _synthetic(
        self,
        api: ApiName,
        status: int,
        msg: str,
        attempts: list[Attempt],
        sel: Selection,
        recovery: float | None,
    ) -> Answer:
        headers = [("content-type", "application/json")]
        if recovery:
            headers.append(("retry-after", str(math.ceil(recovery))))
        body = apis.error_body(api, status, self.scrub.text(msg))
        return Answer(status, headers, body, None, attempts, sel)

    def _end(
        self,
        att: Attempt,
        outcome: Outcome,
        error: str | None,
        failure: Failure | None = None,
        retry_after: float | None = None,
        ended: float | None = None,
    ) -> None:
        """An attempt really ended: feed health, latency and the mix, then write its line."""
        if error is not None:  # may quote a provider: no key, no control characters, short
            error = printable(cap(self.scrub.text(error), 300))
        att.end(outcome, error, ended)
        now = time.monotonic()
        failure = failure if failure is not None else failure_of(outcome, att.status)
        att.cooldown = self.state.record(
            att.key,
            now,
            failure,
            retry_after=retry_after,
            probe=att.probe,
            judged=outcome is not Outcome.CLIENT_CLOSED,
            started=att.t0,
        )
        if failure is not Failure.NONE and att.ttft is None:
            self.latency.record_failure(att.key, att.model, att.ctx.stream, time.time())
        elif outcome is Outcome.OK and not att.ctx.stream:
            self.latency.record_ok(
                att.key,
                att.model,
                False,
                time.time(),
                total_ms=att.total_ms,
                output_tokens=att.usage.output_tokens,
            )
        if att.usage != Usage():
            self.mixes.setdefault(att.ctx.profile, pricing.Mix()).add(att.usage)
        if att.final and outcome is Outcome.OK and att.ctx.history is not None:
            self.planner.remember(att.ctx.history, att.usage)
        if att.usage.input_tokens is not None or att.usage.output_tokens is not None:
            att.cost = pricing.cost(pricing.price_of(att.model, *att.price_ref), att.usage)
        limiting.book(self.limits, att)  # the user's reservation; settled by the final attempt
        if att.final:  # route() writes a failed attempt's line (see `held`)
            self._write_line(att)

    def _write_line(self, att: Attempt) -> None:
        self.write(att.record())
        c, decision = att.ctx, ""
        # A first attempt that simply succeeded is the common case: its line is a debug line
        # (each info line costs ~0.3 ms in mitmproxy's log dispatch). Anything that failed
        # over, skipped a provider or failed stays at info.
        # The API filter's skips are the config's, on every request: they are not news.
        news = any(s["reason"] not in crossapi.REASONS for s in c.skipped)
        plain = att.n == 1 and att.outcome is Outcome.OK and not news
        level = logging.DEBUG if plain else logging.INFO
        if not logger.isEnabledFor(level):
            return
        if not c.logged:  # one line, not two: the decision rides on the first attempt's line
            c.logged = True
            where = f"{c.profile}/{c.route}" if c.route else c.profile
            decision = f"{where}/{c.strategy} -> {', '.join(c.candidates)} ({c.reason}) | "
        logger.log(level, printable(f"router: {c.request_id[:8]} {decision}{att.line()}"))
