"""The Router addon: options, configuration, and thin hooks that glue flows to the engine."""

from __future__ import annotations

import asyncio
import logging
import weakref
from collections.abc import MutableMapping, Sequence
from pathlib import Path
from typing import Any

from mitmproxy import command, connection, ctx, exceptions, flow, http

from llmrouter.config import ConfigError, RouterConfig, load_config
from llmrouter.proxy import pages, upstream, views
from llmrouter.proxy.attemptlog import AttemptLog
from llmrouter.proxy.dispatch import Answer, Engine, Request
from llmrouter.proxy.gate import Gate, Who
from llmrouter.proxy.handoff import TOKEN_HEADER, Handoff
from llmrouter.proxy.intake import answer_error, read_request, response_headers
from llmrouter.proxy.journal import Journal
from llmrouter.proxy.observe import Observer
from llmrouter.proxy.reload import ConfigWatcher
from llmrouter.proxy.resets import StreamResets
from llmrouter.proxy.sharing import Sharing
from llmrouter.proxy.upstream import new_session
from llmrouter.routing import pricing
from llmrouter.routing.profiles import HostIndex, allow_hosts_patterns
from llmrouter.routing.routes import ROUTE_HEADER
from llmrouter.state.warmstart import warm_start
from llmrouter.wire import apis
from llmrouter.wire.scrub import printable, printable_lines

logger = logging.getLogger("llmrouter")
_REPO_CONFIG = Path(__file__).resolve().parents[3] / "profiles.yaml"
DEFAULT_CONFIG = str(_REPO_CONFIG) if _REPO_CONFIG.exists() else "profiles.yaml"


class RouteInfo:
    """What the router did with a flow: kept by the Router for the hooks and router.explain."""

    __slots__ = ("answer", "display", "note", "profile", "token")

    def __init__(self, profile: str, answer: Answer, note: str | None) -> None:
        self.profile = profile
        self.answer = answer
        self.note = note
        self.token: str | None = None
        self.display: tuple[str, bytes, list[tuple[str, str]]] | None = None


