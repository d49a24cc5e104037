"""One upstream attempt with aiohttp, under connect and time-to-headers bounds.

mitmproxy has no connect or first-byte timeout of its own, and its error hook cannot save a
flow, so every attempt is made here, by the addon's own client.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Iterable

import aiohttp

from llmrouter.wire.outcome import Outcome

# Hop-by-hop and framing headers never cross the router: each side frames its own messages.
HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "proxy-connection",
        "te",
        "trailer",
        "trailers",
        "transfer-encoding",
        "upgrade",
        "host",
        "content-length",
        "content-encoding",
        "accept-encoding",
    }
)
ERROR_BODY_LIMIT = 256 * 1024  # a retryable error's body is kept for the all-failed answer


class AttemptError(Exception):
    """An attempt that ended without a usable HTTP answer."""

    def __init__(self, outcome: Outcome, message: str) -> None:
        super().__init__(message)
        self.outcome = outcome


def new_session() -> aiohttp.ClientSession:
    connector = aiohttp.TCPConnector(
        limit=0,  # concurrency is the clients' business; never queue behind a pool limit
        ttl_dns_cache=300,
        keepalive_timeout=15,  # below any provider's idle timeout: no stale reuse
        ssl=ssl.create_default_context(),
    )
    return aiohttp.ClientSession(
        connector=connector,
        # Our own requests must never go back through a proxy from the environment (us).
        trust_env=False,
        auto_decompress=True,
        timeout=aiohttp.ClientTimeout(total=None),
        skip_auto_headers=("User-Agent", "Accept"),
        cookie_jar=aiohttp.DummyCookieJar(),
    )


def in_use(session: aiohttp.ClientSession) -> int:
    """Upstream connections acquired and not yet released (0 when idle): a leak shows here."""
    return len(getattr(session.connector, "_acquired", ()))


def forward_headers(headers: Iterable[tuple[str, str]]) -> list[tuple[str, str]]:
    return [(k, v) for k, v in headers if k.lower() not in HOP_BY_HOP]


def response_headers(headers: Iterable[tuple[str, str]]) -> list[tuple[str, str]]:
    """A provider's headers as the client may see them: no framing headers, and no x-router-*
    of its own (the router adds the real ones; the client would see two values)."""
    return [
        (k, v)
        for k, v in headers
        if (low := k.lower()) not in HOP_BY_HOP and not low.startswith("x-router-")
    ]


def describe(e: BaseException) -> tuple[Outcome, str]:
    """A short, secret-free description of why an attempt failed."""
    if isinstance(e, AttemptError):
        return e.outcome, str(e)
    if isinstance(e, TimeoutError | aiohttp.ServerTimeoutError):
        return Outcome.TIMEOUT, "timeout"
    if isinstance(e, aiohttp.ClientConnectorDNSError):
        return Outcome.CONNECT_ERROR, "DNS lookup failed"
    if isinstance(e, aiohttp.ClientConnectorCertificateError | aiohttp.ClientSSLError):
        return Outcome.CONNECT_ERROR, "TLS handshake failed"
    if isinstance(e, aiohttp.ClientConnectorError):
        if isinstance(e.os_error, ConnectionRefusedError):
            return Outcome.CONNECT_ERROR, "connection refused"
        return Outcome.CONNECT_ERROR, f"connect failed: {type(e.os_error).__name__}"
    if isinstance(e, aiohttp.ServerDisconnectedError):
        return Outcome.CONNECT_ERROR, "server disconnected"
    if isinstance(e, aiohttp.ClientPayloadError):
        return Outcome.CONNECT_ERROR, "response body broken"
    if isinstance(e, aiohttp.ClientOSError | ConnectionError):
        return Outcome.CONNECT_ERROR, "connection reset"
    if isinstance(e, aiohttp.ClientResponseError):
        return Outcome.CONNECT_ERROR, "malformed response"
    return Outcome.CONNECT_ERROR, type(e).__name__


async def send(
    session: aiohttp.ClientSession,
    method: str,
    url: str,
    headers: list[tuple[str, str]],
    body: bytes,
    *,
    connect_timeout: float,
    header_timeout: float,
) -> aiohttp.ClientResponse:
    """Send a request and wait for its response headers. Raises on failure (see `describe`)."""
    try:
        async with asyncio.timeout(header_timeout):
            return await session.request(
                method,
                url,
                headers=headers,
                data=body,
                allow_redirects=False,
                timeout=aiohttp.ClientTimeout(total=None, connect=connect_timeout),
            )
    except TimeoutError:
        raise AttemptError(
            Outcome.TIMEOUT, f"no response headers within {header_timeout:g}s"
        ) from None
    except aiohttp.ConnectionTimeoutError:
        raise AttemptError(Outcome.TIMEOUT, f"no connection within {connect_timeout:g}s") from None


async def read_body(
    resp: aiohttp.ClientResponse, within: float, limit: int | None = None, cap: int | None = None
) -> bytes:
    """The whole body within `within` seconds: its first `limit` bytes, or all of it when it
    is at most `cap` bytes (AttemptError when larger)."""
    if cap is not None and (resp.content_length or 0) > cap:
        resp.close()
        raise AttemptError(Outcome.CONNECT_ERROR, f"answer over max_response_mb ({_mb(cap)})")
    keep = limit if limit is not None else (cap + 1 if cap is not None else None)
    try:
        async with asyncio.timeout(within):
            if keep is None:
                return await resp.read()
            chunks: list[bytes] = []  # content.read(n) returns what is buffered, not n bytes
            while keep > 0 and (chunk := await resp.content.read(keep)):
                chunks.append(chunk)
                keep -= len(chunk)
    except TimeoutError:
        raise AttemptError(
            Outcome.TIMEOUT, f"response body not complete within {within:g}s"
        ) from None
    if limit is None and keep == 0:
        resp.close()
        raise AttemptError(Outcome.CONNECT_ERROR, f"answer over max_response_mb ({_mb(cap or 0)})")
    return b"".join(chunks)


def _mb(n: int) -> str:
    return f"{n / 2**20:g} MB"
