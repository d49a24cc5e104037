"""Noticing that a client gave up on one request while the router's request hook still runs.

A client that closes its connection fires `client_disconnected`. An HTTP/2 client that resets
one stream (RST_STREAM) and keeps the connection fires nothing: mitmproxy queues the reset for
the stream's layer, which is paused on our request hook, and only looks at the queue once the
hook returns (it then fires `error`). By then the attempt has run to its end, paid for and
logged `ok`, though nobody received it.

So this addon keeps, per client connection, the layers mitmproxy chooses (`next_layer`), finds
the HTTP stream of a flow in them, and wraps that stream's event handler for the length of the
hook: a RequestProtocolError (reset, or the connection lost) calls back at once. These are
mitmproxy internals (checked with 12.x); if they change, `watch` finds nothing and the router
falls back to the old behaviour, which `tests/test_e2e_resets.py` would show.
"""

from __future__ import annotations

import logging
import weakref
from collections.abc import Callable, MutableMapping
from typing import Any

from mitmproxy import connection, http

try:
    from mitmproxy.proxy.layers.http import HttpLayer, HttpStream
    from mitmproxy.proxy.layers.http._events import RequestProtocolError
except ImportError:  # pragma: no cover - another mitmproxy layout: no reset detection
    HttpLayer = HttpStream = RequestProtocolError = None  # type: ignore[assignment,misc]

logger = logging.getLogger("llmrouter")


class StreamResets:
    def __init__(self) -> None:
        # NextLayer objects per client connection; their `.layer` is chosen after our hook runs.
        self._layers: MutableMapping[connection.Client, list[Any]] = weakref.WeakKeyDictionary()

    def next_layer(self, nextlayer: Any) -> None:
        if HttpLayer is None:
            return
        self._layers.setdefault(nextlayer.context.client, []).append(weakref.ref(nextlayer))

    def client_disconnected(self, client: connection.Client) -> None:
        self._layers.pop(client, None)

    def _stream_of(self, f: http.HTTPFlow) -> Any:
        for ref in self._layers.get(f.client_conn, ()):
            nl = ref()
            layer = getattr(nl, "layer", None)
            if isinstance(layer, HttpLayer):
                for stream in layer.streams.values():
                    if getattr(stream, "flow", None) is f:
                        return stream
        return None

    def watch(self, f: http.HTTPFlow, on_reset: Callable[[], None]) -> Callable[[], None]:
        """Call `on_reset` when the client resets `f`'s stream (or loses its connection).
        Returns the function that stops watching."""
        try:
            stream = self._stream_of(f)
        except Exception:  # internals changed: no detection, never a broken request
            logger.debug("router: cannot watch for stream resets", exc_info=True)
            stream = None
        if stream is None or not isinstance(stream, HttpStream):
            return _nothing
        inner = stream.handle_event

        def handle_event(event: Any) -> Any:
            if isinstance(event, RequestProtocolError):
                on_reset()
            return inner(event)

        stream.handle_event = handle_event  # an instance attribute shadows the method

        def stop() -> None:
            if stream.__dict__.get("handle_event") is handle_event:
                del stream.handle_event

        return stop


def _nothing() -> None:
    pass
