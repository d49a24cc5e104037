"""Who is asking: proxy credentials, as a child addon of the Router (mitmproxy runs a parent's
hook before its children's, and every addon's `requestheaders` before any `request`).

Without `access` the proxy user only names a profile (the CONNECT's user names its tunnel).
With `access`, every connection and every request authenticates, pass-through hosts included:
- `http_connect`: the CONNECT's credentials are checked and kept for the connection; missing
  or bad ones get a 407 and no tunnel;
- `requestheaders`: each request is checked against the CURRENT config, before its body is
  routed, so a reload that removes or changes a user takes effect on that user's next request
  even on an open keep-alive connection (a refused HTTP/1 connection is also closed);
- the Router's `request` asks `who` again on the config snapshot it routes with.
Credentials are taken off every request: they never go upstream, into a log or a saved flow.

The router's own pages: `/healthz` stays open (load balancers); the others need a user, by
`Proxy-Authorization`, or `Authorization: Basic` on a direct request (a scraper), which gets a
401 rather than a 407. A raw pass-through tunnel opened before a revocation stays open until
the client closes it: its bytes never reach a hook (README: known limits).

`configure` also refuses to listen beyond loopback without `access` (`access.listen`).
"""

from __future__ import annotations

import logging
import weakref
from collections.abc import Callable, MutableMapping
from dataclasses import dataclass
from typing import Any

from mitmproxy import connection, ctx, exceptions, http

from llmrouter.access import CHALLENGE, Credentials, Identity, Refusal, authenticate, parse
from llmrouter.access.choice import choose_profile
from llmrouter.access.listen import is_loopback, open_proxy_error
from llmrouter.proxy import pages
from llmrouter.proxy.intake import proxy_user, response_headers
from llmrouter.routing.profiles import HostIndex, Resolution, resolve
from llmrouter.schema import RouterConfig
from llmrouter.wire import apis
from llmrouter.wire.scrub import printable, printable_lines

logger = logging.getLogger("llmrouter")

OPEN_PAGES = frozenset({"/healthz"})  # answered to anyone: a load balancer has no user
_LISTEN_OPTIONS = frozenset({"router_config", "router_open", "listen_host", "mode", "server",
                             "proxyauth"})  # fmt: skip


@dataclass(frozen=True, slots=True)
class Who:
    """The proxy user of a request: a profile name without access, an Identity with it."""

    user: str | None = None  # without access: the proxy user name (names a profile)
    identity: Identity | None = None  # with access: authenticated against the config


@dataclass(frozen=True, slots=True)
class Pick:
    """The profile of a routed request, or why it is refused (status, message, error code)."""

    resolution: Resolution
    refusal: tuple[int, str, str] | None = None


