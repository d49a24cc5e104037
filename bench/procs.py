"""Processes for the benchmark: fake providers and mitmdumps on 127.0.0.1, each on a port the
OS picked, each started in its own session and stopped by its PID (never by name).
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
MITMDUMP = str(BIN / "mitmdump")
ROUTER_SCRIPT = str(ROOT / "addon" / "router.py")
BASELINE_SCRIPT = str(Path(__file__).resolve().with_name("baseline_rewrite.py"))

_PROXY_VARS = ("HTTPS_PROXY", "HTTP_PROXY", "ALL_PROXY", "https_proxy", "http_proxy", "all_proxy")


def free_port() -> int:
    """A port nothing listens on: connecting to it is refused."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def rss_kib(pid: int) -> int:
    """Resident set size of a process, from /proc/PID/status (KiB)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for pid {pid}")


class Proc:
    """One child process whose output goes to a log file, read for its listening address."""

    def __init__(self, name: str, cmd: list[str], log: Path, ready: str, env: dict[str, str]):
        self.name, self.cmd, self.log_path, self.ready = name, cmd, log, re.compile(ready)
        full_env = {k: v for k, v in os.environ.items() if k not in _PROXY_VARS}
        full_env.update(env)
        self._log = log.open("wb")
        self.proc = subprocess.Popen(
            cmd, stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True, env=full_env
        )
        self.port = 0

    @property
    def pid(self) -> int:
        return self.proc.pid

    def output(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def wait_ready(self, timeout: float = 60) -> int:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            m = self.ready.search(self.output())
            if m:
                self.port = int(m.group(1))
                return self.port
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited {self.proc.returncode}:\n{self.output()}")
            time.sleep(0.05)
        raise RuntimeError(f"{self.name} did not start within {timeout:g}s:\n{self.output()}")

    def alive(self) -> bool:
        return self.proc.poll() is None

    def stop(self) -> None:
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)
            except ProcessLookupError:
                pass
        self._log.close()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


class Procs:
    """Every process the benchmark started; `stop_all` ends them by PID, newest first."""

    def __init__(self, workdir: Path) -> None:
        self.dir = workdir
        self.confdir = workdir / "mitmconf"
        self.started: list[Proc] = []

    def fake(self, name: str, *args: str) -> Proc:
        cmd = [sys.executable, "-m", "llmrouter.tools.fakeprovider", "--name", name, "--port", "0"]
        ready = rf"fakeprovider {re.escape(name)} listening on http://127\.0\.0\.1:(\d+)"
        return self._start(f"fake-{name}", cmd + list(args), ready, {})

    def mitmdump(
        self, name: str, script: str, options: dict[str, Any], env: dict[str, str] | None = None
    ) -> Proc:
        cmd = [MITMDUMP, "-s", script, "--listen-host", "127.0.0.1", "--listen-port", "0",
               "--set", f"confdir={self.confdir}"]  # fmt: skip
        for key, value in options.items():
            cmd += ["--set", f"{key}={value}"]
        ready = r"proxy listening at 127\.0\.0\.1:(\d+)"
        return self._start(name, cmd, ready, env or {})

    def router(self, name: str, config: dict[str, Any], options: dict[str, Any]) -> Proc:
        path = self.dir / f"{name}.yaml"
        path.write_text(yaml.safe_dump(config, sort_keys=False))
        opts = {"router_config": path, "router_log": self.dir / f"{name}.jsonl", **options}
        return self.mitmdump(name, ROUTER_SCRIPT, opts)

    def _start(self, name: str, cmd: list[str], ready: str, env: dict[str, str]) -> Proc:
        p = Proc(name, cmd, self.dir / f"{name}.log", ready, env)
        self.started.append(p)
        return p

    def stop(self, p: Proc) -> None:
        p.stop()

    def stop_all(self) -> None:
        for p in reversed(self.started):
            try:
                p.stop()
            except Exception as e:  # keep stopping the others
                print(f"bench: could not stop {p.name} (pid {p.pid}): {e}", file=sys.stderr)


def make_ca(confdir: Path) -> Path:
    """Create mitmproxy's CA in `confdir` once, before several mitmdumps share it."""
    from mitmproxy.certs import CertStore

    confdir.mkdir(parents=True, exist_ok=True)
    CertStore.from_store(confdir, "mitmproxy", 2048)
    return confdir / "mitmproxy-ca-cert.pem"


def origin_ca(directory: Path) -> Any:
    """The e2e tests' TestCA (tests/routerproc.py), for the TLS "origin" host localhost."""
    tests = str(ROOT / "tests")
    if tests not in sys.path:
        sys.path.insert(0, tests)
    from routerproc import TestCA

    directory.mkdir(parents=True, exist_ok=True)
    return TestCA(directory)


def cpu_seconds(pid: int) -> float:
    """User + system CPU time a process has used, from /proc/PID/stat."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
