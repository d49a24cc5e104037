"""Which providers of the other API can serve a request, through translation. Pure.

A profile may mix `api: anthropic` and `api: openai` providers. A provider whose API differs
from the request's serves it through `wire.translate` (the request translated on the way out,
the answer on the way back), except:

- `translate: false` on the profile or the route: never translate (reason `translate`);
- a path translation does not cover: only Anthropic Messages and OpenAI Chat Completions are
  translated; `/v1/responses`, `/v1/completions` and `/v1/embeddings` go only to `api: openai`
  providers, unchanged (reason `api`);
- a provider without `api_key`: the client's credentials are for the other API, so nothing
  valid could be sent (reason `credentials`).

Each skip is a `skipped` entry {"provider", "reason", "detail"}, like the capability filters';
`translate` ones reach the JSONL, `api` and `credentials` ones only router.explain (UNLOGGED).
The check is a loop over names: no body is read.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from llmrouter.schema import Provider
from llmrouter.wire.apis import ApiName

# The routed paths that wire.translate covers (the query string aside).
TRANSLATED_PATHS: frozenset[str] = frozenset(("/v1/messages", "/v1/chat/completions"))
# Reasons of this filter: set by the configuration, not by the request or the providers' state.
REASONS: frozenset[str] = frozenset(("translate", "api", "credentials"))
# Of those, the providers that could never serve such a request whatever the config said
# about translation: as before translation existed, they are no news on every JSONL line (the
# shipped profile mixes both APIs without keys). router.explain still lists them.
UNLOGGED: frozenset[str] = frozenset(("api", "credentials"))


def api_filter(
    names: Sequence[str],
    providers: Mapping[str, Provider],
    api: ApiName,
    path: str,
    translate: bool,
) -> tuple[list[str], list[dict[str, str]]]:
    """(candidates that can serve a request of `api` on `path`, skipped entries)."""
    kept: list[str] = []
    skipped: list[dict[str, str]] = []
    bare = path.split("?", 1)[0].rstrip("/")
    for n in names:
        p = providers[n]
        if p.api == api:
            kept.append(n)
            continue
        if not translate:
            detail = f"{p.api} provider, {api} request; translate: false"
            skipped.append({"provider": n, "reason": "translate", "detail": detail})
        elif bare not in TRANSLATED_PATHS:
            detail = f"{p.api} provider; {bare} is never translated"
            skipped.append({"provider": n, "reason": "api", "detail": detail})
        elif p.api_key is None:
            detail = f"{p.api} provider without api_key; the client's key is for {api}"
            skipped.append({"provider": n, "reason": "credentials", "detail": detail})
        else:
            kept.append(n)
    return kept, skipped


def translates(provider: Provider, api: ApiName) -> bool:
    """Whether a request of `api` reaches `provider` through translation."""
    return provider.api != api
