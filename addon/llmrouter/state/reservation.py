"""What a request reserves against its user's budget before the first attempt: an upper bound
of its cost, in micro-USD. Pure.

The bound is the estimated input at the dearer of the input and cache-write rates (a first
request may write its whole prompt to the cache) plus the request's own output bound at the
output rate, with tiers at the estimated input size. The engine reserves the dearest of a
request's candidates, so a failover to a pricier provider stays within what was reserved.

An unknown price gives no bound: the router could neither reserve nor count that model's
cost, so a user with a usd budget is never sent to it (fail closed). Giving the provider a
`price:` (0 for a free local model) lets budgeted users use it. Users without a usd budget
are not affected.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from llmrouter.routing.pricing import ModelPrice

# A request that names no output bound (OpenAI may omit max_tokens) is reserved for this many
# output tokens; settling books the real count either way.
DEFAULT_MAX_TOKENS = 8192


def requested_max_tokens(payload: Mapping[str, Any] | None) -> int | None:
    """The output bound a request names: Anthropic `max_tokens`, OpenAI `max_completion_tokens`
    (or the older `max_tokens`); the largest when several. None when it names none."""
    if not payload:
        return None
    found = [
        v
        for k in ("max_tokens", "max_completion_tokens", "max_output_tokens")
        if isinstance(v := payload.get(k), int) and not isinstance(v, bool) and v > 0
    ]
    return max(found) if found else None


def reservation_micro(
    price: ModelPrice | None, est_input_tokens: int, max_tokens: int | None
) -> int | None:
    """Upper bound of one request's cost at one price (micro-USD); None: price unknown."""
    if price is None:
        return None
    n = max(int(est_input_tokens), 0)
    out = max_tokens if max_tokens is not None and max_tokens > 0 else DEFAULT_MAX_TOKENS
    in_rate = max(price.input.at(n), price.cache_write.at(n))
    # tokens x USD per million tokens = micro-USD
    return math.ceil(n * in_rate + out * price.output.at(n))


@dataclass(frozen=True, slots=True)
class Reservation:
    amount: int  # micro-USD: the dearest usable candidate's bound
    usable: list[str]  # candidates in their order, those with a known price
    unpriced: list[str]  # candidates a budgeted user is not sent to


def plan_reservation(
    prices: Mapping[str, ModelPrice | None], est_input_tokens: int, max_tokens: int | None
) -> Reservation:
    """For a budgeted user: what to reserve over a request's candidates (in order)."""
    usable, unpriced, amount = [], [], 0
    for name, price in prices.items():
        bound = reservation_micro(price, est_input_tokens, max_tokens)
        if bound is None:
            unpriced.append(name)
        else:
            usable.append(name)
            amount = max(amount, bound)
    return Reservation(amount, usable, unpriced)