class Gate:
    def __init__(
        self,
        config: Callable[[], RouterConfig | None],
        intercepts: Callable[[str, int], bool],
    ) -> None:
        self._config = config  # the Router's current config
        self._intercepts = intercepts  # (host, port) -> does a profile route it
        # Per client connection: its credentials and whether the CONNECT gave them (they then
        # name the whole tunnel). Without access, the CONNECT's user name.
        self._conns: MutableMapping[connection.Client, tuple[Credentials, bool]] = (
            weakref.WeakKeyDictionary()
        )
        self._users: MutableMapping[connection.Client, str] = weakref.WeakKeyDictionary()
        # What each request presented, taken off its headers once (not in flow.metadata:
        # mitmproxy saves and copies metadata).
        self._flows: MutableMapping[http.HTTPFlow, Credentials | Refusal] = (
            weakref.WeakKeyDictionary()
        )
        self._first = True

    # -- options: safe by default ---------------------------------------------------------------

    def load(self, loader: Any) -> None:
        loader.add_option(
            "router_open",
            bool,
            False,
            "Start on a non-loopback address without `access` users: only when something else "
            "(a firewall, an authenticating proxy in front) protects the port.",
        )

    def configure(self, updated: set[str]) -> None:
        if not updated & _LISTEN_OPTIONS:
            return  # e.g. the Router's own updates, nested inside the start-up's configure
        first, self._first = self._first, False
        problem = self.problem(self._config())
        if problem is None:
            return
        if not first:
            raise exceptions.OptionsError(problem)  # at runtime: rolled back and shown
        logger.error(printable_lines(problem))  # start-up: mitmproxy exits before listening

    def problem(self, cfg: RouterConfig | None) -> str | None:
        """Why the router must not serve `cfg` with the current listen options, or None."""
        if cfg is None or "listen_host" not in ctx.options or not ctx.options.server:
            return None  # no proxy server (tests, `mitmdump -n -r flows`)
        from mitmproxy.proxy.mode_specs import ProxyMode, RegularMode, UpstreamMode

        access = cfg.access is not None
        if access and "proxyauth" in ctx.options and ctx.options.proxyauth:
            return ("router: `proxyauth` and `access` both authenticate proxy users: use one "
                    "(access keeps only token hashes and checks every request)")  # fmt: skip
        for spec in ctx.options.mode:
            try:
                mode = ProxyMode.parse(spec)
            except ValueError:
                continue  # mitmproxy's proxyserver reports it
            if mode.listen_port(ctx.options.listen_port) is None:
                continue  # binds no address
            host = mode.listen_host(ctx.options.listen_host)
            if ctx.options.router_open or is_loopback(host):
                continue
            if not access:
                return open_proxy_error(host, False, False)
            if not isinstance(mode, RegularMode | UpstreamMode):
                return (
                    f"router: refusing to listen on {host!r} in {mode.type_name} mode: `access` "
                    f"authenticates HTTP proxy clients only, so mode {spec!r} would pass "
                    "unauthenticated connections through. Listen on 127.0.0.1, or set "
                    "router_open=true if something else protects the port."
                )
        return None

    # -- hooks ------------------------------------------------------------------------------

    def http_connect(self, f: http.HTTPFlow) -> None:
        cfg = self._config()
        header = f.request.headers.pop("proxy-authorization", None)  # never goes upstream
        if cfg is None or cfg.access is None:
            user = proxy_user(header)
            if user:
                self._users[f.client_conn] = user
            return
        creds = parse(header)
        verdict = creds if isinstance(creds, Refusal) else authenticate(cfg.access, creds)
        # A forbidden profile on an intercepted host is refused per request, in the API's format.
        if isinstance(verdict, Refusal) and (
            verdict.status == 407 or not self._intercepts(f.request.host, f.request.port)
        ):
            self._refuse(f, verdict)
            return
        if isinstance(creds, Credentials):
            self._conns[f.client_conn] = (creds, True)

    def requestheaders(self, f: http.HTTPFlow) -> None:
        cfg = self._config()
        if cfg is None or cfg.access is None or f.response is not None or f.is_replay:
            return
        page = pages.is_pages_host(f.request.pretty_host) or pages.addressed_to_proxy(f)
        if page and _page_route(f.request.path) in OPEN_PAGES:
            f.request.headers.pop("proxy-authorization", None)
            return
        verdict = self._check(f, cfg)
        if isinstance(verdict, Refusal):
            self._refuse(f, verdict)

    def who(self, f: http.HTTPFlow, cfg: RouterConfig) -> Who | None:
        """The request's user, checked against `cfg` (the snapshot the Router routes with);
        None when it was refused (the flow then has its answer)."""
        if cfg.access is None:
            # The CONNECT's user names the tunnel: a Proxy-Authorization inside it counts only
            # when the CONNECT had none (and for plain-HTTP requests, which carry their own).
            header_user = proxy_user(f.request.headers.pop("proxy-authorization", None))
            return Who(self._users.get(f.client_conn) or header_user)
        if not self._intercepts(f.request.host, f.request.port):
            return Who()  # not routed: checked at its headers (requestheaders), passes through
        verdict = self._check(f, cfg)
        if isinstance(verdict, Refusal):
            self._refuse(f, verdict)
            return None
        return Who(identity=verdict)

    def pick(
        self, cfg: RouterConfig, index: HostIndex, f: http.HTTPFlow, who: Who,
        header: str | None, default: str,
    ) -> Pick:  # fmt: skip
        """The request's profile: for a user, always one of theirs (else a 403)."""
        host, port = f.request.host, f.request.port
        if who.identity is None:
            res = resolve(cfg, index, host, port, proxy_user=who.user, header=header,
                          default=default)  # fmt: skip
            return Pick(res)
        ident = who.identity
        choice = choose_profile(cfg, index, ident.user, host, port, hint=ident.profile,
                                header=header, default=default)  # fmt: skip
        if choice.forbidden:
            return Pick(Resolution(None), (403, f"router: {choice.forbidden}", "forbidden_profile"))
        return Pick(Resolution(choice.profile, choice.note))

    # -- internals ----------------------------------------------------------------------------

    def _check(self, f: http.HTTPFlow, cfg: RouterConfig) -> Identity | Refusal:
        assert cfg.access is not None
        creds = self._flows.get(f)
        if creds is None:
            creds = self._flows[f] = self._credentials(f)
        return creds if isinstance(creds, Refusal) else authenticate(cfg.access, creds)

    def _credentials(self, f: http.HTTPFlow) -> Credentials | Refusal:
        """What the request presents: the CONNECT's credentials inside its tunnel, else its own
        header, else what an earlier request on this connection presented."""
        header = f.request.headers.pop("proxy-authorization", None)
        if header is None and pages.addressed_to_proxy(f):
            auth = f.request.headers.get("authorization", "")
            if auth[:6].lower() == "basic ":  # a direct request for a page (a scraper)
                header = f.request.headers.pop("authorization")
        held = self._conns.get(f.client_conn)
        if held is not None and held[1]:
            return held[0]
        if header is not None:
            creds = parse(header)
            if isinstance(creds, Credentials):
                self._conns[f.client_conn] = (creds, False)
            return creds
        return held[0] if held is not None else parse(None)

    def _refuse(self, f: http.HTTPFlow, r: Refusal) -> None:
        """407 (401 for a direct request) with the challenge, or 403: in the API's error format
        for an intercepted API call, else plain text. The log names the user, never a token."""
        status, headers = r.status, list(r.headers)
        direct = f.request.method != "CONNECT" and pages.addressed_to_proxy(f)
        if status == 407 and direct:
            status, headers = 401, [("WWW-Authenticate", CHALLENGE)]
        route = None
        if f.request.method != "CONNECT" and self._intercepts(f.request.host, f.request.port):
            route = apis.route_for(f.request.method, f.request.path)
        if route is not None:
            code = "proxy_authentication_required" if status != 403 else "forbidden_profile"
            body = apis.error_body(route[0], status, f"router: {r.message}", code)
            headers.append(("content-type", "application/json"))
        else:
            body = f"router: {r.message}\n".encode()
            headers.append(("content-type", "text/plain; charset=utf-8"))
        if status != 403 and f.request.http_version.startswith("HTTP/1"):
            headers.append(("connection", "close"))  # a revoked user's keep-alive ends here
        f.response = http.Response.make(status, body, response_headers(headers))
        f.comment = printable(f"router: {status} {r.detail}")
        peer = f.client_conn.peername[0] if f.client_conn.peername else "?"
        level = logging.DEBUG if r.kind == "missing" else logging.INFO
        logger.log(level, printable(f"router: {status} for {peer}: {r.detail}"))


def _page_route(path: str) -> str:
    return path.split("?", 1)[0].rstrip("/") or "/"
