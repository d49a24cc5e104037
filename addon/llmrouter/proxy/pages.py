"""The router's own pages, answered by the proxy itself at the reserved host `llmrouter.invalid`
(like mitmproxy's mitm.it: no DNS, no port; http and https):

- `/status`: the providers' and profiles' state as JSON (what `router.status` shows);
- `/healthz`: 200 while every profile has a usable provider, else 503 with the reason;
- `/metrics`: Prometheus text (`proxy.metrics`).

The same pages answer plain requests to the proxy's own address (a load balancer's health
check, a scraper without proxy settings).

`Status` is a plain snapshot of the router; `status_of` builds it from the config and the
engine, `Pages.serve` turns a method, a path and a snapshot into (status, headers, body), and
`answer` is the thin glue for the addon's request hook.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from llmrouter.proxy import upstream
from llmrouter.proxy.dispatch import Engine, provider_key
from llmrouter.proxy.limiting import UserStatus, users_status
from llmrouter.proxy.metrics import CONTENT_TYPE, Metrics

if TYPE_CHECKING:
    from mitmproxy import http

    from llmrouter.config import RouterConfig

HOST = "llmrouter.invalid"
# mitmproxy `allow_hosts` entry: the router must TLS-intercept its own host to answer https.
ALLOW_PATTERN = r"^llmrouter\.invalid:\d+$"
USABLE = frozenset(("healthy", "probing"))  # probing: the cooldown is over, a probe is out
_JSON = "application/json"


@dataclass(frozen=True, slots=True)
class ProviderStatus:
    name: str
    api: str
    enabled: bool
    state: str  # healthy | cooling | probing | disabled
    cooldown_s: float  # left of the cooldown, 0 when none
    last_error: str | None  # failure class of the last failure: server, rate_limit, auth
    attempts_5m: int
    failures_5m: int
    latency: dict[str, dict[str, float | int | None]] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class ProfileStatus:
    name: str
    strategy: str
    hosts: list[str]
    providers: list[str]


@dataclass(frozen=True, slots=True)
class Status:
    providers: list[ProviderStatus]
    profiles: list[ProfileStatus]
    streams_in_flight: int = 0
    upstream_connections: int = 0
    config: str | None = None
    users: list[UserStatus] = field(default_factory=list)  # access: spend and limits left


def status_of(
    cfg: RouterConfig, engine: Engine, *, pending: int = 0, config: str | None = None,
    now: float | None = None,
) -> Status:  # fmt: skip
    """A snapshot of the running router (health, recent traffic, latency estimates)."""
    now = time.monotonic() if now is None else now
    providers = []
    for name, prov in cfg.providers.items():
        key = provider_key(name, prov)
        h = engine.health.get(key)
        attempts, failures = h.recent(now)
        # p50_ms is measured (successes only); failure penalties rank least-latency apart.
        latency = {
            k: {"p50_ms": _round(f.measured_p50), "samples": f.measured,
                "failure_penalties": f.penalties, "ranked_p50_ms": _round(f.ranked_p50)}
            for k, f in engine.latency.summary(key).items()
        }  # fmt: skip
        providers.append(ProviderStatus(
            name, prov.api, prov.enabled, h.state(now).value if prov.enabled else "disabled",
            round(max(0.0, h.until - now), 1), h.last_error, attempts, failures, latency,
        ))  # fmt: skip
    profiles = [ProfileStatus(n, p.strategy, list(p.hosts), list(p.providers))
                for n, p in cfg.profiles.items()]  # fmt: skip
    users = users_status(cfg, engine.limits.ledger, time.time())
    return Status(providers, profiles, pending, upstream.in_use(engine.session), config, users)


def _round(v: float | None) -> float | None:
    return None if v is None else round(v, 1)


def health(status: Status | None) -> tuple[bool, dict[str, Any]]:
    """(healthy, detail): healthy while every profile has at least one usable provider."""
    if status is None:
        return False, {"ok": False, "reason": "router not running (no config or engine yet)"}
    by_name = {p.name: p for p in status.providers}
    profiles: dict[str, Any] = {}
    reasons = []
    for prof in status.profiles:
        usable = [n for n in prof.providers if n in by_name and by_name[n].state in USABLE]
        profiles[prof.name] = {"ok": bool(usable), "usable": usable}
        if not usable:
            why = ", ".join(_why(by_name[n]) if n in by_name else f"{n} unknown"
                            for n in prof.providers)  # fmt: skip
            reasons.append(f"profile {prof.name}: no usable provider ({why})")
    detail: dict[str, Any] = {"ok": not reasons, "profiles": profiles}
    if reasons:
        detail["reason"] = "; ".join(reasons)
    return not reasons, detail


def _why(p: ProviderStatus) -> str:
    if p.state == "cooling":
        cause = f" after {p.last_error} errors" if p.last_error else ""
        return f"{p.name} cooling {p.cooldown_s:.0f}s more{cause}"
    return f"{p.name} {p.state}"


@dataclass(frozen=True, slots=True)
class Page:
    status: int
    headers: list[tuple[str, str]]
    body: bytes


def _page(status: int, body: bytes, content_type: str) -> Page:
    return Page(status, [("content-type", content_type), ("cache-control", "no-store")], body)


def _json(status: int, obj: Any) -> Page:
    return _page(status, json.dumps(obj, indent=2).encode() + b"\n", _JSON)


_INDEX = (
    "llmrouter\n\n"
    "/status   the providers' and profiles' state (JSON)\n"
    "/healthz  200 while every profile has a usable provider, else 503 with the reason\n"
    "/metrics  Prometheus text format\n"
)


class Pages:
    def __init__(self, metrics: Metrics) -> None:
        self.metrics = metrics

    def serve(self, method: str, path: str, status: Status | None) -> Page:
        route = path.split("?", 1)[0].rstrip("/") or "/"
        if method not in ("GET", "HEAD"):
            page = _json(405, {"error": f"{method} not allowed: the router's pages are read-only"})
            return Page(page.status, [*page.headers, ("allow", "GET, HEAD")], page.body)
        if route == "/":
            page = _page(200, _INDEX.encode(), "text/plain; charset=utf-8")
        elif route == "/healthz":
            ok, detail = health(status)
            page = _json(200 if ok else 503, detail)
        elif route == "/status":
            if status is None:
                page = _json(503, {"error": "router not running (no config or engine yet)"})
            else:
                page = _json(200, asdict(status) | {"healthy": health(status)[0]})
        elif route == "/metrics":
            if status is not None:
                self.metrics.streams.set(status.streams_in_flight)
                self.metrics.set_providers((p.name, p.state, p.cooldown_s)
                                           for p in status.providers)  # fmt: skip
            page = _page(200, self.metrics.render(), CONTENT_TYPE)
        else:
            page = _json(404, {"error": f"no page {route}", "pages": _PATHS})
        return page  # for HEAD, mitmproxy sends the headers only


_PATHS = ["/status", "/healthz", "/metrics"]


def is_pages_host(host: str) -> bool:
    return host.lower().rstrip(".") == HOST


def allow_hosts_with_pages(patterns: list[str]) -> list[str]:
    """`allow_hosts` patterns plus the router's own host (for https to reach the pages)."""
    return patterns if ALLOW_PATTERN in patterns else [*patterns, ALLOW_PATTERN]


