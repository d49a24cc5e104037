"""Real parts for end-to-end tests: a `mitmdump -s addon/router.py` subprocess, a test CA for TLS
origins, and the environment that points real clients at the router. Loopback only.
"""

from __future__ import annotations

import ipaddress
import json
import os
import re
import signal
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import yaml
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from llmrouter.tools.fakeprovider import FakeProvider
from mitmproxy.certs import CertStore

ROOT = Path(__file__).resolve().parents[1]
MITMDUMP = str(Path(sys.executable).with_name("mitmdump"))
SCRIPT = str(ROOT / "addon" / "router.py")


class TestCA:
    """A CA of our own for TLS origins on 127.0.0.1 (mitmproxy's CertStore makes it)."""

    __test__ = False

    def __init__(self, directory: Path) -> None:
        store = CertStore.from_store(directory, "testca", 2048)
        entry = store.get_cert(
            "localhost",
            [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))],
        )
        self.ca_pem = directory / "testca-ca-cert.pem"
        self.leaf = directory / "localhost.pem"
        key = entry.privatekey.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.NoEncryption(),
        )
        self.leaf.write_bytes(entry.cert.to_pem() + key)

    def server_context(self) -> ssl.SSLContext:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(self.leaf)
        return ctx


def free_port() -> int:
    """A port nothing listens on: connecting to it is refused."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def provider(target: FakeProvider | str, api: str = "anthropic", **extra: Any) -> dict[str, Any]:
    url = target if isinstance(target, str) else target.url
    return {"base_url": url, "api": api, **extra}


def stop_group(proc: subprocess.Popen[bytes], grace: float = 10) -> None:
    """Stop a process started in its own session, and its children, by its PID: SIGTERM, then
    SIGKILL after `grace` seconds."""
    if proc.poll() is not None:
        return
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(grace)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(grace)


class RouterProc:
    """One real mitmdump running the router, on a port the OS picked."""

    def __init__(self, tmp: Path, config: dict[str, Any] | str, test_ca: TestCA | None) -> None:
        self.dir = tmp
        tmp.mkdir(parents=True, exist_ok=True)
        self.conf = tmp / "conf"
        self.config_path = tmp / "profiles.yaml"
        self.log_path = tmp / "mitmdump.log"
        self.flows_path = tmp / "flows.mitm"
        self.jsonl_path = self.conf / "router.jsonl"
        self.bundle = tmp / "ca-bundle.pem"
        self.test_ca = test_ca
        self.write_config(config)
        self.proc: subprocess.Popen[bytes] | None = None
        self.port = 0

    def write_config(self, config: dict[str, Any] | str) -> None:
        text = config if isinstance(config, str) else yaml.safe_dump(config, sort_keys=False)
        tmp = self.config_path.with_suffix(".tmp")
        tmp.write_text(text)
        tmp.replace(self.config_path)  # atomic, like an editor's save

    def start(self, *options: str, env: dict[str, str] | None = None, wait: bool = True) -> None:
        cmd = [MITMDUMP, "-q" if "-q" in options else "-v", "-s", SCRIPT,
               "--listen-host", "127.0.0.1", "--listen-port", "0",
               "--set", f"confdir={self.conf}", "--set", f"router_config={self.config_path}",
               "-w", str(self.flows_path)]  # fmt: skip
        if self.test_ca is not None:  # the pass-through origins are TLS with our test CA
            cmd += ["--set", f"ssl_verify_upstream_trusted_ca={self.test_ca.ca_pem}"]
        cmd += [o for o in options if o != "-q"]
        full_env = {**os.environ, **(env or {})}
        for var in ("HTTPS_PROXY", "HTTP_PROXY", "ALL_PROXY", "https_proxy", "http_proxy"):
            full_env.pop(var, None)
        self._log = self.log_path.open("wb")
        self.proc = subprocess.Popen(
            cmd, stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True, env=full_env
        )
        if wait:
            self.port = self._wait_listening()
            ca = (self.conf / "mitmproxy-ca-cert.pem").read_text()
            extra = self.test_ca.ca_pem.read_text() if self.test_ca else ""
            self.bundle.write_text(ca + extra)

    def _wait_listening(self, timeout: float = 30) -> int:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            m = re.search(r"proxy listening at 127\.0\.0\.1:(\d+)", self.output())
            if m:
                return int(m.group(1))
            if self.proc is not None and self.proc.poll() is not None:
                raise RuntimeError(f"mitmdump exited {self.proc.returncode}:\n{self.output()}")
            time.sleep(0.05)
        raise RuntimeError(f"mitmdump did not start:\n{self.output()}")

    def wait_exit(self, timeout: float = 30) -> int:
        assert self.proc is not None
        return self.proc.wait(timeout)

    def output(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def stop(self) -> None:
        if self.proc is None:
            return
        stop_group(self.proc)
        self._log.close()
        self.proc = None

    @property
    def proxy(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def env(self, user: str | None = None) -> dict[str, str]:
        """What a user exports to route a client through the router."""
        proxy = f"http://{user}@127.0.0.1:{self.port}" if user else self.proxy
        return {"HTTPS_PROXY": proxy, "HTTP_PROXY": proxy, "SSL_CERT_FILE": str(self.bundle),
                "NO_PROXY": "", "no_proxy": ""}  # fmt: skip

    def lines(self) -> list[dict[str, Any]]:
        try:
            text = self.jsonl_path.read_text()
        except FileNotFoundError:
            return []
        return [json.loads(line) for line in text.splitlines() if line.strip()]

    def wait_lines(
        self, pred: Callable[[list[dict[str, Any]]], bool] | int, timeout: float = 10
    ) -> list[dict[str, Any]]:
        """JSONL lines are written by a thread once an attempt ends: wait for them."""
        check = pred if callable(pred) else (lambda ls: len(ls) >= pred)
        end = time.monotonic() + timeout
        while True:
            lines = self.lines()
            if check(lines) or time.monotonic() > end:
                return lines
            time.sleep(0.02)

    def flows(self) -> list[Any]:
        from mitmproxy import io

        with self.flows_path.open("rb") as f:
            return list(io.FlowReader(f).stream())


@contextmanager
def environ(values: dict[str, str]) -> Iterator[None]:
    """Set environment variables for clients made inside the block (SDKs read them then)."""
    old = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


# -- helpers shared by the end-to-end test files ---------------------------------------------


def on_localhost(fake: FakeProvider) -> str:
    """A TLS fake's URL under the name the test profiles intercept (`localhost`)."""
    return fake.url.replace("127.0.0.1", "localhost")


