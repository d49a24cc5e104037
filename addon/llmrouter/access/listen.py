"""Safe by default: a router reachable from other machines must authenticate its users. Pure.

Without `access`, anyone who can reach the port spends the providers' keys. So the router
refuses to start on a non-loopback address unless `access` has users or `router_open=true`
says something else protects the port.
"""

from __future__ import annotations

import ipaddress


def is_loopback(host: str) -> bool:
    """`127.0.0.0/8`, `::1` (also bracketed or IPv4-mapped) and `localhost` are loopback.

    `""`, `0.0.0.0` and `::` listen on every interface; any other name may resolve anywhere.
    """
    h = host.strip().lower()
    if h.startswith("[") and h.endswith("]"):
        h = h[1:-1]
    if h in ("localhost", "localhost."):
        return True
    try:
        ip = ipaddress.ip_address(h.partition("%")[0])  # drop an IPv6 zone (`::1%lo`)
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped.is_loopback
    return ip.is_loopback


def open_proxy_error(listen_host: str, has_access: bool, router_open: bool) -> str | None:
    """Why the router must not start listening on `listen_host`, or None when it may."""
    if has_access or router_open or is_loopback(listen_host):
        return None
    where = repr(listen_host)
    if listen_host.strip() in ("", "0.0.0.0", "::", "[::]"):
        where += " (every interface)"
    return (
        f"router: refusing to listen on {where} without `access` users: anyone who can reach "
        "the port could spend the providers' keys.\n"
        "  - add users: python -m llmrouter.access add NAME --profiles default, and paste the "
        "lines it prints into profiles.yaml;\n"
        "  - or listen on this machine only: --listen-host 127.0.0.1;\n"
        "  - or, if something else protects the port: --set router_open=true"
    )
