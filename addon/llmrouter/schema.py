"""The profiles.yaml schema: pydantic models, frozen, every unknown key an error.

Plain data only: `llmrouter.config` loads a file into these models and names the path of every
bad field.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

Strategy = Literal["failover", "round-robin", "weighted", "least-latency", "least-cost"]
ApiName = Literal["anthropic", "openai"]
STRATEGIES: tuple[str, ...] = Strategy.__args__  # type: ignore[attr-defined]

# Built-in timeout defaults in seconds; documented in the README reference.
DEFAULT_TIMEOUTS: dict[str, float] = {
    "connect_timeout": 5.0,
    "first_byte_timeout": 30.0,
    "response_timeout": 600.0,
    # Reasoning models may think silently for minutes after their headers: a shorter default
    # would cut them off and pay for the answer twice.
    "first_token_timeout": 300.0,
    "idle_timeout": 120.0,
}
DEFAULT_DEADLINE = 600.0

NonNegative = Annotated[float, Field(ge=0)]
Seconds = Annotated[float, Field(gt=0)]


class _Model(BaseModel):
    # Unknown keys are typos: reject them with their path instead of silently ignoring them.
    model_config = ConfigDict(extra="forbid", frozen=True)


class Timeouts(_Model):
    connect_timeout: Seconds | None = Field(
        None, description="TCP + TLS connect to the provider (s). Default 5."
    )
    first_byte_timeout: Seconds | None = Field(
        None, description="Streamed requests: request sent to response headers (s). Default 30."
    )
    response_timeout: Seconds | None = Field(
        None,
        description="Non-streamed requests: request sent to the whole answer (s); their headers "
        "only come with the answer. Default 600.",
    )
    first_token_timeout: Seconds | None = Field(
        None, description="Streamed requests: headers to first content event (s). Default 300."
    )
    idle_timeout: Seconds | None = Field(
        None,
        description="Streamed requests: longest silence after the first token (s). Default 120.",
    )


class Price(_Model):
    input: NonNegative = Field(description="USD per million input tokens")
    output: NonNegative = Field(description="USD per million output tokens")
    cache_read: NonNegative | None = Field(
        None, description="USD per million cache-read tokens (default: the input price)"
    )
    cache_write: NonNegative | None = Field(
        None, description="USD per million cache-write tokens (default: the input price)"
    )


class Provider(Timeouts):
    base_url: str = Field(
        description="Provider URL, as you would give it to that API's official SDK; may carry a "
        "path prefix (https://example.com/anthropic)."
    )
    api: ApiName = Field(description="Wire format and auth style: anthropic | openai")
    api_key: SecretStr | None = Field(
        None,
        description="Key sent to this provider, usually ${ENV_VAR}. Absent: the client's own "
        "credentials pass through untouched.",
    )
    auth_header: Literal["x-api-key", "authorization"] | None = Field(
        None,
        description="Header that carries api_key. Default: the one the client used, else the "
        "API's own (anthropic: x-api-key, openai: authorization).",
    )
    models: dict[str, str] = Field(
        default_factory=dict,
        description="Glob of the requested model -> model sent. First match wins; no match keeps "
        "the model.",
    )
    weight: NonNegative = Field(1.0, description="Share for the weighted strategy")
    enabled: bool = Field(True, description="A disabled provider is never tried")
    price: Price | None = Field(
        None, description="USD per million tokens; overrides genai-prices for every model"
    )
    context_window: int | None = Field(
        None,
        ge=1,
        description="Input tokens this provider's model accepts. A request estimated above it is "
        "never sent here (skipped: context). Absent: no limit known.",
    )
    vision: bool = Field(
        True, description="false: requests with an image or document are never sent here"
    )

    @field_validator("base_url")
    @classmethod
    def _check_url(cls, v: str) -> str:
        parts = urlsplit(v)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("must be an http:// or https:// URL with a host")
        if parts.query or parts.fragment:
            raise ValueError("must not carry a query string or fragment")
        if "@" in parts.netloc:
            # user:password@ would be shown in every flow and log line: keys go in api_key.
            raise ValueError("must not carry user:password@ (put the key in api_key)")
        try:
            parts.port  # noqa: B018 - raises on a bad port
        except ValueError as e:
            raise ValueError(f"has a bad port: {e}") from None
        return v.rstrip("/")

    @field_validator("api_key")
    @classmethod
    def _check_key(cls, v: SecretStr | None) -> SecretStr | None:
        # An empty key would make the provider pass-through: the client's own key would go to it.
        if v is None:
            return v
        key = v.get_secret_value()
        if not key.strip():
            raise ValueError(
                "is empty (an empty or unset variable?); set it, or remove api_key to pass "
                "the client's own credentials through"
            )
        if key != key.strip() or not key.isprintable():
            raise ValueError("has surrounding spaces or control characters (a trailing newline?)")
        return v


# Checked in this order after custom routes; a profile uses only the ones it defines.
BUILTIN_ROUTES: tuple[str, ...] = (
    "long_context",
    "subagent",
    "background",
    "web_search",
    "image",
    "think",
)
_ROUTE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.\-]*")


def _duplicates(v: list[str]) -> list[str]:
    dup = sorted({p for p in v if v.count(p) > 1})
    if dup:
        raise ValueError(f"lists {', '.join(dup)} more than once")
    return v


class RouteMatch(_Model):
    """A custom route's conditions; every one given must hold."""

    model: list[str] | None = Field(
        None, description="Globs of the requested model (one string or a list)"
    )
    header: dict[str, str] | None = Field(
        None,
        description="Request header name -> regex searched in its value (anchor with ^ $); an "
        "absent header does not match",
    )
    path: str | None = Field(None, description="Glob of the request path, without the query")
    min_tokens: int | None = Field(
        None, ge=1, description="Estimated input tokens at least this many"
    )

    @field_validator("model", mode="before")
    @classmethod
    def _one_or_many(cls, v: Any) -> Any:
        return [v] if isinstance(v, str) else v

    @field_validator("header")
    @classmethod
    def _check_regexes(cls, v: dict[str, str] | None) -> dict[str, str] | None:
        if v is None:
            return v
        bad = []
        for name, pattern in v.items():
            try:
                re.compile(pattern)
            except re.error as e:
                bad.append(f"{name}: {pattern!r} is not a valid regex ({e})")
        if bad:
            raise ValueError("; ".join(bad))
        return {name.lower(): pattern for name, pattern in v.items()}

    @model_validator(mode="after")
    def _not_empty(self) -> RouteMatch:
        if (
            self.model is None
            and self.header is None
            and self.path is None
            and (self.min_tokens is None)
        ):
            raise ValueError("needs at least one of model, header, path, min_tokens")
        return self


