"""A hint where clients fail silently: when a client's TLS handshake for an intercepted host
fails, one warning per client address naming the likely fix (phase 2 calls it from the
`tls_failed_client` hook). Plain data in, a message out.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

# mitmproxy's wording of a handshake a client broke off because it does not trust the CA.
_TRUST = ("unknown ca", "bad certificate", "certificate unknown", "does not trust",
          "may not trust", "connection closed")  # fmt: skip


class TlsHints:
    def __init__(self, max_addresses: int = 10_000) -> None:
        self._seen: set[str] = set()
        self._max = max_addresses

    def hint(
        self, client: str, sni: str | None, error: str, intercepted: Callable[[str], bool],
        confdir: Path,
    ) -> str | None:  # fmt: skip
        """The warning to log for this failure, or None (not ours, not about trust, or this
        client address was told already)."""
        if not sni or not intercepted(sni) or not any(t in error.lower() for t in _TRUST):
            return None
        if client in self._seen:
            return None
        if len(self._seen) >= self._max:  # a scan of many addresses must not grow this forever
            self._seen.clear()
        self._seen.add(client)
        ca, bundle = confdir / "mitmproxy-ca-cert.pem", confdir / "bundle.pem"
        return (
            f"router: client {client} broke off TLS for {sni}: it does not trust mitmproxy's CA "
            f"({error}). Claude Code and Node: NODE_EXTRA_CA_CERTS={ca}. Python SDKs: "
            f"SSL_CERT_FILE={bundle}. Codex: CODEX_CA_CERTIFICATE={bundle}. curl: --cacert "
            f"{bundle}. `make doctor` checks the setup (told once per client address)."
        )
