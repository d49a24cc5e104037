"""How an attempt ended: its outcome, whether the next candidate should be tried, and the
failure class that drives the provider's health. Pure: no I/O, no mitmproxy imports.
"""

from __future__ import annotations

from enum import StrEnum


class Outcome(StrEnum):
    OK = "ok"
    HTTP_ERROR = "http_error"
    CONNECT_ERROR = "connect_error"
    TIMEOUT = "timeout"
    CLIENT_CLOSED = "client_closed"
    INBAND_ERROR = "inband_error"
    TRUNCATED = "truncated"


class Failure(StrEnum):
    """What a failed attempt says about the provider (not about the request)."""

    NONE = "none"  # the provider answered; a 400 is the request's fault
    RATE_LIMIT = "rate_limit"  # 429: cool until the time the provider gave
    SERVER = "server"  # 5xx, 529, timeouts, connection errors, broken streams: backoff
    AUTH = "auth"  # 401, 402, 403: the key is bad, long cooldown


# Besides these, every 5xx (501, 520-524 from a CDN, 529 overloaded...) is the provider's fault.
RETRYABLE_STATUS = frozenset({401, 402, 403, 408, 429, 500, 502, 503, 504, 529})


def classify_status(status: int) -> tuple[Outcome, bool, Failure]:
    """(outcome, retryable, failure class) of an HTTP answer."""
    if status < 300:
        return Outcome.OK, False, Failure.NONE
    if status < 400:
        # A provider's API call is never redirected on purpose: following it would send the
        # prompt and the key elsewhere. A provider failure: try the next candidate.
        return Outcome.HTTP_ERROR, True, Failure.SERVER
    if status < 500 and status not in RETRYABLE_STATUS:
        return Outcome.HTTP_ERROR, False, Failure.NONE
    if status == 429:
        return Outcome.HTTP_ERROR, True, Failure.RATE_LIMIT
    if status in (401, 402, 403):
        return Outcome.HTTP_ERROR, True, Failure.AUTH
    return Outcome.HTTP_ERROR, True, Failure.SERVER


def failure_of(outcome: Outcome, status: int | None = None) -> Failure:
    """Failure class of a non-HTTP outcome (or of an HTTP one, given its status)."""
    if outcome is Outcome.HTTP_ERROR and status is not None:
        return classify_status(status)[2]
    if outcome in (Outcome.OK, Outcome.CLIENT_CLOSED):
        return Failure.NONE
    return Failure.SERVER