class Route(Timeouts):
    """A scenario route. Every absent field inherits the profile's value."""

    providers: list[str] | None = Field(
        None, min_length=1, description="Candidates of this route, in configured order"
    )
    strategy: Strategy | None = Field(None, description="Default: the profile's strategy")
    weights: dict[str, NonNegative] | None = Field(
        None, description="Default: the profile's weights"
    )
    deadline: Seconds | None = Field(None, description="Default: the profile's deadline (s)")
    model: str | None = Field(None, description="Model sent to every candidate of this route")
    models: dict[str, str] | None = Field(
        None,
        description="Glob of the requested model -> model sent; before the providers' own `models`",
    )
    fallback: bool = Field(
        True,
        description="When every candidate of the route fails, try the profile's own candidates",
    )
    affinity: bool | None = Field(None, description="Default: the profile's affinity")
    affinity_ttl: Seconds | None = Field(None, description="Default: the profile's affinity_ttl")
    translate: bool | None = Field(None, description="Default: the profile's translate")
    match: RouteMatch | None = Field(
        None, description="Conditions of a custom route (a built-in route has none)"
    )

    @field_validator("providers")
    @classmethod
    def _no_duplicates(cls, v: list[str] | None) -> list[str] | None:
        return v if v is None else _duplicates(v)

    @model_validator(mode="after")
    def _one_model_field(self) -> Route:
        if self.model is not None and self.models is not None:
            raise ValueError("give `model` or `models`, not both")
        return self


