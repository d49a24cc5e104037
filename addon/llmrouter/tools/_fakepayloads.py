"""Wire payloads of the fake provider, one builder class per API (the registry).

Private helper of :mod:`llmrouter.tools.fakeprovider`. The builders live in ``_fakeanthropic``
and ``_fakeopenai``; their base, the :class:`Reply` they render and the SSE framing in
``_fakewire``.
"""

from __future__ import annotations

from llmrouter.tools._fakeanthropic import Anthropic
from llmrouter.tools._fakeopenai import Chat, Completions, Embeddings, Responses
from llmrouter.tools._fakewire import Api, Reply, reason, split_json, split_text, sse

__all__ = ["APIS", "Api", "Reply", "reason", "split_json", "split_text", "sse"]

# Ordered so that "/chat/completions" wins over "/completions" when matching a path.
APIS: dict[str, Api] = {
    a.name: a for a in (Anthropic(), Chat(), Completions(), Responses(), Embeddings())
}