class Router:
    def __init__(self) -> None:
        self.config: RouterConfig | None = None
        self.index: HostIndex | None = None
        self.engine: Engine | None = None
        self.handoff = Handoff()
        self.log = AttemptLog()  # the JSONL attempt log and its router_log* options
        self.watcher = ConfigWatcher(self._reloaded)
        self.resets = StreamResets()
        # Not in flow.metadata: mitmproxy serializes (-w, save) and deep-copies metadata.
        self._routes: MutableMapping[flow.Flow, RouteInfo] = weakref.WeakKeyDictionary()
        self._inflight: dict[str, set[asyncio.Task[Answer]]] = {}
        self._owned_allow: list[str] | None = None
        self._configured = False  # the first configure is mitmproxy's start-up
        self._max_request = 32 * 2**20
        self._default_profile = ""
        # Pages, metrics, LLM view, stream copies, TLS hints: a child addon (mitmproxy loads it).
        self.observer = Observer(self._status, self._intercepts)
        # Proxy credentials: users, their profiles, `access` and the safe-listen check.
        self.gate = Gate(
            lambda: self.config, lambda h, p: bool(self.index and self.index.intercepts(h, p))
        )
        # Which state store this run uses (local, or Redis): `router_redis`, `shared:`.
        self.sharing = Sharing()
        self.addons = [self.observer, self.gate, self.sharing]
        self._rebuild: asyncio.Task[None] | None = None

    # -- options ---------------------------------------------------------------------------

    def load(self, loader: Any) -> None:
        loader.add_option(
            "router_config", str, DEFAULT_CONFIG, "The router's profiles.yaml (hot-reloaded)."
        )
        self.log.load(loader)
        loader.add_option(
            "router_profile",
            str,
            "",
            "Profile for requests that name none, when it serves their host. Empty: the first "
            "profile in the file that serves the host.",
        )
        loader.add_option(
            "max_request_mb",
            int,
            32,
            "Largest routed request body, once decoded (MB); larger ones get a 413.",
        )
        loader.add_option(
            "max_response_mb",
            int,
            64,
            "Largest answer the router buffers (MB): a whole non-streamed answer, or one SSE "
            "event. Larger is a failed attempt, and the next provider is tried.",
        )

    def configure(self, updated: set[str]) -> None:
        first, self._configured = not self._configured, True
        try:
            self._configure(updated)
        except exceptions.OptionsError as e:
            if not first:
                raise  # a change at runtime: mitmproxy rolls it back and shows the message
            # Start-up: one clean error line, no traceback; mitmproxy exits on it (status 1).
            logger.error(printable_lines(str(e)))

    def _configure(self, updated: set[str]) -> None:
        if "router_config" in updated:
            try:
                cfg = load_config(ctx.options.router_config)
            except ConfigError as e:
                raise exceptions.OptionsError(f"router_config: {e}") from None
            self._use(cfg)
            self.watcher.watch(ctx.options.router_config)
            hosts = ", ".join(cfg.intercepted_hosts())
            where = f"{ctx.options.router_config}: profiles {', '.join(cfg.profiles)}"
            logger.info(printable(f"router: {where}; routing {hosts}"))
        if "termlog_verbosity" in updated:
            # mitmproxy's root logger is at DEBUG and each record costs a round through every
            # addon, so the router's per-request debug lines are made only when shown.
            debug = ctx.options.termlog_verbosity == "debug"
            logger.setLevel(logging.DEBUG if debug else logging.INFO)
        if ("router_profile" in updated or "router_config" in updated) and self.config:
            problem = _profile_problem(self.config, ctx.options.router_profile)
            if problem:
                raise exceptions.OptionsError(problem)
        if updated & {"max_request_mb", "max_response_mb"}:
            if ctx.options.max_request_mb < 1 or ctx.options.max_response_mb < 1:
                raise exceptions.OptionsError("max_request_mb and max_response_mb must be >= 1")
            if self.engine is not None:
                self.engine.exchange.max_response = ctx.options.max_response_mb * 2**20
        # Read on every request: kept here, since each option read deep-copies its value.
        self._max_request = ctx.options.max_request_mb * 2**20
        self._default_profile = ctx.options.router_profile
        self.log.configure(updated)
        if ctx.options.connection_strategy != "lazy":
            # eager would connect to api.anthropic.com before any hook could route the flow
            ctx.options.update(connection_strategy="lazy")
        if updated & {"allow_hosts", "ignore_hosts", "router_config"}:
            self._manage_allow_hosts()

    def _use(self, cfg: RouterConfig) -> None:
        """Start using `cfg`; the caller has checked it (load_config, _profile_problem)."""
        self.config, self.index = cfg, HostIndex(cfg)
        if self.engine is not None:
            self.engine.apply_config(cfg)

    def _manage_allow_hosts(self) -> None:
        """Intercept exactly the profiles' hosts, unless the user scoped interception."""
        if self.config is None:
            return
        current = list(ctx.options.allow_hosts)
        if ctx.options.ignore_hosts or (current and current != self._owned_allow):
            return
        wanted = pages.allow_hosts_with_pages(allow_hosts_patterns(self.config))
        if current != wanted:
            self._owned_allow = wanted
            ctx.options.update(allow_hosts=wanted)

    @property
    def journal(self) -> Journal | None:
        return self.log.journal

    def _write(self, record: dict[str, Any]) -> None:
        self.log.write(record)
        self.observer.observe(record)

    # -- lifecycle ---------------------------------------------------------------------------

    async def running(self) -> None:
        state = self.sharing.make(self.config)
        self.engine = Engine(new_session(), self._write, state=state)
        self.engine.exchange.max_response = ctx.options.max_response_mb * 2**20
        if self.journal is not None:  # users' spend (None with Redis: the cluster keeps it)
            self._rebuild = self.engine.limits.rebuilding(self.journal.path, self.journal.backups)
        if self.config is not None:
            self.engine.apply_config(self.config)
        await self.handoff.start()
        self.watcher.start()
        await state.start()  # bounded: an unreachable Redis costs a few timeouts, then local
        await asyncio.to_thread(pricing.preload)
        if self.journal is not None and self.config is not None:
            await warm_start(self.engine, self.config, self.journal.path)

    async def done(self) -> None:
        await self.watcher.stop()
        if self._rebuild is not None:
            self._rebuild.cancel()
        if self.engine is not None:  # what is still open at the end: a leak shows here
            in_use = upstream.in_use(self.engine.session)
            logger.info(f"router: stopping: handoff pending={self.handoff.pending} "
                        f"upstream in use={in_use}")  # fmt: skip
        await self.handoff.stop()
        if self.engine is not None:
            await self.engine.state.stop()  # queued writes flushed (bounded), instance left
            await self.engine.session.close()
        self.log.close()

    def _reloaded(self, cfg: RouterConfig) -> None:
        """A new config from the watcher or router.reload; raises ConfigError to refuse it."""
        problem = _profile_problem(cfg, ctx.options.router_profile) or self.gate.problem(cfg)
        if problem:  # the same rules as at start-up
            raise ConfigError(problem)
        self.sharing.reloaded(cfg)
        self._use(cfg)
        self._manage_allow_hosts()

    # -- hooks -------------------------------------------------------------------------------

    def next_layer(self, nextlayer: Any) -> None:
        self.resets.next_layer(nextlayer)

    async def request(self, f: http.HTTPFlow) -> None:
        if f.response is not None or self.config is None or self.index is None:
            return
        # Proxy credentials never go upstream, routed or not. Without access they name a
        # profile; with it, the user is checked against this very config (None: refused).
        who = self.gate.who(f, self.config)
        if who is None or not self.index.intercepts(f.request.host, f.request.port):
            return
        header = f.request.headers.pop("x-router-profile", None)
        named = f.request.headers.pop(ROUTE_HEADER, None)  # X-Router-Route: never sent upstream
        route = apis.route_for(f.request.method, f.request.path)
        if route is None:
            return  # not inference: the original host gets it untouched
        try:
            await self._route(f, route, who, header, named)
        except Exception as e:  # a hook that raises would fail open to the original host
            logger.exception("router: internal error")
            answer_error(
                f, route[0], 502, f"router internal error: {type(e).__name__}", "router_error"
            )

    async def _route(
        self, f: http.HTTPFlow, route: tuple[apis.ApiName, apis.Flavor], who: Who,
        header: str | None, named: str | None = None,
    ) -> None:  # fmt: skip
        cfg, api = self.config, route[0]
        assert cfg is not None and self.index is not None and self.engine is not None
        pick = self.gate.pick(cfg, self.index, f, who, header, self._default_profile)
        res = pick.resolution
        if pick.refusal is not None:  # a profile outside the user's set
            answer_error(f, api, *pick.refusal)
            return
        if res.error or res.profile is None:
            answer_error(f, api, 400, f"router: {res.error or res.note}", "unknown_profile")
            return
        req = read_request(f, route, self._max_request)
        if req is None:
            return
        req.route_header = named
        user = who.identity.user if who.identity is not None else None
        task = asyncio.create_task(self.engine.route(cfg, res.profile, req, user))
        tasks = self._inflight.setdefault(f.client_conn.id, set())
        tasks.add(task)
        stop_watching = self.resets.watch(f, task.cancel)  # an HTTP/2 RST_STREAM
        try:
            answer = await task
        except asyncio.CancelledError:
            answer_error(f, api, 499, "client closed the connection", "client_closed")
            return
        finally:
            stop_watching()
            tasks.discard(task)
            if not tasks:
                self._inflight.pop(f.client_conn.id, None)
        self._deliver(f, cfg, res.profile, req, answer, res.note)

    def _deliver(
        self, f: http.HTTPFlow, cfg: RouterConfig, profile: str, req: Request, answer: Answer,
        note: str | None,
    ) -> None:  # fmt: skip
        info = RouteInfo(profile, answer, note)
        self._routes[f] = info
        headers = answer.headers + views.router_headers(profile, cfg, answer)
        display = views.display_request(cfg, req, answer)
        if answer.relay is not None:
            answer.relay.headers = headers
            info.token = self.handoff.park(answer.relay)
            info.display = display
            f.request.content = b""  # the body went upstream already; restored for display
            f.request.scheme, f.request.host, f.request.port = (
                "http",
                "127.0.0.1",
                self.handoff.port,
            )
            f.request.headers[TOKEN_HEADER] = info.token
        else:
            if display:
                views.show_request(f.request, display)
            f.response = http.Response.make(answer.status, answer.body, response_headers(headers))
        f.comment = views.comment(info.profile, answer, note)
        if views.failed_over(answer):
            f.marked = views.FAILOVER_MARK

    def responseheaders(self, f: http.HTTPFlow) -> None:
        info = self._routes.get(f)
        if not isinstance(info, RouteInfo) or info.token is None or f.response is None:
            return
        self.observer.keep_copy(f.response)  # streamed, never buffered; a copy for the flow
        if info.display:
            views.show_request(f.request, info.display)

    def response(self, f: http.HTTPFlow) -> None:
        info = self._routes.get(f)
        if isinstance(info, RouteInfo) and info.token is not None:
            f.comment = views.comment(info.profile, info.answer, info.note)  # now with the end

    def error(self, f: http.HTTPFlow) -> None:
        info = self._routes.get(f)
        if isinstance(info, RouteInfo) and info.token is not None:
            self.handoff.release(info.token)

    def client_disconnected(self, client: connection.Client) -> None:
        self.resets.client_disconnected(client)
        for task in self._inflight.pop(client.id, ()):
            task.cancel()  # stop attempts nobody will read

    def _status(self) -> pages.Status | None:
        """The snapshot for the pages; None until `running` has made the engine."""
        if self.config is None or self.engine is None:
            return None
        return pages.status_of(self.config, self.engine, pending=self.handoff.pending,
                               config=ctx.options.router_config)  # fmt: skip

    def _intercepts(self, host: str) -> bool:
        return self.index is not None and self.index.intercepts(host, 443)

    # -- commands ----------------------------------------------------------------------------

    @command.command("router.status")
    def status(self) -> str:
        """Providers with their health, cooldowns, latency and recent traffic."""
        if self.config is None or self.engine is None:
            return "router: not running"
        return views.status(self.config, self.engine, self.handoff.pending)

    @command.command("router.explain")
    def explain(self, flows: Sequence[flow.Flow]) -> str:
        """Why each flow went where it went: profile, strategy, candidates, attempts, cost."""
        out = []
        for f in flows:
            info = self._routes.get(f)
            out.append(views.explain(f.id, info.profile, info.answer, info.note)
                       if isinstance(info, RouteInfo) else f"{f.id[:8]}: not routed")  # fmt: skip
        return "\n\n".join(out) or "no flows"

    @command.command("router.reload")
    def reload(self) -> str:
        """Reload router_config now; a bad file keeps the last good config."""
        try:
            cfg = load_config(ctx.options.router_config)
            self._reloaded(cfg)
        except ConfigError as e:
            logger.error(
                printable_lines(f"router: config not reloaded, keeping the last good one:\n{e}")
            )
            return f"not reloaded (kept the last good config):\n{e}"
        logger.info(f"router: reloaded {ctx.options.router_config}")
        return f"reloaded {ctx.options.router_config}: {len(cfg.profiles)} profiles"


def _profile_problem(cfg: RouterConfig, name: str) -> str | None:
    """Why `router_profile` cannot be used with `cfg`: only a name that is set and unknown."""
    if not name or name in cfg.profiles:
        return None
    return f"router_profile: no profile {name!r}; known: {', '.join(cfg.profiles)}"
