"""A request's plan: its route, the policy that follows, the candidates that can serve it, their
order, and its conversation's binding.

The engine asks this module and runs the plan. The decisions are made by the pure modules
under `routing/` (signals, routes, estimate, capabilities, conversation, affinity, strategies);
this module puts their answers together and keeps the state they need across requests: the
conversation bindings and the usage history of the long-context estimate. No mitmproxy
imports, no I/O.

Nothing here keeps the parsed body after `plan` returns: a Plan rides on the Answer, which
mitmweb keeps as long as it shows the flow.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from llmrouter.config import Profile, Provider, RouterConfig
from llmrouter.proxy.exchange import Request
from llmrouter.routing import pricing
from llmrouter.routing.affinity import BindingBook, Lookup, Pin, State, pin
from llmrouter.routing.capabilities import capable, unservable
from llmrouter.routing.conversation import Conversation, conversation_of
from llmrouter.routing.crossapi import REASONS, api_filter
from llmrouter.routing.estimate import Estimate, Reported, UsageBook, estimate, thread_key
from llmrouter.routing.routes import Decision, Policy, detect, fallback_order, has_image, policy_for
from llmrouter.routing.signals import Signals
from llmrouter.routing.strategies import Candidate, Selection, Selector
from llmrouter.state.health import HealthBook
from llmrouter.wire import apis
from llmrouter.wire.scrub import model_name

if TYPE_CHECKING:
    from llmrouter.state.backends import BindingsLike, LatencyLike

KeyFn = Callable[[str, Provider], str]  # dispatch.provider_key: the health/latency book key
History = tuple[str, int, int]  # usage thread key, body bytes, messages


@dataclass(slots=True)
class Leg:
    """One pool of candidates tried in order: the route's own, or the profile's after it."""

    policy: Policy
    selection: Selection  # the strategy's order, with the bound provider moved first
    pin: Pin | None  # None: affinity off, or no conversation to key on (or not pinned yet)
    fallback: bool = False  # the profile's pool, tried after every candidate of the route
    # (key, ttl, ready candidates): the binding to look up once the state has read it
    want: tuple[str, float, frozenset[str]] | None = None

    @property
    def order(self) -> tuple[str, ...]:
        return self.selection.order

    def affinity(self, provider: str) -> State | None:
        return None if self.pin is None else self.pin.state(provider)

    def success(self, provider: str, now: float) -> None:
        """A 2xx answer or a committed stream: the only thing that (re)binds."""
        if self.pin is not None:
            self.pin.success(provider, now)


@dataclass(slots=True)
class Plan:
    """What the router decided for one request, before any attempt; shown by router.explain."""

    profile: str
    decision: Decision
    policy: Policy  # the route's (or the profile's) effective policy
    has_routes: bool
    conversation: Conversation | None
    history: History | None  # where this request's reported usage is kept
    now: float  # time.monotonic() of the plan: the bindings' clock
    estimate: Estimate | None = None  # None: no route or context window needed it
    skipped: list[dict[str, str]] = field(default_factory=list)  # capability filters
    leg: Leg | None = None  # the first pool to try; None: refused
    refusal: tuple[int, str, str] | None = None  # status, message, error code
    fallback_leg: Leg | None = None  # made on demand, once the route's pool failed
    fallback_tried: bool = False
    wants: tuple[str, ...] = ()  # binding keys the state reads before `Planner.pin`

    @property
    def route_label(self) -> str | None:
        """x-router-route: the route, `profile` when none matched; None for a profile with no
        routes (nothing to tell)."""
        if self.decision.route is not None:
            return self.decision.route
        return "profile" if self.has_routes else None

    @property
    def lookup(self) -> Lookup | None:
        """The first pool's binding as the request found it."""
        return self.leg.pin.lookup if self.leg is not None and self.leg.pin else None


class _Once:
    """The estimate, computed at most once, only when a route or a context window asks."""

    __slots__ = ("_get", "value")

    def __init__(self, get: Callable[[], Estimate]) -> None:
        self._get = get
        self.value: Estimate | None = None

    def __call__(self) -> Estimate:
        if self.value is None:
            self.value = self._get()
        return self.value


