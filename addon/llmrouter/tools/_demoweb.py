"""mitmweb for `make demo`: free ports, starting and stopping its process group, waiting for its
UI, making sure the router is loaded in it, and its CA.

Private helper of :mod:`llmrouter.tools.demo`.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import time
import urllib.request
from contextlib import suppress
from pathlib import Path


class DemoError(Exception):
    """A problem the user can fix (a busy port, mitmweb not starting): printed, exit 1."""


def web_url(output: str) -> str | None:
    """mitmweb 12 prints the UI's URL with a one-time token: the only URL that opens it."""
    if "proxy listening at" not in output:
        return None
    m = re.search(r"Web server listening at (\S+)", output)
    return m.group(1) if m else None


def port_free(port: int) -> bool:
    with socket.socket() as s:
        # Same flag as mitmproxy's listeners, so a port in TIME_WAIT counts as free.
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def check_ports(proxy_port: int, web_port: int) -> None:
    if proxy_port == web_port:
        raise DemoError(f"--proxy-port and --web-port are both {proxy_port}")
    for flag, port in (("--proxy-port", proxy_port), ("--web-port", web_port)):
        if not port_free(port):
            raise DemoError(
                f"port {port} on 127.0.0.1 is in use (another mitmproxy or demo?). "
                f"Pick another: make demo ARGS='{flag} {port + 10}'"
            )


def start_mitmweb(cmd: list[str], out: Path) -> subprocess.Popen[bytes]:
    with out.open("wb") as f:
        # Its own session: a terminal's Ctrl-C reaches only us, and we stop its whole group.
        return subprocess.Popen(cmd, stdout=f, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                start_new_session=True)  # fmt: skip


def stop_group(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(10)
            return
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
    with suppress(ProcessLookupError):  # leader gone, but a straggler of its group may live
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(10)


def wait_ready(proc: subprocess.Popen[bytes], out: Path, timeout: float = 30) -> str:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        text = out.read_text(errors="replace")
        url = web_url(text)
        if url:
            return url
        if proc.poll() is not None:
            raise DemoError(f"mitmweb exited with {proc.returncode}:\n{text.strip()}")
        time.sleep(0.1)
    raise DemoError(f"mitmweb did not start within {timeout:.0f}s; its output:\n{text.strip()}")


def check_router(url: str, config: Path) -> None:
    """Refuse to send anything unless the router is loaded: else mitmweb would pass the
    requests to the real api.anthropic.com."""
    base, _, query = url.partition("?token=")
    req = urllib.request.Request(base.rstrip("/") + "/options",
                                 headers={"Authorization": f"Bearer {query}"})  # fmt: skip
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # never via a proxy
    try:
        with opener.open(req, timeout=10) as resp:
            options = json.load(resp)
    except (OSError, ValueError) as e:
        raise DemoError(f"cannot ask mitmweb for its options: {e}") from None
    loaded = options.get("router_config", {}).get("value")
    if loaded != str(config):
        raise DemoError(f"the router addon is not loaded in mitmweb (router_config={loaded!r})")


def wait_ca(confdir: Path, timeout: float = 10) -> Path:
    ca = confdir / "mitmproxy-ca-cert.pem"
    end = time.monotonic() + timeout
    while not ca.exists():  # written by mitmweb at its first start
        if time.monotonic() > end:
            raise DemoError(f"mitmproxy's CA did not appear at {ca}")
        time.sleep(0.1)
    return ca
