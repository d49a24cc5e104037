"""The TLS-failure hint: once per client address, only for intercepted hosts and trust errors."""

from __future__ import annotations

from pathlib import Path

from llmrouter.proxy.tlshint import TlsHints


def ours(host: str) -> bool:
    return host in ("api.anthropic.com", "api.openai.com")


def test_one_hint_per_client_address() -> None:
    hints, conf = TlsHints(), Path("/home/u/.mitmproxy")
    err = "The client does not trust the proxy's certificate for api.anthropic.com (unknown ca)"
    msg = hints.hint("10.0.0.5", "api.anthropic.com", err, ours, conf)
    assert msg is not None
    assert "NODE_EXTRA_CA_CERTS=/home/u/.mitmproxy/mitmproxy-ca-cert.pem" in msg
    assert "SSL_CERT_FILE=/home/u/.mitmproxy/bundle.pem" in msg and "make doctor" in msg
    assert hints.hint("10.0.0.5", "api.openai.com", err, ours, conf) is None  # told already
    assert hints.hint("10.0.0.6", "api.openai.com", err, ours, conf) is not None


def test_no_hint_for_other_hosts_or_errors() -> None:
    hints, conf = TlsHints(), Path("/c")
    assert hints.hint("1.2.3.4", "example.com", "tlsv1 alert unknown ca", ours, conf) is None
    assert hints.hint("1.2.3.4", None, "tlsv1 alert unknown ca", ours, conf) is None
    versions = "Client and mitmproxy cannot agree on a TLS version to use."
    assert hints.hint("1.2.3.4", "api.anthropic.com", versions, ours, conf) is None


def test_bounded() -> None:
    hints = TlsHints(max_addresses=3)
    for i in range(10):
        assert hints.hint(f"10.0.0.{i}", "api.anthropic.com", "unknown ca", ours, Path("/c"))
    assert len(hints._seen) <= 3
