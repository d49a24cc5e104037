"""How routing decisions are shown: x-router-* headers, the flow's comment and request as
mitmweb shows them, and the text of router.status and router.explain.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from llmrouter.config import RouterConfig
from llmrouter.proxy import translation, upstream
from llmrouter.proxy.dispatch import Answer, Engine, Request, provider_key
from llmrouter.proxy.limiting import UserStatus, users_status
from llmrouter.routing import crossapi
from llmrouter.state.backends import status_line
from llmrouter.state.latency import Figures
from llmrouter.state.limits import MICRO, format_duration, format_usd
from llmrouter.wire.scrub import printable

if TYPE_CHECKING:
    from mitmproxy import http

REDACTED = "[redacted: provider key]"
STATUS_MODELS = 5  # latency series shown per provider in router.status (the most recent)
Display = tuple[str, bytes, list[tuple[str, str]]]


def router_headers(profile: str, cfg: RouterConfig, answer: Answer) -> list[tuple[str, str]]:
    served = answer.served_by.provider if answer.served_by else "none"
    plan = answer.plan
    strategy = plan.policy.strategy if plan else cfg.profiles[profile].strategy
    headers = [
        ("x-router-profile", profile),
        ("x-router-strategy", strategy),
        ("x-router-provider", served),
        ("x-router-attempts", str(len(answer.attempts))),
    ]
    if plan is not None and plan.route_label is not None:
        headers.append(("x-router-route", plan.route_label))
    return headers


def failed_over(answer: Answer) -> bool:
    return len(answer.attempts) > 1 or answer.served_by is None


# mitmweb draws marks from its emoji table: ↪ is in common text fonts (DejaVu), where 🔄 needs
# an emoji font and shows as an empty box without one.
FAILOVER_MARK = ":arrow_right_hook:"


def comment(profile: str, answer: Answer, note: str | None) -> str:
    """`flaky 529 2ms → steady 200 725ms · demo/failover` (`· work/long_context/failover` on a
    route), then skips, what a route or binding did, and notes. The outcome leads: mitmweb cuts
    the comment column at its width."""
    plan = answer.plan
    chain = " → ".join(a.summary() for a in answer.attempts) or "no attempt"
    strategy = (answer.attempts[0].ctx.strategy if answer.attempts
                else plan.policy.strategy if plan else "?")  # fmt: skip
    route = plan.decision.route if plan is not None else None
    parts = [chain, f"{profile}/{route}/{strategy}" if route else f"{profile}/{strategy}"]
    skipped = answer.attempts[0].ctx.skipped if answer.attempts else []
    # The API filter's skips are the config's, the same on every request: explain lists them.
    skipped = [s for s in skipped if s["reason"] not in crossapi.REASONS]
    if skipped:
        parts.append("skipped " + ", ".join(f"{s['provider']}: {s['reason']}" for s in skipped))
    parts += _route_notes(answer)
    served = answer.served_by
    if served is not None and served.translated:
        parts.append(f"translated {served.ctx.api} → {served.api}")
    if note:
        parts.append(note)
    return printable(" · ".join(parts))


def _route_notes(answer: Answer) -> list[str]:
    """`fell back to the profile`, `bound 3f2a9c1b0e4d`: what a route or a binding did; nothing
    for a plain request of a profile without routes, or a conversation's first request."""
    plan, out = answer.plan, []
    if plan is None:
        return out
    if plan.refusal is not None:
        out.append(plan.refusal[1])
    if plan.decision.route is not None and any(a.fallback for a in answer.attempts):
        out.append("fell back to the profile")
    served = answer.served_by
    state = served.affinity if served else None
    if state is not None and state != "new" and plan.conversation is not None:
        out.append(f"{state} {plan.conversation!s}")
    return out


def display_request(cfg: RouterConfig, req: Request, answer: Answer) -> Display | None:
    """The request as the provider saw it, key redacted: mitmweb shows the real upstream."""
    att = answer.served_by or (answer.attempts[-1] if answer.attempts else None)
    if att is None or att.url is None:
        return None
    prov = cfg.providers[att.provider]
    # The headers as sent upstream, with the provider's Host: the client's would show the
    # original host in mitmweb's request line.
    sent = translation.keyed_headers(req.headers, req.api, prov, att.translated, REDACTED)
    return att.url, att.sent_body, [("host", urlsplit(att.url).netloc), *sent]


