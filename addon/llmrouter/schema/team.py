"""What a team shares: Redis for several instances (`shared:`) and its users with their
budgets (`access:`)."""

from __future__ import annotations

import re
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, field_validator

from llmrouter.schema.base import NonNegative, Seconds, StrictModel


class Shared(StrictModel):
    """State shared by several router instances through Redis (docs/SHARED.md)."""

    redis: SecretStr = Field(
        description="Redis URL: redis://[:password@]host:port/db, rediss://..., or "
        "unix:///path/redis.sock?db=0; ${ENV} allowed (it may carry a password, so it is "
        "never shown). The router_redis option overrides it."
    )
    prefix: str = Field(
        "llmrouter:", min_length=1, description="Every key the router writes starts with it"
    )
    on_outage: Literal["local-share", "deny"] = Field(
        "local-share",
        description="Budgets while Redis is unreachable: each instance enforces its share "
        "(limit / live instances), or requests of users with limits are denied",
    )
    timeout: Seconds = Field(
        0.05, le=5, description="Bound on every Redis call (s); past it the instance goes local"
    )
    lease: Seconds = Field(
        30.0,
        description="A budget reservation's hold expires this long after its instance last "
        "renewed it (s): a crashed instance's holds vanish",
    )
    queue_max: int = Field(
        10000, ge=100, description="Pending background writes kept while Redis is slow or down"
    )

    @field_validator("redis", mode="before")
    @classmethod
    def _check_redis(cls, v: Any) -> Any:
        if isinstance(v, SecretStr):
            v = v.get_secret_value()
        if not isinstance(v, str):
            raise ValueError("must be a URL string")
        parts = urlsplit(v.strip())
        if parts.scheme in ("redis", "rediss"):
            if not parts.hostname:
                raise ValueError("must name a host: redis://host:6379/0")
            try:
                parts.port  # noqa: B018 - raises on a bad port
            except ValueError as e:
                raise ValueError(f"has a bad port: {e}") from None
            db = parts.path.strip("/")
            if db and not db.isdigit():
                raise ValueError(f"database must be a number, got {db!r}")
        elif parts.scheme == "unix":
            if not parts.path:
                raise ValueError("must name a socket path: unix:///run/redis.sock")
        else:
            raise ValueError("must be a redis://, rediss:// or unix:// URL")
        return v.strip()

    @field_validator("prefix")
    @classmethod
    def _check_prefix(cls, v: str) -> str:
        if any(c.isspace() for c in v):
            raise ValueError("must not contain whitespace")
        return v


# -- access: who may use the router, with which profiles and budgets -------------------------

_USER_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
# SHA-256 of the empty string: a user whose token is "" would be a user without a token.
_EMPTY_SHA256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"


class UserLimits(StrictModel):
    usd_per_day: NonNegative | None = Field(
        None, description="Budget per UTC day (USD); 0 blocks every priced request"
    )
    usd_per_month: NonNegative | None = Field(None, description="Budget per UTC month (USD)")
    rpm: int | None = Field(
        None, ge=0, description="Requests in any 60 s (a sliding window); 0 blocks the user"
    )


class User(StrictModel):
    token_sha256: str = Field(
        description="SHA-256 hex of the user's token, never the token itself "
        "(python -m llmrouter.access add NAME --profiles ... makes both)"
    )
    profiles: list[str] = Field(min_length=1, description="The profiles this user may use")
    default_profile: str | None = Field(
        None,
        description="Profile when the client names none; else the usual choice within `profiles`",
    )
    limits: UserLimits = Field(default_factory=UserLimits)

    @field_validator("token_sha256")
    @classmethod
    def _check_digest(cls, v: str) -> str:
        # Never echo the value: a token pasted here by mistake must not reach a log.
        v = v.strip().lower()
        if not re.fullmatch(r"[0-9a-f]{64}", v):
            raise ValueError(
                "must be 64 hex digits, the SHA-256 of the token (not the token itself); "
                "`python -m llmrouter.access hash` prints it"
            )
        if v == _EMPTY_SHA256:
            raise ValueError("is the SHA-256 of an empty token; give the user a real token")
        return v

    @field_validator("profiles")
    @classmethod
    def _no_duplicate_profiles(cls, v: list[str]) -> list[str]:
        dup = sorted({p for p in v if v.count(p) > 1})
        if dup:
            raise ValueError(f"lists {', '.join(dup)} more than once")
        return v


class Access(StrictModel):
    users: dict[str, User] = Field(
        default_factory=dict,
        description="Proxy users by name; with `access` set, every connection must authenticate",
    )

    @field_validator("users")
    @classmethod
    def _check_users(cls, v: dict[str, User]) -> dict[str, User]:
        errors = []
        for name in v:
            if not _USER_NAME.fullmatch(name):
                errors.append(
                    f"{name!r} is not a user name: 1-64 letters, digits, '.', '_' or '-', "
                    "starting with a letter or digit ('+' picks a profile, ':' ends the name)"
                )
        seen: dict[str, str] = {}
        for name, user in v.items():
            if user.token_sha256 in seen:
                errors.append(
                    f"{seen[user.token_sha256]!r} and {name!r} have the same token_sha256; "
                    "give each user their own token"
                )
            seen.setdefault(user.token_sha256, name)
        if errors:
            raise ValueError("; ".join(errors))
        return v
