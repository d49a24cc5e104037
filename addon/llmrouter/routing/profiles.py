"""Which profile serves a request, and which hosts the router intercepts. Pure: plain data in,
plain data out; no mitmproxy imports.

Precedence: the proxy-auth user name, then the X-Router-Profile header, then `router_profile`
when it serves the host, then the first profile in file order that serves the host.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from llmrouter.config import RouterConfig


@dataclass(frozen=True, slots=True)
class Resolution:
    profile: str | None  # None: no profile serves this host, the flow passes through
    note: str | None = None  # why a named profile was not used, for the flow's comment
    error: str | None = None  # a named profile that does not exist


def _split(host: str) -> tuple[str, int | None]:
    """`host`, `host:port`, `[v6]` or `[v6]:port` -> (host without brackets, port or None).

    Brackets go: mitmproxy reports an IPv6 address bare (`::1`), so the index must too.
    """
    if host.startswith("["):
        addr, _, rest = host[1:].partition("]")
        port = rest[1:] if rest.startswith(":") else ""
        return addr, int(port) if port.isdigit() else None
    name, sep, port = host.rpartition(":")
    if sep and ":" not in name and port.isdigit():
        return name, int(port)
    return host, None  # a bare name, or a bare IPv6 address


class HostIndex:
    """Profiles by intercepted host: `host` entries match any port, `host:port` only that one."""

    def __init__(self, cfg: RouterConfig) -> None:
        self._by_host: dict[str, list[tuple[str, int | None]]] = {}
        for name, profile in cfg.profiles.items():
            for entry in profile.hosts:
                host, port = _split(entry)
                self._by_host.setdefault(host, []).append((name, port))

    def serving(self, host: str, port: int) -> list[str]:
        """Profiles serving host:port, in file order."""
        entries = self._by_host.get(host.lower().strip("[]"), ())
        return list(dict.fromkeys(n for n, p in entries if p is None or p == port))

    def intercepts(self, host: str, port: int) -> bool:
        return bool(self.serving(host, port))


def resolve(
    cfg: RouterConfig,
    index: HostIndex,
    host: str,
    port: int,
    *,
    proxy_user: str | None,
    header: str | None,
    default: str,
) -> Resolution:
    serving = index.serving(host, port)
    note = None
    for named, source in ((proxy_user, "proxy user"), (header, "X-Router-Profile header")):
        if not named:
            continue
        if named not in cfg.profiles:
            known = ", ".join(cfg.profiles)
            return Resolution(
                None,
                error=f"unknown profile {named!r} (from the {source}); known profiles: {known}",
            )
        if named in serving:
            return Resolution(named)
        note = f"profile {named!r} ({source}) does not serve {host}"
        break
    if not serving:
        return Resolution(None, note)
    chosen = default if default in serving else serving[0]
    return Resolution(chosen, f"{note}; using {chosen!r}" if note else None)


def allow_hosts_patterns(cfg: RouterConfig) -> list[str]:
    """mitmproxy `allow_hosts` regexes (matched against `host:port`) for the intercepted hosts."""
    out = []
    for entry in cfg.intercepted_hosts():
        host, port = _split(entry)
        out.append(f"^{re.escape(host)}:{port if port is not None else r'\d+'}$")
    return out
