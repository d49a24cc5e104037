"""Team access: who may use the router, with which profiles (pure parts).

- `credentials`: parse `Proxy-Authorization` once, authenticate on every request.
- `choice`: the profile of an authenticated user's request, always one of theirs.
- `listen`: refuse to be an open proxy on a non-loopback address.
- `cli`: `python -m llmrouter.access add NAME --profiles a,b` makes a user.

Budgets and request rates are `llmrouter.state.limits`.
"""

from llmrouter.access.choice import Choice, choose_profile
from llmrouter.access.credentials import (
    CHALLENGE,
    REALM,
    Credentials,
    Identity,
    Refusal,
    authenticate,
    check,
    hash_token,
    new_token,
    parse,
)
from llmrouter.access.listen import is_loopback, open_proxy_error

__all__ = [
    "CHALLENGE",
    "REALM",
    "Choice",
    "Credentials",
    "Identity",
    "Refusal",
    "authenticate",
    "check",
    "choose_profile",
    "hash_token",
    "is_loopback",
    "new_token",
    "open_proxy_error",
    "parse",
]
