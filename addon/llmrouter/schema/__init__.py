"""The profiles.yaml schema: pydantic models, frozen, every unknown key an error.

Plain data only: `llmrouter.config` loads a file into these models and names the path of every
bad field. `base` holds providers, timeouts and health; `profiles` a profile and its routes;
`team` the shared Redis state and the users; this module the whole file and its cross-checks.
"""

from __future__ import annotations

from pydantic import Field, model_validator

from llmrouter.schema.base import (
    DEFAULT_DEADLINE,
    DEFAULT_TIMEOUTS,
    STRATEGIES,
    ApiName,
    Defaults,
    Health,
    NonNegative,
    Price,
    Provider,
    Seconds,
    Strategy,
    StrictModel,
    Timeouts,
)
from llmrouter.schema.profiles import BUILTIN_ROUTES, ROUTE_NAME, Profile, Route, RouteMatch
from llmrouter.schema.team import Access, Shared, User, UserLimits

__all__ = [
    "BUILTIN_ROUTES",
    "DEFAULT_DEADLINE",
    "DEFAULT_TIMEOUTS",
    "STRATEGIES",
    "Access",
    "ApiName",
    "Defaults",
    "Health",
    "NonNegative",
    "Price",
    "Profile",
    "Provider",
    "Route",
    "RouteMatch",
    "RouterConfig",
    "Seconds",
    "Shared",
    "Strategy",
    "StrictModel",
    "Timeouts",
    "User",
    "UserLimits",
]


class RouterConfig(StrictModel):
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
    if not ROUTE_NAME.fullmatch(name):
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
