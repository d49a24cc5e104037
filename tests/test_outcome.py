"""The classification table: outcome, retryable, and what it says about the provider."""

from __future__ import annotations

import pytest
from llmrouter.wire.outcome import Failure, Outcome, classify_status, failure_of

OK, ERR = Outcome.OK, Outcome.HTTP_ERROR


@pytest.mark.parametrize("status", [200, 201, 202, 204, 206, 299])
def test_2xx_final_ok(status: int) -> None:
    assert classify_status(status) == (OK, False, Failure.NONE)


@pytest.mark.parametrize("status", [400, 404, 405, 409, 413, 415, 422, 451])
def test_final_4xx_no_penalty(status: int) -> None:
    assert classify_status(status) == (ERR, False, Failure.NONE)


@pytest.mark.parametrize("status", [401, 402, 403])
def test_auth_retryable_long_cooldown(status: int) -> None:
    assert classify_status(status) == (ERR, True, Failure.AUTH)


def test_429_rate_limit() -> None:
    assert classify_status(429) == (ERR, True, Failure.RATE_LIMIT)


@pytest.mark.parametrize(
    "status", [408, 500, 501, 502, 503, 504, 505, 507, 520, 521, 522, 523, 524, 529, 599]
)
def test_408_and_every_5xx_retryable_server(status: int) -> None:
    assert classify_status(status) == (ERR, True, Failure.SERVER)


def test_full_table_is_consistent() -> None:
    for status in range(100, 600):
        outcome, retryable, failure = classify_status(status)
        assert (outcome is OK) == (status < 300)  # a 3xx is a provider failure (never followed)
        assert retryable == (failure is not Failure.NONE)


@pytest.mark.parametrize(
    ("outcome", "failure"),
    [
        (Outcome.OK, Failure.NONE),
        (Outcome.CLIENT_CLOSED, Failure.NONE),
        (Outcome.CONNECT_ERROR, Failure.SERVER),
        (Outcome.TIMEOUT, Failure.SERVER),
        (Outcome.INBAND_ERROR, Failure.SERVER),
        (Outcome.TRUNCATED, Failure.SERVER),
        (Outcome.HTTP_ERROR, Failure.SERVER),  # no status known: assume the provider's fault
    ],
)
def test_failure_of_non_http(outcome: Outcome, failure: Failure) -> None:
    assert failure_of(outcome) is failure


@pytest.mark.parametrize(
    ("status", "failure"),
    [(400, Failure.NONE), (401, Failure.AUTH), (429, Failure.RATE_LIMIT), (503, Failure.SERVER)],
)
def test_failure_of_http_uses_status(status: int, failure: Failure) -> None:
    assert failure_of(Outcome.HTTP_ERROR, status) is failure


def test_values_are_the_jsonl_strings() -> None:
    assert [o.value for o in Outcome] == [
        "ok",
        "http_error",
        "connect_error",
        "timeout",
        "client_closed",
        "inband_error",
        "truncated",
    ]
    assert str(Failure.RATE_LIMIT) == "rate_limit"
