"""Scenario routes: which route of its profile a request takes, and the policy that follows.

Order (the first that matches wins; a profile uses only the routes it defines):
  0. an explicit `X-Router-Route: NAME` header (an unknown name is an error, never ignored);
  1. custom routes with `match:`, in file order;
  2. the built-ins: long_context, subagent, background, web_search, image, think.
No match: the profile itself. long_context comes first among the built-ins so that a huge
request never lands on a small-context route.

Pure: `Signals` and an `Estimate` in, a `Decision` out; no I/O, no mitmproxy imports.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from fnmatch import fnmatchcase
from typing import Any

from llmrouter.routing.estimate import Estimate, kilo
from llmrouter.routing.signals import Signals
from llmrouter.schema import BUILTIN_ROUTES, DEFAULT_TIMEOUTS, Profile, Provider, Route

ROUTE_HEADER = "x-router-route"
_IMAGE_TYPES = frozenset(("image", "document", "image_url", "input_image", "file", "input_file"))


@dataclass(frozen=True, slots=True)
class Decision:
    """The route a request takes. `route` None: the profile's own pool."""

    route: str | None
    reason: str | None  # for the JSONL `route_reason`, the flow comment, explain
    error: str | None = None  # an unknown X-Router-Route: answer it in the API's error format


def detect(
    profile: Profile,
    sig: Signals,
    estimate: Estimate | Callable[[], Estimate],
    explicit: str | None = None,
) -> Decision:
    """Route of one request. `explicit` is the X-Router-Route header, already removed from the
    headers that go upstream. `estimate` may be a callable, asked only when a route needs it."""
    routes = profile.routes
    if explicit is not None:
        name = explicit.strip()
        if name in routes:
            return Decision(name, f"{name}: header x-router-route")
        known = ", ".join(routes) or "none"
        return Decision(
            None,
            None,
            f"unknown route {name!r} (from the X-Router-Route header); this profile's routes: "
            f"{known}",
        )
    if not routes:
        return Decision(None, None)
    est = _Lazy(estimate)
    for name, route in routes.items():
        if route.match is not None:
            why = _custom(route, sig, est)
            if why is not None:
                return Decision(name, f"{name}: {why}")
    for name in BUILTIN_ROUTES:
        if name in routes:
            why = _BUILTIN[name](profile, sig, est)
            if why is not None:
                return Decision(name, f"{name}: {why}")
    return Decision(None, "profile: no route matched")


class _Lazy:
    """The estimate, computed at most once and only if a route asks for it."""

    __slots__ = ("_get", "_value")

    def __init__(self, source: Estimate | Callable[[], Estimate]) -> None:
        self._value = source if isinstance(source, Estimate) else None
        self._get = source

    def __call__(self) -> Estimate:
        if self._value is None:
            self._value = self._get()  # type: ignore[operator]
        return self._value


# -- custom routes ------------------------------------------------------------------------------


def _custom(route: Route, sig: Signals, est: _Lazy) -> str | None:
    m = route.match
    assert m is not None
    parts: list[str] = []
    if m.model is not None:
        model = sig.model
        glob = next((g for g in m.model if model is not None and fnmatchcase(model, g)), None)
        if glob is None:
            return None
        parts.append(f"model {model} ~ {glob}")
    if m.header is not None:
        for name, pattern in m.header.items():
            value = sig.headers.get(name)
            if value is None or not _search(pattern, value):
                return None
            parts.append(f"header {name} ~ {pattern}")
    if m.path is not None:
        if not fnmatchcase(sig.path, m.path):
            return None
        parts.append(f"path {sig.path} ~ {m.path}")
    if m.min_tokens is not None:
        e = est()
        if e.tokens < m.min_tokens:
            return None
        parts.append(f"est {kilo(e.tokens)} >= {kilo(m.min_tokens)} ({e.source})")
    return "match " + ", ".join(parts)


_REGEX_CACHE: dict[str, re.Pattern[str]] = {}  # patterns come from the config: bounded


