"""A profile and its scenario routes."""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from llmrouter.schema.base import NonNegative, Seconds, Strategy, StrictModel, Timeouts

# Checked in this order after custom routes; a profile uses only the ones it defines.
BUILTIN_ROUTES: tuple[str, ...] = (
    "long_context",
    "subagent",
    "background",
    "web_search",
    "image",
    "think",
)
ROUTE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.\-]*")


def _duplicates(v: list[str]) -> list[str]:
    dup = sorted({p for p in v if v.count(p) > 1})
    if dup:
        raise ValueError(f"lists {', '.join(dup)} more than once")
    return v


class RouteMatch(StrictModel):
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