class Profile(Timeouts):
    hosts: list[str] = Field(
        min_length=1,
        description="Intercepted hosts this profile serves: `host` (any port) or `host:port`",
    )
    providers: list[str] = Field(min_length=1, description="Candidates, in configured order")
    strategy: Strategy = Field(
        "failover", description="failover | round-robin | weighted | least-latency | least-cost"
    )
    weights: dict[str, NonNegative] = Field(
        default_factory=dict, description="Overrides provider weights in this profile"
    )
    deadline: Seconds | None = Field(
        None, description="Bound on the whole request across all attempts (s). Default 600."
    )
    unknown_price: Literal["last", "exclude"] | NonNegative = Field(
        "last",
        description="least-cost: a candidate with no known price goes `last`, is `exclude`d, or "
        "is ranked at this blended USD/M",
    )
    explore: float = Field(
        0.05, ge=0, le=1, description="least-latency: share of requests sent to a cold provider"
    )
    min_samples: int = Field(
        5, ge=1, description="least-latency: samples before a provider counts as warm"
    )
    routes: dict[str, Route] = Field(
        default_factory=dict,
        description="Scenario routes: built-in names (long_context, subagent, background, "
        "web_search, image, think) or custom ones with `match:`. Absent fields inherit this "
        "profile's values.",
    )
    long_context_threshold: int = Field(
        60000, ge=1, description="long_context: estimated input tokens above this"
    )
    background_models: list[str] = Field(
        default_factory=lambda: ["*haiku*"],
        description="background: globs of the requested model",
    )
    think_min_budget: int = Field(
        1024, ge=0, description="think: least thinking.budget_tokens of explicit thinking"
    )
    think_efforts: list[str] = Field(
        default_factory=lambda: ["high", "xhigh"],
        description="think: OpenAI reasoning efforts that count as thinking",
    )
    affinity: bool = Field(
        True, description="Keep a conversation on the provider that holds its prompt cache"
    )
    affinity_ttl: Seconds | None = Field(
        None,
        description="How long a conversation stays bound after its last success (s). Default: "
        "the cache's, 300, or 3600 when the request asks for the 1-hour cache.",
    )
    translate: bool = Field(
        True, description="Allow providers of the other API, with the request translated"
    )

    @field_validator("background_models", "think_efforts", mode="before")
    @classmethod
    def _one_or_many(cls, v: Any) -> Any:
        return [v] if isinstance(v, str) else v

    @field_validator("unknown_price", mode="before")
    @classmethod
    def _check_unknown_price(cls, v: Any) -> Any:
        # One clear message instead of pydantic's two union-branch errors.
        if v in ("last", "exclude"):
            return v
        if isinstance(v, int | float) and not isinstance(v, bool) and v >= 0:
            return v
        raise ValueError(f"must be last, exclude or a blended USD/M price >= 0; got {v!r}")

    @field_validator("hosts")
    @classmethod
    def _check_hosts(cls, v: list[str]) -> list[str]:
        out = []
        for h in v:
            h = h.strip().lower()
            if not re.fullmatch(r"[a-z0-9.\-\[\]:]+", h) or h.startswith(("http:", "https:")):
                raise ValueError(f"{h!r} is not a host name (write api.example.com, no scheme)")
            out.append(h)
        return out

    @field_validator("providers")
    @classmethod
    def _no_duplicates(cls, v: list[str]) -> list[str]:
        return _duplicates(v)


class Health(_Model):
    rate_limit_cooldown: Seconds = Field(
        30.0, description="429 without a usable Retry-After or reset header: cooldown (s)"
    )
    backoff_initial: Seconds = Field(
        10.0, description="5xx, 529, timeouts, connection errors: first cooldown (s)"
    )
    backoff_max: Seconds = Field(300.0, description="Cap of the doubling backoff (s)")
    auth_cooldown: Seconds = Field(1800.0, description="401, 402, 403: cooldown (s)")
    max_cooldown: Seconds = Field(
        86400.0, description="Upper bound on any cooldown, including a provider's Retry-After (s)"
    )


class Shared(_Model):
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


class Defaults(Timeouts):
    deadline: Seconds | None = Field(None, description="Default profile deadline (s). Default 600.")


# -- access: who may use the router, with which profiles and budgets -------------------------

_USER_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
# SHA-256 of the empty string: a user whose token is "" would be a user without a token.
_EMPTY_SHA256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"


class UserLimits(_Model):
    usd_per_day: NonNegative | None = Field(
        None, description="Budget per UTC day (USD); 0 blocks every priced request"
    )
    usd_per_month: NonNegative | None = Field(None, description="Budget per UTC month (USD)")
    rpm: int | None = Field(
        None, ge=0, description="Requests in any 60 s (a sliding window); 0 blocks the user"
    )


class User(_Model):
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


