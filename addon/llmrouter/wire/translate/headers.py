"""Headers and paths of a translated exchange: what belongs to one API only does not cross.

Auth is not handled here: a translated request carries the PROVIDER's key in the provider API's
header (`apis.auth_header_for(provider.api, set(), provider.auth_header)`), never in the header
the client happened to use for the other API.
"""

from __future__ import annotations

from typing import Any

from llmrouter.wire.apis import ApiName

ANTHROPIC_VERSION = "2023-06-01"
_PATHS: dict[str, str] = {"anthropic": "/v1/messages", "openai": "/v1/chat/completions"}
# Headers only one API understands; a provider of the other API may reject or misread them.
_ONLY: dict[str, tuple[str, ...]] = {
    "anthropic": ("anthropic-", "x-claude-code-", "x-app"),
    "openai": ("openai-", "x-stainless-helper"),
}
_BODY = {"content-length", "content-encoding", "content-type", "transfer-encoding"}


def request_path(target_api: ApiName) -> str:
    """The provider's path. The client's query (Claude Code's `?beta=true`) stays behind."""
    return _PATHS[target_api]


def request_headers(
    headers: list[tuple[str, str]], source_api: ApiName, target_api: ApiName
) -> list[tuple[str, str]]:
    """The client's headers for a provider of `target_api`: the other API's own headers go,
    the body's length/type are the router's to set, and Anthropic gets its version header."""
    if source_api == target_api:
        return headers
    drop = _ONLY[source_api]
    kept = [(k, v) for k, v in headers if not k.lower().startswith(drop) and k.lower() not in _BODY]
    kept.append(("content-type", "application/json"))
    if target_api == "anthropic":
        kept.append(("anthropic-version", ANTHROPIC_VERSION))
    return kept


def response_headers(headers: list[tuple[str, Any]], stream: bool) -> list[tuple[str, str]]:
    """The provider's headers for a translated answer: the body changed, so its length,
    encoding and type are the router's to set."""
    kept = [(k, str(v)) for k, v in headers if k.lower() not in _BODY]
    kept.append(("content-type", "text/event-stream" if stream else "application/json"))
    return kept
