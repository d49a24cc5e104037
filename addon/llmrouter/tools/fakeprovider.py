"""Fake Anthropic/OpenAI provider on loopback, with faults on demand.

One module serves the router's end-to-end tests, ``make demo`` and the benchmark:

* async: ``fake = FakeProvider("a"); port = await fake.start(); ...; await fake.stop()``
* sync (tests driving blocking SDKs): ``with FakeProviderPool() as pool: a = pool.start("a")``
* CLI: ``python -m llmrouter.tools.fakeprovider --name a --port 0 --faults 503=0.2,cut=0.05``

Behaviour is scripted per inference request (``push``), else drawn from ``faults``,
else ``default``. Every inference answer contains "Hello from NAME." so tests can tell
who answered. Stream-only faults on a non-stream request degrade sensibly:
``stall_before_token`` hangs, ``inband_error`` answers ``status``, ``cut``/``stall_after``
send the headers and half the body, then close / stall.

``Behaviour(tool_use={"name": "Read", "input": {...}})`` answers with that tool call (Anthropic
``tool_use``, chat ``tool_calls``) until the request carries a tool result, then with text: a
client that runs tools (Claude Code) makes one real tool round trip.

``prompt_cache=PromptCache()`` (CLI ``--prompt-cache``) simulates a prompt cache per
conversation: cache-read tokens for a prefix seen within its TTL, cache writes otherwise
(see ``_fakecache``). Token counts a Behaviour sets win over the simulation.

``Behaviour(thinking="...")`` starts the answer with reasoning: a thinking block that this
"Anthropic" signs, or DeepSeek-style ``reasoning_content``. ``strict=True`` (CLI ``--strict``)
refuses what the real API refuses: a thinking block whose signature no fake Anthropic issued,
an unknown chat field, unpaired tool calls (see ``_fakecheck``).
"""

from __future__ import annotations

import asyncio
import itertools
import json
import random
import ssl
import sys
import threading
import time
from collections import deque
from collections.abc import Coroutine, Iterable
from typing import Any, NoReturn, TypedDict, Unpack

from aiohttp import web

from llmrouter.tools import _fakecheck
from llmrouter.tools._fakebehaviour import (
    KINDS,
    Behaviour,
    Kind,
    RecordedRequest,
    api_for,
    fault,
    has_result,
    parse_faults,
)
from llmrouter.tools._fakecache import PromptCache
from llmrouter.tools._fakepayloads import Api, Reply, reason, split_json, split_text

__all__ = ["KINDS", "Behaviour", "FakeProvider", "FakeProviderPool", "Kind", "PromptCache",
           "ProviderOptions", "RecordedRequest", "fault", "parse_faults"]  # fmt: skip


async def _forever() -> NoReturn:
    # Ended by handler cancellation when the connection closes or the server stops.
    await asyncio.get_running_loop().create_future()
    raise AssertionError("unreachable")


class ProviderOptions(TypedDict, total=False):
    """`FakeProvider`'s keywords (defaults there), which `FakeProviderPool.start` passes on."""

    default: Behaviour | None
    faults: dict[str, float] | None
    seed: int
    ssl_context: ssl.SSLContext | None
    prompt_cache: PromptCache | None
    strict: bool


