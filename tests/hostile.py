"""Misbehaving upstreams and clients for the hardening tests, on 127.0.0.1 only.

`Hostile` is an aiohttp server in a thread of its own (like FakeProviderPool), whose answer to
every POST is one of a few bad behaviours: echoing the request's headers in an error, sending a
body slowly or never, sending too much, flooding SSE pings, or a stream with CR-only line
endings. `h2_request` is a raw HTTP/2 client (the `h2` package mitmproxy depends on) that can
reset its stream and keep the connection open.
"""

from __future__ import annotations

import asyncio
import base64
import json
import socket
import ssl
import threading
from pathlib import Path
from typing import Any

import h2.config
import h2.connection
import h2.errors
import h2.events
from aiohttp import ClientConnectionResetError, web


def anthropic_sse(text: str = "Hello from hostile.", eol: bytes = b"\n") -> bytes:
    """A complete Anthropic stream with the given line ending."""
    events = [
        ("message_start", {"type": "message_start", "message": {
            "id": "msg_h", "type": "message", "role": "assistant", "model": "claude-test",
            "content": [], "stop_reason": None, "stop_sequence": None,
            "usage": {"input_tokens": 5, "output_tokens": 1}}}),
        ("content_block_start", {"type": "content_block_start", "index": 0,
                                 "content_block": {"type": "text", "text": ""}}),
        ("content_block_delta", {"type": "content_block_delta", "index": 0,
                                 "delta": {"type": "text_delta", "text": text}}),
        ("content_block_stop", {"type": "content_block_stop", "index": 0}),
        ("message_delta", {"type": "message_delta", "delta": {"stop_reason": "end_turn",
                           "stop_sequence": None}, "usage": {"output_tokens": 4}}),
        ("message_stop", {"type": "message_stop"}),
    ]  # fmt: skip
    out = b""
    for name, obj in events:
        out += b"event: " + name.encode() + eol + b"data: " + json.dumps(obj).encode() + eol + eol
    return out


class Hostile:
    """One misbehaving provider. `mode` (settable while running) picks the behaviour."""

    def __init__(self, mode: str, **params: Any) -> None:
        self.mode = mode
        self.params = params
        self.requests: list[dict[str, Any]] = []
        self.closed = threading.Event()  # set when a handler saw its client go away
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._thread.start()
        self._runner: web.AppRunner | None = None
        self.port = self._run(self._start())

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _run(self, coro: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(10)

    async def _start(self) -> int:
        app = web.Application(client_max_size=2**30)
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None, handler_cancellation=True)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        return self._runner.addresses[0][1]

    def stop(self) -> None:
        if self._runner is not None:
            self._run(self._runner.cleanup())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        headers = {k.lower(): v for k, v in request.headers.items()}
        self.requests.append({"path": request.path_qs, "headers": headers, "body": body})
        try:
            return await getattr(self, "_" + self.mode)(request)
        except (asyncio.CancelledError, ConnectionResetError):
            self.closed.set()
            raise
        except ClientConnectionResetError:
            self.closed.set()
            return web.Response(status=499)

    async def _echo(self, request: web.Request) -> web.StreamResponse:
        """An error that quotes the request's headers, in its body and in a header."""
        seen = dict(request.headers)
        msg = f"invalid request; you sent {json.dumps(seen)}"
        body = {"type": "error", "error": {"type": "authentication_error", "message": msg}}
        echo = request.headers.get("x-api-key") or request.headers.get("authorization", "")
        status = int(self.params.get("status", 401))
        return web.json_response(body, status=status, headers={"x-echo": echo})

    async def _trickle(self, request: web.Request) -> web.StreamResponse:
        """Headers at once, then the body one byte per `interval` seconds (never, if 0)."""
        data = json.dumps({"id": "msg_t", "type": "message", "content": []}).encode()
        resp = web.StreamResponse(headers={"content-type": "application/json"})
        resp.content_length = len(data)
        await resp.prepare(request)
        interval = float(self.params.get("interval", 1.0))
        for i in range(len(data)):
            if not interval:
                await asyncio.Event().wait()
            await resp.write(data[i : i + 1])
            await asyncio.sleep(interval)
        return resp

    async def _huge(self, request: web.Request) -> web.StreamResponse:
        """A 200 JSON answer of `size` bytes."""
        size = int(self.params.get("size", 2**20))
        resp = web.StreamResponse(headers={"content-type": "application/json"})
        resp.content_length = size
        await resp.prepare(request)
        block = b" " * 65536
        left = size
        while left > 0:
            await resp.write(block[: min(left, len(block))])
            left -= len(block)
        return resp

    async def _ping_flood(self, request: web.Request) -> web.StreamResponse:
        """An SSE answer that sends pings, and nothing else, as fast as it can."""
        resp = web.StreamResponse(headers={"content-type": "text/event-stream"})
        await resp.prepare(request)
        ping = b'event: ping\ndata: {"type": "ping"}\n\n' * 1000
        while True:
            await resp.write(ping)

    async def _cr_stream(self, request: web.Request) -> web.StreamResponse:
        """A whole Anthropic stream with CR-only line endings (valid SSE)."""
        resp = web.StreamResponse(headers={"content-type": "text/event-stream"})
        await resp.prepare(request)
        data = anthropic_sse(eol=b"\r")
        step = len(data) // 5 + 1
        for i in range(0, len(data), step):  # several chunks: CRs at chunk ends too
            await resp.write(data[i : i + step])
            await asyncio.sleep(0.01)
        await resp.write_eof()
        return resp

    async def _sse_error(self, request: web.Request) -> web.StreamResponse:
        """A 200 SSE answer that reports overload in-band, whatever was asked."""
        resp = web.StreamResponse(headers={"content-type": "text/event-stream"})
        await resp.prepare(request)
        err = {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}
        await resp.write(b"event: error\ndata: " + json.dumps(err).encode() + b"\n\n")
        await resp.write_eof()
        return resp

    async def _slow_ok(self, request: web.Request) -> web.StreamResponse:
        """A normal answer after `delay` seconds (a request to reset meanwhile)."""
        await asyncio.sleep(float(self.params.get("delay", 3.0)))
        return web.json_response({"id": "msg_s", "type": "message", "role": "assistant",
                                  "content": [{"type": "text", "text": "late"}],
                                  "usage": {"input_tokens": 3, "output_tokens": 1}})  # fmt: skip


