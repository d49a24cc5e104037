"""What people look at, as a child addon of the Router (mitmproxy loads `Router.addons`): the
router's pages at llmrouter.invalid, the metrics behind /metrics, the LLM content view, the
bounded copy of each relayed stream kept as the flow's body, and the TLS-trust hint.

The Router owns the routing state; it hands this addon a snapshot function, its host test and
every attempt record, and asks it to keep a copy of each stream it relays.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from mitmproxy import contentviews, ctx, exceptions, http, tls

from llmrouter.proxy import pages
from llmrouter.proxy.contentview import LLMContentview
from llmrouter.proxy.metrics import Metrics
from llmrouter.proxy.tlshint import TlsHints
from llmrouter.wire.streamcopy import StreamCopy

logger = logging.getLogger("llmrouter")


class Observer:
    def __init__(
        self, status: Callable[[], pages.Status | None], intercepts: Callable[[str], bool]
    ) -> None:
        self.metrics = Metrics()
        self.pages = pages.Pages(self.metrics)
        self.tls_hints = TlsHints()
        self._status = status  # None until the router runs: /healthz then says why
        self._intercepts = intercepts  # host -> does a profile route it

    def load(self, loader: Any) -> None:
        loader.add_option(
            "router_flow_body_max_kb",
            int,
            1024,
            "Keep up to this much (KB) of each relayed stream as the flow's response body, for "
            "mitmweb, saved flows and the LLM view; past it the copy ends with a marker. 0: none.",
        )
        if "llm" not in contentviews.registry:  # mitmproxy 12 cannot unregister a view
            contentviews.add(LLMContentview())

    def configure(self, updated: set[str]) -> None:
        if "router_flow_body_max_kb" in updated and ctx.options.router_flow_body_max_kb < 0:
            raise exceptions.OptionsError("router_flow_body_max_kb must be >= 0 (0: keep none)")

    def observe(self, record: dict[str, Any]) -> None:
        """One attempt record (a JSONL line): the metrics count it."""
        self.metrics.observe(record)

    def request(self, f: http.HTTPFlow) -> None:
        pages.answer(f, self.pages, self._status)

    def keep_copy(self, response: http.Response) -> None:
        """Stream a relayed answer as it comes, never buffered; a bounded copy becomes its body
        at the end (mitmproxy calls the stream with b"" before the `response` hook, so -w saves
        it)."""
        limit = ctx.options.router_flow_body_max_kb * 1024
        if limit <= 0:
            response.stream = True
            return
        copy = StreamCopy(limit)
        response.stream = copy.tee(lambda body: setattr(response, "raw_content", body))

    def tls_failed_client(self, data: tls.TlsData) -> None:
        conn = data.conn
        if conn.peername is None:
            return
        # Its own pages too: a client that fails the handshake there fails everywhere.
        msg = self.tls_hints.hint(conn.peername[0], conn.sni, conn.error or "",
                                  lambda h: self._intercepts(h) or pages.is_pages_host(h),
                                  Path(ctx.options.confdir).expanduser())  # fmt: skip
        if msg:
            logger.warning(msg)