def _search(pattern: str, value: str) -> bool:
    rx = _REGEX_CACHE.get(pattern)
    if rx is None:
        rx = _REGEX_CACHE[pattern] = re.compile(pattern)
    return rx.search(value) is not None


# -- built-in routes ----------------------------------------------------------------------------


def _long_context(profile: Profile, sig: Signals, est: _Lazy) -> str | None:
    e = est()
    limit = profile.long_context_threshold
    if e.tokens > limit:
        return f"est {kilo(e.tokens)} > {kilo(limit)} ({e.source})"
    return None


def _subagent(profile: Profile, sig: Signals, est: _Lazy) -> str | None:
    h = sig.headers
    if h.get("x-claude-code-agent-id"):
        return "header x-claude-code-agent-id"
    rc = sig.request_class
    if rc in ("subagent", "workflow"):
        return f"header x-claude-code-request-class={rc}"
    attribution = sig.attribution
    if attribution is not None and "cc_is_subagent=true" in attribution:
        return "cc_is_subagent=true in system[0]"
    sub = sig.codex_subagent
    if sub is not None and sub != "compact" and not sig.codex_background:
        return f"header x-openai-subagent={sub}"
    if h.get("x-codex-parent-thread-id"):
        return "header x-codex-parent-thread-id"
    return None


def _background(profile: Profile, sig: Signals, est: _Lazy) -> str | None:
    if sig.request_class == "auxiliary":
        return "header x-claude-code-request-class=auxiliary"
    if sig.codex_background:
        return f"header x-openai-subagent={sig.codex_subagent}"
    model = sig.model
    if model is not None:
        for glob in profile.background_models:
            if fnmatchcase(model, glob):
                return f"model {model} ~ {glob}"
    return None


def _web_search(profile: Profile, sig: Signals, est: _Lazy) -> str | None:
    tools = sig.payload.get("tools")
    if isinstance(tools, list):
        for t in tools:
            kind = t.get("type") if isinstance(t, dict) else None
            if isinstance(kind, str) and kind.startswith("web_search"):
                return f"tool {kind}"
    if "web_search_options" in sig.payload:  # chat completions' search models
        return "web_search_options"
    return None


def _image(profile: Profile, sig: Signals, est: _Lazy) -> str | None:
    kind = image_in_last_user_turn(sig.messages)
    return None if kind is None else f"{kind} block in the last user turn"


def _think(profile: Profile, sig: Signals, est: _Lazy) -> str | None:
    p = sig.payload
    thinking = p.get("thinking")
    if isinstance(thinking, dict) and thinking.get("type") == "enabled":
        budget = thinking.get("budget_tokens")
        if isinstance(budget, int) and budget >= profile.think_min_budget:
            return f"thinking enabled, budget {budget} >= {profile.think_min_budget}"
    effort = p.get("reasoning_effort")
    where = "reasoning_effort"
    if effort is None and isinstance(p.get("reasoning"), dict):
        effort, where = p["reasoning"].get("effort"), "reasoning.effort"
    if isinstance(effort, str) and effort in profile.think_efforts:
        return f"{where}={effort}"
    return None


_BUILTIN: dict[str, Callable[[Profile, Signals, _Lazy], str | None]] = {
    "long_context": _long_context,
    "subagent": _subagent,
    "background": _background,
    "web_search": _web_search,
    "image": _image,
    "think": _think,
}
assert tuple(_BUILTIN) == BUILTIN_ROUTES


# -- images -------------------------------------------------------------------------------------


def image_in_last_user_turn(messages: list[Any]) -> str | None:
    """The type of the first image or document block of the last user turn (tool results
    included), or None. Earlier turns do not count: an image three turns back must not pin the
    rest of the conversation to the image route. `system` messages in between are skipped."""
    for msg in reversed(messages):
        if isinstance(msg, dict) and msg.get("role") == "user":
            return _image_in(msg.get("content"))
        # Responses API: function_call_output items are the tool results of the user turn.
        if isinstance(msg, dict) and msg.get("type") == "function_call_output":
            found = _image_in(msg.get("output"))
            if found:
                return found
    return None