# -- a raw HTTP/2 client ----------------------------------------------------------------------


def _connect_tunnel(proxy_port: int, host: str, port: int, user: str | None) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", proxy_port), timeout=10)
    auth = ""
    if user:
        token = base64.b64encode(f"{user}:x".encode()).decode()
        auth = f"Proxy-Authorization: Basic {token}\r\n"
    sock.sendall(f"CONNECT {host}:{port} HTTP/1.1\r\nHost: {host}:{port}\r\n{auth}\r\n".encode())
    head = b""
    while b"\r\n\r\n" not in head:
        more = sock.recv(4096)
        if not more:
            raise ConnectionError("proxy closed the CONNECT")
        head += more
    if b" 200 " not in head.split(b"\r\n", 1)[0]:
        raise ConnectionError(f"CONNECT refused: {head!r}")
    return sock


class H2Client:
    """One HTTP/2 connection through the router's CONNECT tunnel, driven step by step."""

    def __init__(self, proxy_port: int, host: str, port: int, ca_bundle: Path) -> None:
        ctx = ssl.create_default_context(cafile=str(ca_bundle))
        ctx.set_alpn_protocols(["h2"])
        raw = _connect_tunnel(proxy_port, host, port, None)
        self.sock = ctx.wrap_socket(raw, server_hostname=host)
        if self.sock.selected_alpn_protocol() != "h2":
            raise ConnectionError(f"no h2: {self.sock.selected_alpn_protocol()}")
        self.authority = f"{host}:{port}"
        self.conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
        self.conn.initiate_connection()
        self._flush()

    def _flush(self) -> None:
        self.sock.sendall(self.conn.data_to_send())

    def post(self, path: str, body: bytes, headers: dict[str, str]) -> int:
        sid = self.conn.get_next_available_stream_id()
        hs = [(":method", "POST"), (":path", path), (":authority", self.authority),
              (":scheme", "https"), *headers.items()]  # fmt: skip
        self.conn.send_headers(sid, hs)
        self.conn.send_data(sid, body, end_stream=True)
        self._flush()
        return sid

    def reset(self, sid: int) -> None:
        self.conn.reset_stream(sid, h2.errors.ErrorCodes.CANCEL)
        self._flush()

    def response(self, sid: int, timeout: float = 10) -> tuple[int, bytes]:
        """Read until stream `sid` ends: (status, body)."""
        self.sock.settimeout(timeout)
        status, body = 0, b""
        while True:
            data = self.sock.recv(65536)
            if not data:
                raise ConnectionError("connection closed")
            for ev in self.conn.receive_data(data):
                if isinstance(ev, h2.events.ResponseReceived) and ev.stream_id == sid:
                    status = int(dict(ev.headers)[b":status"])
                elif isinstance(ev, h2.events.DataReceived):
                    self.conn.acknowledge_received_data(ev.flow_controlled_length, ev.stream_id)
                    if ev.stream_id == sid:
                        body += ev.data
                elif isinstance(ev, h2.events.StreamEnded) and ev.stream_id == sid:
                    self._flush()
                    return status, body
                elif isinstance(ev, h2.events.StreamReset) and ev.stream_id == sid:
                    raise ConnectionError(f"stream {sid} reset: {ev.error_code}")
            self._flush()

    def close(self) -> None:
        try:
            self.conn.close_connection()
            self._flush()
        finally:
            self.sock.close()
