"""mitmproxy's "LLM" content view: routed API bodies as text a person reads (see wire.render).

Register it once with `mitmproxy.contentviews.add(LLMContentview())`. It wins the automatic
choice (render_priority 3, above JSON's 1 and GraphQL's 2) for POST bodies of inference paths
that are JSON or SSE; elsewhere it stays out of the way (priority 0).
"""

from __future__ import annotations

from mitmproxy import http
from mitmproxy.contentviews import Contentview, Metadata

from llmrouter.wire import render

PRIORITY = 3.0
_TYPES = (None, "application/json", "text/event-stream")
_REQUEST_KEYS = (b'"messages"', b'"input"', b'"prompt"')


def _flow_path(metadata: Metadata) -> str | None:
    flow = metadata.flow
    if isinstance(flow, http.HTTPFlow) and flow.request.method == "POST":
        return flow.request.path
    return None


def _is_request(metadata: Metadata) -> bool:
    flow, msg = metadata.flow, metadata.http_message
    if isinstance(msg, http.Request):
        return True
    return msg is None and isinstance(flow, http.HTTPFlow) and flow.response is None


class LLMContentview(Contentview):
    name = "LLM"
    syntax_highlight = "none"

    def prettify(self, data: bytes, metadata: Metadata) -> str:
        path = _flow_path(metadata)
        if _is_request(metadata):
            return render.render_request(data, path)
        return render.render_response(data, metadata.content_type, path)

    def render_priority(self, data: bytes, metadata: Metadata) -> float:
        if not data or render.api_of_path(_flow_path(metadata)) is None:
            return 0
        if metadata.content_type not in _TYPES:
            return 0  # an HTML error page from a proxy in between, say
        if _is_request(metadata):
            return PRIORITY if any(k in data for k in _REQUEST_KEYS) else 0
        head = data[:64].lstrip()
        return PRIORITY if head.startswith((b"{", b"event:", b"data:", b":")) else 0
