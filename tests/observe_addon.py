"""Phase-1 stand-in for issue 16's wiring into the Router: load it after the router
(`mitmdump -s addon/router.py -s tests/observe_addon.py`).

It does what phase 2 will do inside `Router`: TLS-intercept llmrouter.invalid, feed every
attempt record to the metrics and answer the reserved host from the request hook with
`proxy.pages`; register the LLM content view; keep a bounded copy of each relayed stream as the
flow's response body; log one TLS-trust hint per client address. Tests use it until that wiring
lands; then they drop the second `-s`. The pages say "not running" (503) until the router's
start-up finished: tests wait for /healthz first.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from llmrouter.proxy.contentview import LLMContentview
from llmrouter.proxy.metrics import Metrics
from llmrouter.proxy.pages import (
    ALLOW_PATTERN,
    Pages,
    Status,
    allow_hosts_with_pages,
    answer,
    status_of,
)
from llmrouter.proxy.tlshint import TlsHints
from llmrouter.wire.streamcopy import StreamCopy
from mitmproxy import contentviews, ctx, http, tls


class ObserveStandIn:
    def __init__(self) -> None:
        self.metrics = Metrics()
        self.pages = Pages(self.metrics)
        self.hints = TlsHints()
        self.ready = False  # the router's `running` (which makes the engine) has finished

    @staticmethod
    def _router() -> Any:
        return ctx.master.addons.get("router")

    def load(self, loader: Any) -> None:
        if "llm" not in contentviews.registry:
            contentviews.add(LLMContentview())

    def configure(self, updated: set[str]) -> None:
        current = list(ctx.options.allow_hosts)
        if current and ALLOW_PATTERN not in current:
            ctx.options.update(allow_hosts=allow_hosts_with_pages(current))

    def running(self) -> None:
        engine = self._router().engine
        write = engine.write

        def tee(record: dict[str, Any]) -> None:
            write(record)
            self.metrics.observe(record)

        engine.write = tee
        self.ready = True

    def request(self, flow: http.HTTPFlow) -> None:
        answer(flow, self.pages, self._status)

    def tls_failed_client(self, data: tls.TlsData) -> None:
        r, conn = self._router(), data.conn
        if r is None or r.index is None or conn.peername is None:
            return
        msg = self.hints.hint(conn.peername[0], conn.sni, conn.error or "",
                              lambda host: r.index.intercepts(host, 443),
                              Path(ctx.options.confdir).expanduser())  # fmt: skip
        if msg:
            logging.getLogger("llmrouter").warning(msg)

    def responseheaders(self, flow: http.HTTPFlow) -> None:
        response = flow.response
        if response is not None and response.stream is True:  # the router relays this one
            copy = StreamCopy()
            response.stream = copy.tee(lambda body: setattr(response, "raw_content", body))

    def _status(self) -> Status | None:
        r = self._router()
        if not self.ready or r is None or r.config is None or r.engine is None:
            return None
        return status_of(r.config, r.engine, pending=r.handoff.pending,
                         config=ctx.options.router_config)  # fmt: skip


addons = [ObserveStandIn()]