class FakeProvider:
    def __init__(
        self,
        name: str,
        *,
        default: Behaviour | None = None,
        faults: dict[str, float] | None = None,
        seed: int = 0,
        ssl_context: ssl.SSLContext | None = None,
        prompt_cache: PromptCache | None = None,
        strict: bool = False,
    ) -> None:
        self.name = name
        self.prompt_cache = prompt_cache
        self.strict = strict  # refuse what the real API refuses (see _fakecheck)
        self._default = default or Behaviour()
        self._faults = dict(faults or {})
        for fault_name in self._faults:
            fault(fault_name)  # validate early
        if sum(self._faults.values()) > 1.0:
            raise ValueError("fault probabilities sum to more than 1")
        self._rng = random.Random(seed)
        self._ssl = ssl_context
        self._lock = threading.Lock()  # guards script/default/requests across threads
        self._script: deque[Behaviour] = deque()
        self._requests: list[RecordedRequest] = []
        self._ids = itertools.count(1)
        self._live: set[asyncio.BaseTransport] = set()
        self._runner: web.AppRunner | None = None
        self._host = "127.0.0.1"
        self._port = 0

    # -- control, safe from any thread ------------------------------------------------

    def set_default(self, behaviour: Behaviour) -> None:
        with self._lock:
            self._default = behaviour

    def push(self, *behaviours: Behaviour) -> None:
        with self._lock:
            self._script.extend(behaviours)

    def clear(self) -> None:
        """Drop the remaining script (the default stays)."""
        with self._lock:
            self._script.clear()

    @property
    def requests(self) -> list[RecordedRequest]:
        with self._lock:
            return list(self._requests)

    def reset_requests(self) -> None:
        with self._lock:
            self._requests.clear()

    @property
    def open_connections(self) -> int:
        """Client connections still open: a test's way to see that upstreams are released."""
        return len(self._live)

    @property
    def port(self) -> int:
        return self._port

    @property
    def url(self) -> str:
        return f"{'https' if self._ssl else 'http'}://{self._host}:{self._port}"

    # -- lifecycle --------------------------------------------------------------------

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> int:
        app = web.Application(client_max_size=64 * 2**20)
        app.router.add_route("*", "/{tail:.*}", self._handle)
        # handler_cancellation: a client disconnect cancels hanging/stalled handlers.
        runner = web.AppRunner(
            app,
            handle_signals=False,
            access_log=None,
            handler_cancellation=True,
            shutdown_timeout=1,
        )
        await runner.setup()
        await web.TCPSite(runner, host, port, ssl_context=self._ssl).start()
        self._runner, self._host = runner, host
        self._port = runner.addresses[0][1]
        return self._port

    async def stop(self) -> None:
        """Close every connection, in-flight or hanging ones included."""
        for transport in list(self._live):
            transport.abort()
        await asyncio.sleep(0)  # let connection_lost cancel their handlers
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    # -- request handling -------------------------------------------------------------

    def _next_behaviour(self) -> Behaviour:
        with self._lock:
            if self._script:
                return self._script.popleft()
            default = self._default
            draw = self._rng.random() if self._faults else 1.0
        for fault_name, p in self._faults.items():
            if draw < p:
                return fault(fault_name, default)
            draw -= p
        return default

    def _headers(self, extra: dict[str, str] | None = None) -> dict[str, str]:
        rid = f"req_fake{self.name}{next(self._ids):08d}"
        return {"request-id": rid, "x-request-id": rid, **(extra or {})}

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        try:
            parsed: Any = json.loads(body) if body else None
        except ValueError:
            parsed = None
        headers = {k.lower(): ", ".join(request.headers.getall(k)) for k in request.headers}
        rec = RecordedRequest(
            request.method, request.path_qs, headers, body, parsed, time.monotonic()
        )
        with self._lock:
            self._requests.append(rec)
        api = api_for(request.method, request.path)
        if api is None:  # pass-through "origin" answer
            info = {"origin": self.name, "method": request.method, "path": request.path_qs}
            return web.json_response(info, headers=self._headers())
        transport = request.transport
        if transport is not None:
            self._live.add(transport)
        try:
            req = parsed if isinstance(parsed, dict) else {}
            problem = _fakecheck.check(api.name, req) if self.strict else None
            if problem is not None:
                return web.json_response(api.error(400, problem), status=400,
                                         headers=self._headers())  # fmt: skip
            return await self._serve(request, api, self._next_behaviour(), req, len(body))
        except ConnectionResetError:
            # Client left mid-stream: connection_lost is about to cancel us; returning or
            # raising instead would make aiohttp log a bogus 500.
            await _forever()
        finally:
            self._live.discard(transport)  # type: ignore[arg-type]

    def _reply(
        self, api: Api, b: Behaviour, req: dict[str, Any], size: int, headers: dict[str, str]
    ) -> Reply:
        tool = None
        if b.tool_use is not None and api.name in ("anthropic", "chat") and not has_result(req):
            tool = {"id": f"toolu_fake{self.name}{next(self._ids):08d}", **b.tool_use}
        pieces = split_json(tool["input"], b.deltas) if tool else split_text(self.name, b.deltas)
        opts = req.get("stream_options")
        inp, read, write = max(1, size // 4), 0, 0
        if self.prompt_cache is not None and api.name != "embeddings":
            c = self.prompt_cache.account(api.name, req, headers)
            inp, read, write = c.input_tokens, c.cache_read, c.cache_write
        return Reply(
            id=f"{api.id_prefix}fake{self.name}{next(self._ids):08d}",
            model=str(req.get("model", "fake-model")),
            pieces=pieces,
            input_tokens=b.input_tokens if b.input_tokens is not None else inp,
            output_tokens=b.output_tokens if b.output_tokens is not None else len(pieces),
            cache_read=b.cache_read_tokens if b.cache_read_tokens is not None else read,
            cache_write=b.cache_write_tokens if b.cache_write_tokens is not None else write,
            include_usage=isinstance(opts, dict) and opts.get("include_usage") is True,
            created=int(time.time()),
            request=req,
            tool=tool,
            thinking=b.thinking,
        )

    async def _serve(
        self, request: web.Request, api: Api, b: Behaviour, req: dict[str, Any], size: int
    ) -> web.StreamResponse:
        if b.delay:
            await asyncio.sleep(b.delay)
        stream = req.get("stream") is True and api.name != "embeddings"
        if b.kind == "hang" or (b.kind == "stall_before_token" and not stream):
            await _forever()
        if b.kind == "drop":
            assert request.transport is not None
            request.transport.abort()
            await _forever()
        if b.kind == "status" or (b.kind == "inband_error" and not stream):
            message = f"{reason(b.status)} (fake provider {self.name})"
            return web.json_response(
                api.error(b.status, message), status=b.status, headers=self._headers(b.headers)
            )
        headers = {k.lower(): v for k, v in request.headers.items()}
        reply = self._reply(api, b, req, size, headers)
        if stream:
            return await self._stream(request, api, reply, b)
        data = json.dumps(api.body(reply)).encode()
        if b.kind in ("cut", "stall_after"):
            return await self._truncated(request, data, b)
        headers = self._headers(b.headers)
        return web.Response(body=data, content_type="application/json", headers=headers)

    async def _truncated(self, request: web.Request, data: bytes, b: Behaviour) -> web.Response:
        """Non-stream cut/stall: full Content-Length, only half the body."""
        resp = web.StreamResponse(headers=self._headers(b.headers))
        resp.content_type = "application/json"
        resp.content_length = len(data)
        await resp.prepare(request)
        await resp.write(data[: len(data) // 2])
        await self._fail(request, b)

    async def _fail(self, request: web.Request, b: Behaviour) -> NoReturn:
        if b.kind == "cut" and request.transport is not None:
            request.transport.close()  # flushes what was written, then FIN mid-body
        await _forever()

    async def _stream(
        self, request: web.Request, api: Api, reply: Reply, b: Behaviour
    ) -> web.StreamResponse:
        headers = {"Content-Type": "text/event-stream", "Cache-Control": "no-cache"}
        resp = web.StreamResponse(headers=self._headers(headers | b.headers))
        await resp.prepare(request)
        await self._write(resp, api.opening(reply))
        if b.kind == "stall_before_token":
            await _forever()
        faulty = b.kind in ("inband_error", "cut", "stall_after")
        n = min(b.fault_after, len(reply.pieces)) if faulty else len(reply.pieces)
        for i in range(n):
            await asyncio.sleep(b.ttft if i == 0 else b.interval)
            await resp.write(api.delta(reply, i))
        if b.kind in ("cut", "stall_after"):
            await self._fail(request, b)
        await self._write(resp, [api.inband_error(reply)] if faulty else api.closing(reply))
        await resp.write_eof()
        return resp

    @staticmethod
    async def _write(resp: web.StreamResponse, events: Iterable[bytes]) -> None:
        for event in events:
            await resp.write(event)  # one write per event: nothing is held back


class FakeProviderPool:
    """Hosts FakeProviders on an event loop in a daemon thread, for synchronous callers."""

    def __init__(self) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name="fakeprovider-pool", daemon=True
        )
        self._thread.start()
        self._providers: list[FakeProvider] = []
        self._closed = False

    def _run[T](self, coro: Coroutine[Any, Any, T], timeout: float = 10.0) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout)

    def start(
        self, name: str, *, port: int = 0, **options: Unpack[ProviderOptions]
    ) -> FakeProvider:
        if self._closed:
            raise RuntimeError("pool is closed")
        fake = FakeProvider(name, **options)
        self._run(fake.start(port=port))
        self._providers.append(fake)
        return fake

    def stop(self, fake: FakeProvider) -> None:
        self._run(fake.stop())
        self._providers.remove(fake)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        try:
            self._run(self._shutdown())
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=5)
            if not self._thread.is_alive():
                self._loop.close()

    async def _shutdown(self) -> None:
        await asyncio.gather(*(p.stop() for p in self._providers), return_exceptions=True)
        self._providers.clear()
        # Unwind whatever is left so the loop closes without pending tasks.
        rest = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        for task in rest:
            task.cancel()
        await asyncio.gather(*rest, return_exceptions=True)

    def __enter__(self) -> FakeProviderPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def main(argv: list[str] | None = None) -> int:
    """``python -m llmrouter.tools.fakeprovider``: see ``_fakecli``."""
    from llmrouter.tools._fakecli import main as cli  # it builds on this module

    return cli(argv)


if __name__ == "__main__":
    sys.exit(main())