def show_request(request: http.Request, display: Display) -> None:
    from mitmproxy.http import Headers

    url, body, headers = display
    request.url = url
    request.headers = Headers(
        [(k.encode(), v.encode("utf-8", "surrogateescape")) for k, v in headers]
    )
    request.content = body


def explain(flow_id: str, profile: str, answer: Answer, note: str | None) -> str:
    lines = [f"flow {flow_id[:8]}  profile {profile}"]
    lines += _plan_lines(answer)
    if answer.attempts:
        c = answer.attempts[0].ctx
        # The reason names its strategy already (`failover: configured order`).
        reason = c.reason if c.reason.startswith(f"{c.strategy}:") else f"{c.strategy}: {c.reason}"
        lines.append(f"strategy   {reason}")
        lines.append(f"candidates {' > '.join(c.candidates)}")
        for s in c.skipped:
            detail = f" ({s['detail']})" if s.get("detail") else ""
            lines.append(f"skipped    {s['provider']}: {s['reason']}{detail}")
    if note:
        lines.append(f"note       {note}")
    for a in answer.attempts:
        u = a.usage
        lines.append(
            f"#{a.n} {a.provider:<12} {a.model or '-'}  {a.outcome or 'in progress'}"
            f"{' ' + str(a.status) if a.status else ''}"
            f"  ttfb {_ms(a.ms(a.ttfb))}  ttft {_ms(a.ms(a.ttft))}  total {_ms(a.total_ms)}"
        )
        if a.translated:
            lines.append(f"   translated: {a.ctx.api} request, {a.api} provider")
        if a.error:
            lines.append(f"   error {a.error}")
        if u.input_tokens is not None or u.output_tokens is not None:
            cost = f"${a.cost:.6f}" if a.cost is not None else "unpriced"
            lines.append(
                f"   tokens in {u.input_tokens} out {u.output_tokens} "
                f"cache read {u.cache_read_tokens} write {u.cache_write_tokens}  cost {cost}"
            )
        if a.cooldown:
            lines.append(f"   cooled the provider for {a.cooldown:.0f}s")
    if answer.served_by is None:
        lines.append(f"all failed: the client got HTTP {answer.status}")
    return "\n".join(printable(line) for line in lines)


def _ms(v: float | None) -> str:
    return "-" if v is None else f"{v:g}ms"


_AFTER = {"new": "bound to", "bound": "still bound to", "rebound": "rebound to",
          "expired": "bound again to"}  # fmt: skip


def _plan_lines(answer: Answer) -> list[str]:
    """Route decision, estimate, conversation and binding, as the request found them."""
    plan = answer.plan
    if plan is None:
        return []
    lines = []
    if plan.refusal is not None:
        lines.append(f"refused    HTTP {plan.refusal[0]}: {plan.refusal[1]}")
    if plan.has_routes or plan.decision.route is not None:
        fallback = "" if plan.decision.route is None else (
            "; fallback to the profile's pool" if plan.policy.fallback else "; no fallback"
        )  # fmt: skip
        lines.append(f"route      {plan.decision.reason or plan.route_label}{fallback}")
    if plan.estimate is not None:
        lines.append(f"estimate   {plan.estimate}")
    conv = plan.conversation
    if conv is None:
        lines.append("conversation none (nothing to key on)")
        return lines
    scope = ", subagent" if conv.subagent else ""
    lines.append(f"conversation {conv.base} from {conv.source}{scope}")
    lookup = plan.lookup
    if not plan.policy.affinity:
        lines.append("affinity   off")
    elif lookup is None:
        lines.append("affinity   -")
    elif lookup.binding is None:
        lines.append("affinity   new conversation: the strategy chose")
    else:
        b = lookup.binding
        if lookup.expired:
            why = "compaction" if conv.compaction else f"expired {plan.now - b.expires:.0f}s ago"
            lines.append(f"affinity   was bound to {b.provider} ({why}): the strategy chose")
        else:
            left = b.expires - plan.now
            lines.append(f"affinity   bound to {b.provider}, {left:.0f}s of {b.ttl:.0f}s left")
    served = answer.served_by
    if served is not None and served.affinity is not None and 200 <= answer.status < 300:
        lines.append(f"           {_AFTER[served.affinity]} {served.provider} after this answer")
    return lines


