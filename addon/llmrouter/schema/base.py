"""The schema's building blocks: the strict model, units, timeouts, prices, a provider, health
and defaults."""

from __future__ import annotations

from typing import Annotated, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

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


class StrictModel(BaseModel):
    """Frozen, and every unknown key an error."""

    # Unknown keys are typos: reject them with their path instead of silently ignoring them.
    model_config = ConfigDict(extra="forbid", frozen=True)


class Timeouts(StrictModel):
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


class Price(StrictModel):
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
    # What an Anthropic request translated for this (OpenAI-format) provider needs, where the
    # model name does not tell (an Azure deployment called `prod`): see docs/TRANSLATION.md.
    max_tokens_field: Literal["max_tokens", "max_completion_tokens"] | None = Field(
        None,
        description="Translated requests: the field that carries the output limit. Default: "
        "by the model sent (max_completion_tokens for o1/o3/o4/gpt-5 reasoning models, else "
        "max_tokens).",
    )
    reasoning_model: bool | None = Field(
        None,
        description="Translated requests: an OpenAI reasoning model (no temperature, top_p or "
        "stop; thinking becomes reasoning_effort). Default: by the model sent.",
    )
    reasoning_field: str | None = Field(
        None,
        pattern=r"^([A-Za-z_][A-Za-z0-9_]*)?$",
        description="Translated requests: the assistant-message field that carries earlier "
        'thinking back (reasoning_content for DeepSeek and Kimi K2 by name); "" never.',
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


class Health(StrictModel):
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
