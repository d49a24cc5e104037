"""What differs between the Anthropic and OpenAI wire formats: routed paths, auth, errors, usage.

Pure functions over plain data; no I/O and no mitmproxy imports.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from fnmatch import fnmatchcase
from typing import Any, Literal
from urllib.parse import urlsplit

ApiName = Literal["anthropic", "openai"]
# The SSE dialect of a routed path: how its stream marks content, its end and its errors.
Flavor = Literal["anthropic", "chat", "responses", "none"]

_ROUTES: dict[str, tuple[ApiName, Flavor]] = {
    "/v1/messages": ("anthropic", "anthropic"),
    "/v1/chat/completions": ("openai", "chat"),
    "/v1/completions": ("openai", "chat"),
    "/v1/responses": ("openai", "responses"),
    "/v1/embeddings": ("openai", "none"),
}
AUTH_HEADERS = ("x-api-key", "authorization")
_DEFAULT_AUTH: dict[str, str] = {"anthropic": "x-api-key", "openai": "authorization"}


@dataclass(frozen=True, slots=True)
class Usage:
    """Token counts of one attempt. `input_tokens` counts ALL input, cached or not."""

    input_tokens: int | None = None
    output_tokens: int | None = None
    cache_read_tokens: int | None = None
    cache_write_tokens: int | None = None

    def merged(self, other: Usage) -> Usage:
        """Later reports win field by field; absent fields keep what was known."""
        return Usage(
            other.input_tokens if other.input_tokens is not None else self.input_tokens,
            other.output_tokens if other.output_tokens is not None else self.output_tokens,
            other.cache_read_tokens
            if other.cache_read_tokens is not None
            else self.cache_read_tokens,
            other.cache_write_tokens
            if other.cache_write_tokens is not None
            else self.cache_write_tokens,
        )


def route_for(method: str, path: str) -> tuple[ApiName, Flavor] | None:
    """The API and stream flavour of an inference request, or None when it is not routed."""
    if method != "POST":
        return None
    return _ROUTES.get(path.split("?", 1)[0].rstrip("/"))


def upstream_url(base_url: str, api: ApiName, path_and_query: str) -> str:
    """Join base_url and the request path the way that API's official SDK would.

    The OpenAI SDK's base_url carries the version (…/v1, …/v1beta/openai), the Anthropic SDK's
    does not. So `/v1` is dropped when base_url ends in /v1, or for openai when it has any path.
    """
    prefix = urlsplit(base_url).path.rstrip("/")
    versioned = prefix.endswith("/v1") or (api == "openai" and prefix)
    if versioned and path_and_query.startswith("/v1/"):
        path_and_query = path_and_query[3:]
    return base_url.rstrip("/") + path_and_query


def map_model(models: dict[str, str], model: str | None) -> str | None:
    """The model sent to a provider: the first glob of `models` that matches, else unchanged."""
    if model is None:
        return None
    for pattern, target in models.items():
        if fnmatchcase(model, pattern):
            return target
    return model


def auth_header_for(api: ApiName, client_headers: set[str], configured: str | None) -> str:
    """The header for a provider's key: configured, else the client's choice, else the API's."""
    if configured:
        return configured
    for name in AUTH_HEADERS:
        if name in client_headers:
            return name
    return _DEFAULT_AUTH[api]


def auth_value(header: str, key: str) -> str:
    return f"Bearer {key}" if header == "authorization" else key


_ANTHROPIC_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    407: "authentication_error",  # the router's own proxy authentication (access)
    413: "request_too_large",
    429: "rate_limit_error",
    504: "timeout_error",
    529: "overloaded_error",
}
_OPENAI_TYPES = {429: "rate_limit_error"}


def error_body(api: ApiName, status: int, message: str, code: str = "router_error") -> bytes:
    """An error body in the API's own format, so the client's SDK raises its normal error."""
    if api == "anthropic":
        kind = _ANTHROPIC_TYPES.get(status, "api_error")
        obj: dict[str, Any] = {"type": "error", "error": {"type": kind, "message": message}}
    else:
        fallback = "server_error" if status >= 500 else "invalid_request_error"
        kind = _OPENAI_TYPES.get(status, fallback)
        obj = {"error": {"message": message, "type": kind, "param": None, "code": code}}
    return json.dumps(obj).encode()


def stream_error_event(flavor: Flavor, message: str) -> bytes:
    """A protocol-correct terminal error event: the SDK raises instead of returning a cut answer."""
    if flavor == "anthropic":
        obj: dict[str, Any] = {"type": "error", "error": {"type": "api_error", "message": message}}
        return b"event: error\ndata: " + json.dumps(obj).encode() + b"\n\n"
    err = {"message": message, "type": "server_error", "param": None, "code": "stream_interrupted"}
    if flavor == "responses":
        obj = {"type": "error", "code": "stream_interrupted", "message": message, "error": err}
        return b"event: error\ndata: " + json.dumps(obj).encode() + b"\n\n"
    return b"data: " + json.dumps({"error": err}).encode() + b"\n\n"


def json_int(v: Any) -> int | None:
    """A JSON integer, or None (a bool is not a count)."""
    return v if isinstance(v, int) and not isinstance(v, bool) else None


def usage_from(api: ApiName, usage: Any) -> Usage:
    """Normalise a `usage` object of either API. Anthropic's input_tokens excludes the cache."""
    if not isinstance(usage, dict):
        return Usage()
    if api == "anthropic":
        base = json_int(usage.get("input_tokens"))
        read = json_int(usage.get("cache_read_input_tokens"))
        write = json_int(usage.get("cache_creation_input_tokens"))
        total = None if base is None else base + (read or 0) + (write or 0)
        return Usage(total, json_int(usage.get("output_tokens")), read, write)
    details = usage.get("prompt_tokens_details") or usage.get("input_tokens_details") or {}
    cached = json_int(details.get("cached_tokens")) if isinstance(details, dict) else None
    inp = json_int(usage.get("prompt_tokens"))
    if inp is None:
        inp = json_int(usage.get("input_tokens"))
    out = json_int(usage.get("completion_tokens"))
    if out is None:
        out = json_int(usage.get("output_tokens"))
    return Usage(inp, out, cached, None)


def usage_from_body(api: ApiName, body: bytes) -> Usage:
    """Usage of a non-streamed JSON answer; empty when the body is not JSON."""
    try:
        obj = json.loads(body)
    except ValueError:
        return Usage()
    if not isinstance(obj, dict):
        return Usage()
    if "usage" not in obj and isinstance(obj.get("response"), dict):
        obj = obj["response"]
    return usage_from(api, obj.get("usage"))