def has_image(sig: Signals) -> bool:
    """An image or document anywhere in the conversation: for the `vision: false` filter, since
    a text-only provider cannot read the history either. A walk over the content blocks (no
    string is scanned): ask it only when a candidate has `vision: false`."""
    if sig.has_media is None:
        sig.has_media = any(
            isinstance(m, dict) and _image_in(m.get("content", m.get("output")))
            for m in sig.messages
        )
    return sig.has_media


def _image_in(content: Any) -> str | None:
    if not isinstance(content, list):
        return None
    for block in content:
        if not isinstance(block, dict):
            continue
        kind = block.get("type")
        if kind in _IMAGE_TYPES:
            return kind  # type: ignore[return-value]
        if kind == "tool_result":
            found = _image_in(block.get("content"))
            if found:
                return found
    return None


# -- the effective policy -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Policy:
    """What a request's route means for selection and attempts: the route's value where it set
    one, else the profile's. Never a built-in default where the profile set a value."""

    route: str | None
    providers: tuple[str, ...]
    strategy: str
    weights: Mapping[str, float]
    timeouts: Mapping[str, float]  # only the timeouts the route sets; see `timeouts_for`
    deadline: float | None  # None: the profile's, via RouterConfig.deadline
    model: str | None
    models: Mapping[str, str] | None
    fallback: bool
    affinity: bool
    affinity_ttl: float | None
    translate: bool

    def counter(self, profile: str) -> str:
        """The round-robin counter this policy turns: one per profile, one per route."""
        return profile if self.route is None else f"{profile}/{self.route}"

    def model_for(self, provider: Provider, requested: str | None) -> str | None:
        """The model really sent: route `model` / `models` > provider `models` > requested."""
        if self.model is not None:
            return self.model
        if self.models is not None and requested is not None:
            for glob, target in self.models.items():
                if fnmatchcase(requested, glob):
                    return target
        if requested is None:
            return None
        for glob, target in provider.models.items():
            if fnmatchcase(requested, glob):
                return target
        return requested

    def timeouts_for(self, resolved: Mapping[str, float]) -> dict[str, float]:
        """`resolved` is RouterConfig.timeouts(profile, provider); the route's own win.

        A route is a statement about this kind of request (long prompts start slowly), so
        its explicit timeouts beat the provider's and the profile's.
        """
        return {**resolved, **self.timeouts}


def policy_for(profile: Profile, route: str | None) -> Policy:
    """The effective policy of `route` in `profile` (None: the profile itself)."""
    r = profile.routes.get(route) if route is not None else None
    if r is None:
        return Policy(
            None,
            tuple(profile.providers),
            profile.strategy,
            profile.weights,
            {},
            None,
            None,
            None,
            False,  # the profile is the last resort: nothing to fall back to
            profile.affinity,
            profile.affinity_ttl,
            profile.translate,
        )
    timeouts = {k: v for k in DEFAULT_TIMEOUTS if (v := getattr(r, k)) is not None}
    return Policy(
        route,
        tuple(r.providers) if r.providers is not None else tuple(profile.providers),
        r.strategy if r.strategy is not None else profile.strategy,
        r.weights if r.weights is not None else profile.weights,
        timeouts,
        r.deadline if r.deadline is not None else profile.deadline,
        r.model,
        r.models,
        r.fallback,
        r.affinity if r.affinity is not None else profile.affinity,
        r.affinity_ttl if r.affinity_ttl is not None else profile.affinity_ttl,
        r.translate if r.translate is not None else profile.translate,
    )


def fallback_order(policy: Policy, profile: Profile) -> tuple[str, ...]:
    """Profile candidates tried after every candidate of the route failed (`fallback: true`),
    minus those the route already tried. Empty when there is no fallback."""
    if policy.route is None or not policy.fallback:
        return ()
    tried = set(policy.providers)
    return tuple(n for n in profile.providers if n not in tried)