_LOOPBACK = frozenset(("localhost", "127.0.0.1", "::1"))


def addressed_to_proxy(flow: http.HTTPFlow) -> bool:
    """A plain request to the proxy's own address, as a load balancer or a scraper sends it
    (`GET http://10.0.0.5:8080/healthz`, no proxy): mitmproxy refuses those as a loop to itself
    (502 "Request destination unknown"), so answering them takes nothing from anyone."""
    from mitmproxy.proxy.mode_specs import RegularMode

    client = flow.client_conn
    if not isinstance(client.proxy_mode, RegularMode) or not client.sockname:
        return False
    host, port = client.sockname[:2]
    return flow.request.port == port and flow.request.host.lower() in _LOOPBACK | {host}


def answer(flow: http.HTTPFlow, pages: Pages, status: Callable[[], Status | None]) -> bool:
    """Answer a request for the router's own host (or the proxy's own address); False when the
    flow is not for it."""
    from mitmproxy import http

    if flow.response is not None:
        return False
    if not is_pages_host(flow.request.pretty_host) and not addressed_to_proxy(flow):
        return False
    page = pages.serve(flow.request.method, flow.request.path, status())
    headers = http.Headers([(k.encode(), v.encode()) for k, v in page.headers])
    flow.response = http.Response.make(page.status, page.body, headers)
    return True