def anthropic_client(
    r: RouterProc, origin: FakeProvider, *, user: str | None = None, aio: bool = False, **kw: Any
) -> Any:
    """An official anthropic SDK client for `origin`, routed through `r` (no SDK retries)."""
    import anthropic

    cls = anthropic.AsyncAnthropic if aio else anthropic.Anthropic
    with environ(r.env(user)):  # the SDK's httpx client reads the proxy settings now
        base = {"base_url": on_localhost(origin), "api_key": "client-key", "max_retries": 0}
        return cls(**{**base, **kw})


def openai_client(
    r: RouterProc, origin: FakeProvider, *, user: str | None = None, **kw: Any
) -> Any:
    import openai

    with environ(r.env(user)):
        return openai.OpenAI(
            base_url=on_localhost(origin) + "/v1",
            **{"api_key": "client-key", "max_retries": 0, **kw},
        )


def curl(
    r: RouterProc, url: str, *args: str, user: str | None = None, cacert: Path | None = None
) -> subprocess.CompletedProcess[bytes]:
    """curl through the router; trusts the router's bundle unless `cacert` is given."""
    cmd = ["curl", "-sS", "--cacert", str(cacert or r.bundle), *args, url]
    env = {"PATH": "/usr/bin:/bin", **r.env(user)}
    return subprocess.run(cmd, capture_output=True, env=env, timeout=30, check=False)


def wait_for(pred: Callable[[], bool], timeout: float = 5.0) -> bool:
    end = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > end:
            return False
        time.sleep(0.05)
    return True
