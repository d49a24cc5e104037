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
        dup = sorted({p for p in v if v.count(p) > 1})
        if dup:
            raise ValueError(f"lists {', '.join(dup)} more than once")
        return v


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


class Defaults(Timeouts):
    deadline: Seconds | None = Field(None, description="Default profile deadline (s). Default 600.")


class RouterConfig(_Model):
    providers: dict[str, Provider] = Field(min_length=1)
    profiles: dict[str, Profile] = Field(min_length=1)
    defaults: Defaults = Field(default_factory=Defaults)
    health: Health = Field(default_factory=Health)

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