def status(cfg: RouterConfig, engine: Engine, pending: int) -> str:
    now = time.monotonic()
    rows = [
        ("provider", "api", "state", "cooldown", "last error", "5m req", "5m fail", "latency p50")
    ]
    for name, prov in cfg.providers.items():
        key = provider_key(name, prov)
        h = engine.health.get(key)
        state = h.state(now).value if prov.enabled else "disabled"
        left = h.until - now
        last = h.last_error or "-"
        if last == "auth":
            last = "auth (check the key)"
        req, fail = h.recent(now)
        summary = engine.latency.summary(key, STATUS_MODELS)
        lat = "; ".join(_latency(k, f) for k, f in summary.items())
        more = engine.latency.count(key) - len(summary)
        if more > 0:
            lat += f"; +{more} more"
        # Each cell escaped: a model name is the client's choice (CR/LF, bidi controls...).
        cooldown = f"{left:.0f}s" if left > 0 else "-"
        cells = (name, prov.api, state, cooldown, last, str(req), str(fail), lat or "-")
        rows.append(tuple(printable(c) for c in cells))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]) - 1)]
    text = [
        "  ".join(c.ljust(w) for c, w in zip(r, widths, strict=False)) + "  " + r[-1] for r in rows
    ]
    text += _bindings(engine, now)
    text += [printable(line) for line in users_lines(users_status(cfg, engine.limits.ledger,
                                                                  time.time()))]  # fmt: skip
    if shared := status_line(engine.state.status()):
        text.append(shared)
    text.append(f"streams being handed off or relayed: {pending}")
    text.append(f"upstream connections in use: {upstream.in_use(engine.session)}")
    return "\n".join(text)


def _latency(kind: str, f: Figures) -> str:
    """`m ttft 301 ms (12 ok)`, with failure penalties apart: they rank the provider for
    least-latency but are no latency anyone saw (`+ 3 failures: ranked 30000 ms`)."""
    unit = " ms" if kind.endswith("ttft") else ""
    if f.measured_p50 is None:
        text = f"{kind} - (0 ok)"
    else:
        text = f"{kind} {_num(f.measured_p50)}{unit} ({f.measured} ok)"
    if f.penalties and f.ranked_p50 is not None:
        text += f" + {f.penalties} failed: ranked {_num(f.ranked_p50)}{unit}"
    return text


def _num(v: float) -> str:
    return f"{v:.0f}" if abs(v) >= 10 else f"{v:.1f}"


def _bindings(engine: Engine, now: float) -> list[str]:
    """Live conversation bindings per profile and provider."""
    book = engine.planner.bindings
    live = book.snapshot(now)
    total = sum(n for per in live.values() for n in per.values())
    out = [f"affinity: {total} live conversation bindings ({book.size()} kept, cap {book.cap})"]
    for profile, per in sorted(live.items()):
        counts = ", ".join(f"{p} {n}" for p, n in sorted(per.items(), key=lambda x: -x[1]))
        out.append(f"  {profile}: {counts}")
    return out


def users_lines(users: list[UserStatus]) -> list[str]:
    """`alice  day $0.42 of $5.00 ($0.01 reserved, $4.57 left, resets in 3h12m) · rpm 3 of 30`:
    each user's spend and what is left of each limit (access only)."""
    if not users:
        return []
    width = max(len(u.name) for u in users)
    out = [f"users: {len(users)} (access)"]
    for u in users:
        parts = []
        for span, key, spent in (("day", "usd_per_day", u.today_usd),
                                 ("month", "usd_per_month", u.month_usd)):  # fmt: skip
            lim = u.limits.get(key)
            if lim is None:
                parts.append(f"{span} {_usd(spent)}")
                continue
            held = f"{_usd(lim['reserved_usd'])} reserved, " if lim["reserved_usd"] else ""
            parts.append(f"{span} {_usd(spent)} of {_usd(lim['limit_usd'])} ({held}"
                         f"{_usd(lim['left_usd'])} left, resets in "
                         f"{format_duration(lim['resets_in_s'])})")  # fmt: skip
        rpm = u.limits.get("rpm")
        if rpm is not None:
            parts.append(f"rpm {rpm['used']} of {rpm['limit']}")
        if not u.limits:
            parts.append("no limits")
        if u.in_flight:
            parts.append(f"{u.in_flight} in flight")
        out.append(f"  {u.name.ljust(width)}  " + " · ".join(parts))
    return out


def _usd(usd: float) -> str:
    return format_usd(round(usd * MICRO))
