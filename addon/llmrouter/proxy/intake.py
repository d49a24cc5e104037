"""What the addon takes from a flow, and the answers it gives one itself: the proxy user, the
request as plain data (its body decoded within max_request_mb and read once), and error
answers in the API's own format."""

from __future__ import annotations

import base64
import binascii

from mitmproxy import http

from llmrouter.proxy import body
from llmrouter.proxy.exchange import Request
from llmrouter.wire import apis
from llmrouter.wire.scrub import printable

MALFORMED_USER = "(malformed proxy credentials)"  # not a profile name: answered with a 400


def proxy_user(value: str | None) -> str | None:
    """The user name of a Basic Proxy-Authorization header (the password is ignored).

    A user name that is not valid UTF-8 keeps its bytes escaped, and undecodable credentials
    give MALFORMED_USER: either way no profile has that name, so the client gets the same 400
    as for any unknown profile instead of silently getting the default one.
    """
    if not value or not value.lower().startswith("basic "):
        return None
    try:
        raw = base64.b64decode(value[6:].strip(), validate=True)
    except binascii.Error:
        return MALFORMED_USER
    user = raw.partition(b":")[0].decode("utf-8", "backslashreplace")
    return user or None


def _value(v: str) -> bytes:
    try:  # surrogateescape: the bytes of a non-UTF-8 header, as they came
        return v.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:  # a lone surrogate of another origin
        return v.encode("utf-8", "backslashreplace")


def response_headers(pairs: list[tuple[str, str]]) -> http.Headers:
    return http.Headers([(_value(k), _value(v)) for k, v in pairs])


def answer_error(f: http.HTTPFlow, api: apis.ApiName, status: int, message: str, code: str) -> None:
    """Answer `f` ourselves, in its API's own error format."""
    f.response = http.Response.make(
        status, apis.error_body(api, status, message, code), {"content-type": "application/json"}
    )
    f.comment = printable(message)


def read_request(
    f: http.HTTPFlow, route: tuple[apis.ApiName, apis.Flavor], max_bytes: int
) -> Request | None:
    """The flow's request as plain data, or None when it was answered with an error."""
    api = route[0]
    try:  # decoded within max_request_mb: a small gzip body must not inflate to gigabytes
        content = body.decode(
            f.request.raw_content or b"", f.request.headers.get("content-encoding"), max_bytes
        )
    except body.BodyError as e:
        code = "request_too_large" if e.status == 413 else "bad_content_encoding"
        answer_error(f, api, e.status, f"router: {e}", code)
        return None
    # Read once, for what every request needs; the attempts send these very bytes.
    head = body.read_head(content)
    if head.stream is not None and type(head.stream) is not bool:
        # "true" or 1: providers differ (coerce, reject, or stream anyway). One clear 400
        # instead: the router meters a stream by this flag and must not guess.
        got = printable(repr(head.stream)[:40])
        answer_error(f, api, 400, f"router: stream must be true or false; got {got}", "bad_stream")
        return None
    headers = list(f.request.headers.items(True))  # content-encoding is dropped when sent
    return Request(f.id, f.request.method, f.request.path, headers, content, api=api,
                   flavor=route[1], head=head)  # fmt: skip
