"""In-process hook tests: a taddons context with mitmproxy's Proxyserver, as the router runs."""

from __future__ import annotations

from typing import Any

from mitmproxy.addons.proxyserver import Proxyserver
from mitmproxy.test import taddons


def router_taddons(*addons: Any, listen_host: str = "127.0.0.1") -> taddons.context:
    """Proxyserver declares connection_strategy, which the router sets, and listen_host, whose
    default ("": every interface) the router refuses without `access` users; so it is set
    before the router loads, to 127.0.0.1 as `make run` and the e2e tests listen."""
    tctx = taddons.context(Proxyserver())
    tctx.options.update(listen_host=listen_host)
    tctx.master.addons.add(*addons)
    return tctx
