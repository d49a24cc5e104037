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
from collections.abc import Callable
from typing import Any

import aiohttp

from llmrouter.config import Profile, Provider, RouterConfig, key_of
from llmrouter.proxy.attempt import Attempt, Ctx
from llmrouter.proxy.exchange import Answer, Exchange, Request
from llmrouter.routing import pricing
from llmrouter.routing.strategies import Candidate, Selection, Selector
from llmrouter.state.health import HealthBook, HealthSettings
from llmrouter.state.latency import LatencyBook
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
    ) -> None:
        self.session = session
        self.write = write
        self.health = HealthBook()
        self.latency = LatencyBook()
        self.selector = selector or Selector()
        self.mixes: dict[str, pricing.Mix] = {}
        self._key_hashes: dict[str, str | None] = {}
        self.scrub = Scrubber(())
        self.exchange = Exchange(session, self.health, self.latency, self._end)

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
        self._key_hashes = keys
        self.health.retain(keys)
        self.latency.retain(keys)
        self.scrub = Scrubber(k for p in cfg.providers.values() if (k := key_of(p)) is not None)
        self.exchange.scrub = self.scrub

    # -- selection ---------------------------------------------------------------------------

    def _candidates(
        self, cfg: RouterConfig, pname: str, profile: Profile, names: list[str], req: Request
    ) -> list[Candidate]:
        now, wall = time.monotonic(), time.time()
        strategy = profile.strategy
        shares = self.mixes.setdefault(pname, pricing.Mix()).shares()
        out = []
        for n in names:
            p = cfg.providers[n]
            key = provider_key(n, p)
            c = Candidate(
                n, self.health.available(key, now), p.enabled, profile.weights.get(n, p.weight)
            )
            if strategy == "least-latency":
                s = self.latency.get(key, self._model(p, req), req.stream)
                if s is not None:
                    warm = s.warm(wall, profile.min_samples)
                    c = Candidate(n, c.healthy, p.enabled, c.weight, s.p50, warm, s.count)
            elif strategy == "least-cost":
                price = pricing.price_of(self._model(p, req), p.price, p.base_url)
                if price is not None:
                    blend = pricing.blended(price, *shares)
                    c = Candidate(n, c.healthy, p.enabled, c.weight, price=blend)
            out.append(c)
        return out

    @staticmethod
    def _model(p: Provider, req: Request) -> str | None:
        """The model `p` would be sent, capped like the attempt's: the books' key."""
        return model_name(apis.map_model(p.models, req.model))

    # -- the attempt loop --------------------------------------------------------------------

    async def route(self, cfg: RouterConfig, pname: str, req: Request) -> Answer:
        profile = cfg.profiles[pname]
        started = time.monotonic()
        deadline = started + cfg.deadline(profile)
        ctx = Ctx(req.id, pname, profile.strategy, req.api, model_name(req.model), req.stream,
                  deadline)  # fmt: skip
        names = [n for n in profile.providers if cfg.providers[n].api == req.api]
        cands = self._candidates(cfg, pname, profile, names, req)
        sel = self.selector.select(profile.strategy, pname, cands, stream=req.stream,
                                   explore=profile.explore, min_samples=profile.min_samples,
                                   unknown_price=profile.unknown_price)  # fmt: skip
        ctx.candidates, ctx.reason = list(sel.order), sel.reason
        if not sel.order:
            msg = f"profile {pname!r} has no enabled {req.api} provider to try ({sel.reason})"
            return self._synthetic(req.api, 502, msg, [], sel, None)

        now = time.monotonic()
        keys = {n: provider_key(n, cfg.providers[n]) for n in sel.order}
        plan = [n for n in sel.order if self.health.available(keys[n], now)]
        forced = not plan
        if forced:  # never refuse without trying: the one that recovers first
            plan = [min(sel.order, key=lambda n: self.health.until(keys[n]))]
        for n in sel.order:
            if n not in plan:
                ctx.skipped.append({"provider": n, "reason": self._skip_reason(keys[n], now)})

        attempts: list[Attempt] = []
        last_http: Answer | None = None
        # A failed attempt's line is written once the next one starts or the loop ends, so that
        # it lists the candidates skipped after it (cooled or probed meanwhile by other flows).
        held: Attempt | None = None
        try:
            for name in plan:
                if time.monotonic() >= ctx.deadline_at:
                    break
                prov = cfg.providers[name]
                probe = self.health.acquire(keys[name], time.monotonic(), force=forced)
                if probe is None:
                    reason = self._skip_reason(keys[name], time.monotonic())
                    ctx.skipped.append({"provider": name, "reason": reason})
                    continue
                if held is not None:
                    self._write_line(held)
                att = held = Attempt(ctx, len(attempts) + 1, name, keys[name], probe)
                attempts.append(att)
                answer, retry = await self.exchange.run(cfg.timeouts(profile, prov), prov, req, att)
                if not retry and answer is not None:
                    held = None  # a final attempt writes its own line when it really ends
                    answer.attempts, answer.selection, answer.served_by = attempts, sel, att
                    return answer
                if answer is not None:
                    last_http = answer
        finally:
            if held is not None and held.outcome is not None:
                self._write_line(held)

        recovery = self.health.earliest_recovery(keys.values(), time.monotonic())
        deadline_hit = time.monotonic() >= ctx.deadline_at
        if last_http is not None and not deadline_hit:
            last_http.attempts, last_http.selection = attempts, sel
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
        msg = f"router: {why} for profile {pname!r}: {chain}"
        return self._synthetic(req.api, 504 if timed_out else 502, msg, attempts, sel, recovery)

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
        att.cooldown = self.health.record(
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
        if att.usage.input_tokens is not None or att.usage.output_tokens is not None:
            att.cost = pricing.cost(pricing.price_of(att.model, *att.price_ref), att.usage)
        if att.final:  # route() writes a failed attempt's line (see `held`)
            self._write_line(att)

    def _write_line(self, att: Attempt) -> None:
        self.write(att.record())
        c, decision = att.ctx, ""
        # A first attempt that simply succeeded is the common case: its line is a debug line
        # (each info line costs ~0.3 ms in mitmproxy's log dispatch). Anything that failed
        # over, skipped a provider or failed stays at info.
        plain = att.n == 1 and att.outcome is Outcome.OK and not c.skipped
        level = logging.DEBUG if plain else logging.INFO
        if not logger.isEnabledFor(level):
            return
        if not c.logged:  # one line, not two: the decision rides on the first attempt's line
            c.logged = True
            decision = f"{c.profile}/{c.strategy} -> {', '.join(c.candidates)} ({c.reason}) | "
        logger.log(level, printable(f"router: {c.request_id[:8]} {decision}{att.line()}"))
