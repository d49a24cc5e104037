"""Which profile serves an authenticated user's request: always one of the user's. Pure.

Precedence: NAME+PROFILE, then the X-Router-Profile header, then the user's default_profile,
then the usual choice (`router_profile`, else the first profile in file order) among the
user's profiles that serve the host. A named profile outside the user's set is refused (403);
one of theirs that does not serve the host falls back, with a note, like
`routing.profiles.resolve` does for everyone without `access`.
"""

from __future__ import annotations

from dataclasses import dataclass

from llmrouter.routing.profiles import HostIndex
from llmrouter.schema import RouterConfig


@dataclass(frozen=True, slots=True)
class Choice:
    profile: str | None  # None and not forbidden: no profile serves the host, it passes through
    note: str | None = None  # why a named profile was not used, for the flow's comment
    forbidden: str | None = None  # -> 403 with this message (in the API's format if routed)


def choose_profile(
    cfg: RouterConfig,
    index: HostIndex,
    user: str,
    host: str,
    port: int,
    *,
    hint: str | None,
    header: str | None,
    default: str,
) -> Choice:
    """`user` is authenticated against `cfg` (the same config: call both on one snapshot)."""
    account = cfg.access.users.get(user) if cfg.access is not None else None
    if account is None:
        return Choice(None, forbidden=f"user {user} is not configured")
    allowed = account.profiles
    serving = index.serving(host, port)
    note = None
    for named, source in ((hint, "NAME+PROFILE"), (header, "X-Router-Profile header")):
        if not named:
            continue
        if named not in allowed:
            return Choice(
                None,
                forbidden=f"user {user} may not use profile {named[:64]!r} (from the {source}); "
                f"allowed: {', '.join(allowed)}",
            )
        if named in serving:
            return Choice(named)
        note = f"profile {named!r} ({source}) does not serve {host}"
        break
    if not serving:
        return Choice(None, note)
    usable = [p for p in serving if p in allowed]  # file order, as without access
    if not usable:
        return Choice(
            None,
            forbidden=f"user {user} may not use any profile serving {host}; "
            f"allowed: {', '.join(allowed)}",
        )
    for preferred in (account.default_profile, default):
        if preferred in usable:
            chosen = preferred
            break
    else:
        chosen = usable[0]
    return Choice(chosen, f"{note}; using {chosen!r}" if note else None)
