"""How routing decisions are shown: x-router-* headers, the flow's comment and request as
mitmweb shows them, and the text of router.status and router.explain.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from llmrouter.config import RouterConfig, key_of
from llmrouter.proxy import upstream
from llmrouter.proxy.dispatch import Answer, Engine, Request, provider_key
from llmrouter.wire import apis
from llmrouter.wire.scrub import printable

if TYPE_CHECKING:
    from mitmproxy import http

REDACTED = "[redacted: provider key]"
STATUS_MODELS = 5  # latency series shown per provider in router.status (the most recent)
Display = tuple[str, bytes, list[tuple[str, str]]]


def router_headers(profile: str, cfg: RouterConfig, answer: Answer) -> list[tuple[str, str]]:
    served = answer.served_by.provider if answer.served_by else "none"
    return [
        ("x-router-profile", profile),
        ("x-router-strategy", cfg.profiles[profile].strategy),
        ("x-router-provider", served),
        ("x-router-attempts", str(len(answer.attempts))),
    ]


def failed_over(answer: Answer) -> bool:
    return len(answer.attempts) > 1 or answer.served_by is None


def comment(profile: str, answer: Answer, note: str | None) -> str:
    """`default/failover: a 503 12ms -> b 200 340ms`, plus skips and notes."""
    strategy = answer.attempts[0].ctx.strategy if answer.attempts else "?"
    text = f"{profile}/{strategy}: " + " -> ".join(a.summary() for a in answer.attempts)
    if not answer.attempts:
        text += "no attempt"
    skipped = answer.attempts[0].ctx.skipped if answer.attempts else []
    if skipped:
        text += " (skipped " + ", ".join(f"{s['provider']}: {s['reason']}" for s in skipped) + ")"
    if note:
        text += f" [{note}]"
    return printable(text)


def display_request(cfg: RouterConfig, req: Request, answer: Answer) -> Display | None:
    """The request as the provider saw it, key redacted: mitmweb shows the real upstream."""
    att = answer.served_by or (answer.attempts[-1] if answer.attempts else None)
    if att is None or att.url is None:
        return None
    prov = cfg.providers[att.provider]
    # The headers as sent upstream, with the provider's Host: the client's would show the
    # original host in mitmweb's request line.
    headers = [("host", urlsplit(att.url).netloc), *upstream.forward_headers(req.headers)]
    if key_of(prov) is not None:  # the same test as the attempt's: shown as it was sent
        client = {k.lower() for k, _ in headers}
        name = apis.auth_header_for(prov.api, client, prov.auth_header)
        headers = [(k, v) for k, v in headers if k.lower() not in apis.AUTH_HEADERS]
        headers.append((name, REDACTED))
    return att.url, att.sent_body, headers


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
    if answer.attempts:
        c = answer.attempts[0].ctx
        # The reason starts with the strategy's name ("failover: configured order").
        reason = c.reason if c.reason.startswith(c.strategy) else f"{c.strategy}: {c.reason}"
        lines.append(f"strategy   {reason}")
        lines.append(f"candidates {' > '.join(c.candidates)}")
        for s in c.skipped:
            lines.append(f"skipped    {s['provider']}: {s['reason']}")
    if note:
        lines.append(f"note       {note}")
    for a in answer.attempts:
        u = a.usage
        lines.append(
            f"#{a.n} {a.provider:<12} {a.model or '-'}  {a.outcome or 'in progress'}"
            f"{' ' + str(a.status) if a.status else ''}"
            f"  ttfb {_ms(a.ms(a.ttfb))}  ttft {_ms(a.ms(a.ttft))}  total {_ms(a.total_ms)}"
        )
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
        lat = "; ".join(
            f"{k} {v:.0f}" + (" ms" if "ttft" in k else "") + f" ({n})"
            for k, (v, n) in summary.items()
            if v is not None
        )
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
    text.append(f"streams being handed off or relayed: {pending}")
    text.append(f"upstream connections in use: {upstream.in_use(engine.session)}")
    return "\n".join(text)
