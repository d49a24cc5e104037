"""Which state store this run uses, as a child addon of the Router: the `router_redis` option,
the config's `shared:` block, and the rule that a change to either takes effect at restart.

The store is made once, in the Router's `running` (`make`): a local one without `shared:` or
`router_redis`, else Redis (state/redisbackend.py). Swapping stores under live requests would
drop their leases and bindings, so a later change is only logged.
"""

from __future__ import annotations

import logging
from typing import Any

from mitmproxy import ctx, exceptions
from pydantic import ValidationError

from llmrouter.schema import RouterConfig, Shared
from llmrouter.state.backends import StateBackend, make_backend

logger = logging.getLogger("llmrouter")
_RESTART = "shared state changes take effect at restart; this run keeps its store"


class Sharing:
    def __init__(self) -> None:
        self.used: tuple[Shared | None, str | None] | None = None  # (shared:, router_redis)

    def load(self, loader: Any) -> None:
        loader.add_option(
            "router_redis",
            str,
            "",
            "Redis URL for state shared by several router instances (redis://host:6379/0, "
            "rediss://..., unix:///path?db=0). Overrides shared.redis in the config, and turns "
            "sharing on without a shared: block. Read at start-up.",
        )

    def configure(self, updated: set[str]) -> None:
        if "router_redis" not in updated:
            return
        url = ctx.options.router_redis
        if url:
            try:
                Shared.model_validate({"redis": url})
            except ValidationError as e:  # the reason only: the URL may carry a password
                why = "; ".join(str(err["msg"]) for err in e.errors())
                raise exceptions.OptionsError(f"router_redis: {why}") from None
        if self.used is not None and self.used[1] != (url or None):
            logger.warning(f"router: router_redis changed: {_RESTART}")

    def make(self, cfg: RouterConfig | None) -> StateBackend:
        """This run's store (call once, in `running`)."""
        self.used = (cfg.shared if cfg is not None else None, ctx.options.router_redis or None)
        return make_backend(*self.used)

    def reloaded(self, cfg: RouterConfig) -> None:
        """A new config is in use: a changed `shared:` waits for a restart."""
        if self.used is not None and cfg.shared != self.used[0]:
            logger.warning(f"router: shared: changed in the config: {_RESTART}")