class Planner:
    """Turns (config, profile, request) into a Plan. Owns the bindings and the usage history;
    reads the engine's health, latency and token mixes, and turns its selector."""

    def __init__(
        self,
        health: HealthBook,
        latency: LatencyLike,
        selector: Selector,
        mixes: dict[str, pricing.Mix],
        key: KeyFn,
        bindings: BindingsLike | None = None,
    ) -> None:
        self.health = health
        self.latency = latency
        self.selector = selector
        self.mixes = mixes
        self.key = key
        # The state backend's: a local BindingBook, or its mirror of the shared bindings.
        self.bindings: BindingsLike = bindings if bindings is not None else BindingBook()
        self.usage = UsageBook()
        self._keys: dict[str, str] = {}

    def apply_config(self, cfg: RouterConfig) -> None:
        """Bindings to a provider that left the config or moved (new base_url) are dropped: the
        cache they point at is not there."""
        keys = {n: self.key(n, p) for n, p in cfg.providers.items()}
        gone = [n for n, k in self._keys.items() if keys.get(n) != k]
        if gone:
            self.bindings.drop_providers(gone)
        self._keys = keys

    # -- the plan -----------------------------------------------------------------------------

    def plan(self, cfg: RouterConfig, pname: str, req: Request, now: float) -> Plan:
        """The whole plan, its binding looked up in `self.bindings` as it stands."""
        return self.pin(self.draft(cfg, pname, req, now))

    def draft(self, cfg: RouterConfig, pname: str, req: Request, now: float) -> Plan:
        """The plan before its binding: `wants` names the keys to read (a shared state reads
        them in the request's one round trip, with its reservation), then `pin`."""
        profile = cfg.profiles[pname]
        # The body is parsed only if a fact needs it (see Signals): not for a Claude Code
        # request of a profile without routes or context windows.
        sig = Signals.of(req.path, req.headers, lambda: req.payload, req.body, req.api, req.model)
        conv = conversation_of(sig, pname)
        # The usage history only serves the token estimate: kept where one is ever made.
        estimating = conv is not None and _estimates(cfg, profile)
        thread = thread_key(conv.base, sig) if conv is not None and estimating else None
        est = _Once(lambda: estimate(sig, self.usage.get(thread) if thread else None))
        decision = detect(profile, sig, est, explicit=req.route_header)
        policy = policy_for(profile, decision.route)
        history = (thread, len(req.body), len(sig.messages)) if thread is not None else None
        plan = Plan(pname, decision, policy, bool(profile.routes), conv, history, now)
        if decision.error is not None:
            plan.refusal = (400, f"router: {decision.error}", "unknown_route")
            return plan
        leg, why = self._leg(cfg, pname, profile, policy, req, sig, est, plan)
        if leg is None and policy.route is not None and policy.fallback:
            plan.fallback_tried = True
            leg, _ = self._fallback(cfg, pname, profile, req, sig, est, plan)
            if leg is not None:
                leg.selection = leg.selection._replace(
                    reason=f"route {policy.route}: {why}; the profile's pool: "
                    f"{leg.selection.reason}"
                )
        plan.leg, plan.estimate = leg, est.value
        plan.wants = _wants(plan, profile)
        if leg is None:
            if any(s["reason"] not in REASONS for s in plan.skipped):  # the request's doing
                plan.refusal = (400, f"router: {unservable(plan.skipped)}", "unservable")
            else:
                where = f"route {policy.route!r} of profile" if policy.route else "profile"
                plan.refusal = (502, f"{where} {pname!r} has no enabled provider to try for "
                                f"{req.api} {req.path.split('?', 1)[0]} ({why})",
                                "router_error")  # fmt: skip
        return plan

    def fallback(self, cfg: RouterConfig, pname: str, req: Request, plan: Plan) -> Leg | None:
        """The profile's own pool after the route's (`fallback: true`); made once, when the
        route's candidates have all failed or are all cooling."""
        if plan.fallback_tried:
            return plan.fallback_leg
        plan.fallback_tried = True
        if plan.policy.route is None or not plan.policy.fallback:
            return None
        sig = Signals.of(req.path, req.headers, lambda: req.payload, req.body, req.api, req.model)
        thread = plan.history[0] if plan.history is not None else None
        known = plan.estimate
        est = _Once(lambda: known or estimate(sig, self.usage.get(thread) if thread else None))
        profile = cfg.profiles[pname]
        plan.fallback_leg, _ = self._fallback(cfg, pname, profile, req, sig, est, plan)
        plan.estimate = plan.estimate or est.value
        if plan.fallback_leg is not None:
            self._pin(plan.fallback_leg, plan)
        return plan.fallback_leg

    def pin(self, plan: Plan) -> Plan:
        """Look the first pool's binding up: the bound provider goes first."""
        if plan.leg is not None:
            self._pin(plan.leg, plan)
        return plan

    def _pin(self, leg: Leg, plan: Plan) -> None:
        conv = plan.conversation
        if leg.want is None or conv is None or leg.pin is not None:
            return
        key, ttl, ready = leg.want
        leg.pin = p = pin(self.bindings, key, plan.profile, ttl, plan.now,
                          compaction=conv.compaction)  # fmt: skip
        # Only a healthy, enabled candidate can go first: a binding never revives one.
        sel = leg.selection
        order = p.order(sel.order, ready)
        if order != sel.order:
            leg.selection = sel._replace(order=order, reason=f"{sel.reason}; bound to {order[0]}")

    def _fallback(
        self,
        cfg: RouterConfig,
        pname: str,
        profile: Profile,
        req: Request,
        sig: Signals,
        est: _Once,
        plan: Plan,
    ) -> tuple[Leg | None, str]:
        own = policy_for(profile, None)
        names = fallback_order(plan.policy, profile)
        leg, why = self._leg(cfg, pname, profile, own, req, sig, est, plan, names)
        if leg is not None:
            leg.fallback = True
        return leg, why

    def _leg(
        self,
        cfg: RouterConfig,
        pname: str,
        profile: Profile,
        policy: Policy,
        req: Request,
        sig: Signals,
        est: _Once,
        plan: Plan,
        names: tuple[str, ...] | None = None,
    ) -> tuple[Leg | None, str]:
        """The ordered pool of `policy` (or of `names`), or None and why there is none."""
        providers = cfg.providers
        # The other API's providers serve through translation, where it applies (crossapi).
        pool, off = api_filter(policy.providers if names is None else names, providers, req.api,
                               req.path, policy.translate)  # fmt: skip
        plan.skipped.extend(off)
        # The estimate is asked only when a candidate declares a window (it walks the blocks).
        windows = any(providers[n].context_window is not None for n in pool)
        kept, skipped = capable(pool, providers, tokens=est().tokens if windows else None,
                                image=lambda: has_image(sig))  # fmt: skip
        plan.skipped.extend(skipped)
        if not kept:
            if off and not skipped:
                return None, "; ".join(f"{s['provider']}: {s['detail']}" for s in off)
            return None, "no candidate can serve it" if skipped else "no provider"
        cands = self.candidates(cfg, pname, profile, policy, kept, req)
        conv = plan.conversation
        key = conv.key(policy.route) if conv is not None and policy.affinity else None
        sel = self.selector.select(policy.strategy, policy.counter(pname), cands,
                                   stream=req.stream, explore=profile.explore,
                                   min_samples=profile.min_samples,
                                   unknown_price=profile.unknown_price,
                                   conversation=key)  # fmt: skip
        if not sel.order:
            return None, sel.reason
        leg = Leg(policy, sel, None)
        if key is not None and conv is not None:
            ready = frozenset(c.name for c in cands if c.healthy and c.enabled)
            leg.want = (key, policy.affinity_ttl or conv.ttl, ready)
        return leg, sel.reason

    def candidates(
        self,
        cfg: RouterConfig,
        pname: str,
        profile: Profile,
        policy: Policy,
        names: list[str],
        req: Request,
    ) -> list[Candidate]:
        """Config + health, latency and price -> the strategy's Candidates. Latency and price
        are those of the model that will really be sent (route > provider models > requested)."""
        now, wall = time.monotonic(), time.time()
        strategy = policy.strategy
        shares = self.mixes.setdefault(pname, pricing.Mix()).shares()
        out = []
        for n in names:
            p = cfg.providers[n]
            key = self.key(n, p)
            weight = policy.weights.get(n, p.weight)
            c = Candidate(n, self.health.available(key, now), p.enabled, weight)
            if strategy == "least-latency":  # the books key models capped, like the attempt's
                s = self.latency.get(key, model_name(policy.model_for(p, req.model)), req.stream)
                if s is not None:
                    warm = s.warm(wall, profile.min_samples)
                    c = Candidate(n, c.healthy, p.enabled, weight, s.p50, warm, s.count)
            elif strategy == "least-cost":
                model = model_name(policy.model_for(p, req.model))
                price = pricing.price_of(model, p.price, p.base_url)
                if price is not None:
                    blend = pricing.blended(price, *shares)
                    c = Candidate(n, c.healthy, p.enabled, weight, price=blend)
            out.append(c)
        return out

    # -- after an attempt ----------------------------------------------------------------------

    def remember(self, history: History, usage: apis.Usage) -> None:
        """A conversation's reported input, for the next request's long-context estimate."""
        if usage.input_tokens is not None:
            thread, size, messages = history
            self.usage.put(thread, Reported(usage.input_tokens, size, messages))


def _wants(plan: Plan, profile: Profile) -> tuple[str, ...]:
    """The binding keys this request may look up: its first pool's, and the profile's pool's
    that a route may fall back to (read in the same round trip, so a fallback waits for none)."""
    conv, leg = plan.conversation, plan.leg
    if conv is None or leg is None:
        return ()
    keys = (leg.want[0],) if leg.want is not None else ()
    route, own = plan.policy, conv.key(None)
    if route.route is not None and route.fallback and not leg.fallback and own not in keys:
        keys += (own,) if policy_for(profile, None).affinity else ()
    return keys


def _estimates(cfg: RouterConfig, profile: Profile) -> bool:
    """Whether requests of `profile` ever need a token estimate: it has routes (long_context,
    min_tokens), or a provider it may use declares a context window."""
    if profile.routes:
        return True
    return any(cfg.providers[n].context_window is not None for n in profile.providers)