class Access(_Model):
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


class RouterConfig(_Model):
    providers: dict[str, Provider] = Field(min_length=1)
    profiles: dict[str, Profile] = Field(min_length=1)
    defaults: Defaults = Field(default_factory=Defaults)
    health: Health = Field(default_factory=Health)
    access: Access | None = Field(
        None, description="Users, their profiles and budgets. Absent: no authentication"
    )
    shared: Shared | None = Field(
        None, description="Share health, bindings, latency and limits through Redis"
    )

    @model_validator(mode="after")
    def _check_references(self) -> RouterConfig:
        errors: list[str] = []
        for pname, profile in self.profiles.items():
            for i, name in enumerate(profile.providers):
                if name not in self.providers:
                    errors.append(
                        f"profiles.{pname}.providers[{i}]: unknown provider {name!r}; "
                        f"known: {', '.join(self.providers)}"
                    )
            for name in profile.weights:
                if name not in profile.providers:
                    errors.append(
                        f"profiles.{pname}.weights.{name}: {name!r} is not one of this "
                        f"profile's providers ({', '.join(profile.providers)})"
                    )
        if errors:
            raise ValueError("\n".join(errors))
        return self

    @model_validator(mode="after")
    def _check_access(self) -> RouterConfig:
        if self.access is None:
            return self
        errors: list[str] = []
        for uname, user in self.access.users.items():
            path = f"access.users.{uname}"
            for i, name in enumerate(user.profiles):
                if name not in self.profiles:
                    errors.append(
                        f"{path}.profiles[{i}]: unknown profile {name!r}; "
                        f"known: {', '.join(self.profiles)}"
                    )
            default = user.default_profile
            if default is not None and default not in user.profiles:
                errors.append(
                    f"{path}.default_profile: {default!r} is not one of this user's profiles "
                    f"({', '.join(user.profiles)})"
                )
        if errors:
            raise ValueError("\n".join(errors))
        return self

    @model_validator(mode="after")
    def _check_routes(self) -> RouterConfig:
        errors: list[str] = []
        for pname, profile in self.profiles.items():
            for rname, route in profile.routes.items():
                errors.extend(_route_errors(f"profiles.{pname}.routes.{rname}", rname, route,
                                            profile, self.providers))  # fmt: skip
        if errors:
            raise ValueError("\n".join(errors))
        return self

    def timeouts(self, profile: Profile, provider: Provider) -> dict[str, float]:
        """Effective timeouts: provider, then profile, then `defaults`, then built-in."""
        out = {}
        for key, builtin in DEFAULT_TIMEOUTS.items():
            for src in (provider, profile, self.defaults):
                value = getattr(src, key)
                if value is not None:
                    out[key] = value
                    break
            else:
                out[key] = builtin
        return out

    def deadline(self, profile: Profile) -> float:
        return profile.deadline or self.defaults.deadline or DEFAULT_DEADLINE

    def intercepted_hosts(self) -> list[str]:
        hosts: dict[str, None] = {}
        for profile in self.profiles.values():
            hosts.update(dict.fromkeys(profile.hosts))
        return list(hosts)


def _route_errors(
    path: str, name: str, route: Route, profile: Profile, providers: dict[str, Provider]
) -> list[str]:
    """What is wrong with one route, each line naming its path."""
    builtin = ", ".join(BUILTIN_ROUTES)
    if not _ROUTE_NAME.fullmatch(name):
        return [f"{path}: a route name is letters, digits, _ . - (it travels in a header)"]
    if name in BUILTIN_ROUTES and route.match is not None:
        return [
            f"{path}.match: {name!r} is a built-in route, detected by its own signals; give "
            f"a custom route another name"
        ]
    if name not in BUILTIN_ROUTES and route.match is None:
        return [
            f"{path}: unknown route {name!r}; built-in routes are {builtin}, and a custom "
            f"route needs a `match:` block"
        ]
    errors = []
    for i, prov in enumerate(route.providers or ()):
        if prov not in providers:
            errors.append(
                f"{path}.providers[{i}]: unknown provider {prov!r}; known: {', '.join(providers)}"
            )
    members = route.providers or profile.providers
    for prov in route.weights or ():
        if prov not in members:
            errors.append(
                f"{path}.weights.{prov}: {prov!r} is not one of this route's providers "
                f"({', '.join(members)})"
            )
    return errors
