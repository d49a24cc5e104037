"""Capabilities as filters: a candidate that cannot serve a request is skipped, whatever the route.

A provider may declare `context_window` (input tokens) and `vision: false`. A request whose
estimate exceeds a candidate's window, or that carries an image or document anywhere in its
conversation for a text-only candidate, is never sent there: the router does not send what it
knows will fail. Pure.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

from llmrouter.routing.estimate import kilo
from llmrouter.schema import Provider


def capable(
    names: Sequence[str],
    providers: Mapping[str, Provider],
    *,
    tokens: int | None,
    image: bool | Callable[[], bool],
) -> tuple[list[str], list[dict[str, str]]]:
    """(candidates that can serve, skipped entries for the JSONL `skipped` list).

    A skipped entry is {"provider", "reason": "context" | "vision", "detail"}. `image` may be a
    callable (e.g. `lambda: routes.has_image(sig)`), asked only if a candidate lacks vision.
    """
    kept: list[str] = []
    skipped: list[dict[str, str]] = []
    for n in names:
        p = providers[n]
        if tokens is not None and p.context_window is not None and tokens > p.context_window:
            detail = f"est {kilo(tokens)} > window {kilo(p.context_window)}"
            skipped.append({"provider": n, "reason": "context", "detail": detail})
            continue
        if not p.vision and not isinstance(image, bool):
            image = image()
        if image is True and not p.vision:
            skipped.append({"provider": n, "reason": "vision", "detail": "request has an image"})
        else:
            kept.append(n)
    return kept, skipped


def unservable(skipped: Sequence[dict[str, str]]) -> str:
    """The client's error message when every candidate was filtered out."""
    why = "; ".join(f"{s['provider']}: {s['reason']} ({s['detail']})" for s in skipped)
    return f"no provider can serve this request: {why}"
