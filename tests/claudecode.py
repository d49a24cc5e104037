"""Claude Code, the CLI our users run, as a client of the router in end-to-end tests.

`claude -p` (pinned in package.json, installed by `make claude`) runs offline against fake
providers: its API base is the TLS `origin` fixture on https://localhost (which the test
profiles intercept), its proxy is the router, it trusts the router's CA bundle, its key is a
dummy and its HOME a temporary directory. Each run is its own process group, killed by PID
when it outlives its timeout.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from llmrouter.tools.fakeprovider import FakeProvider
from routerproc import ROOT, RouterProc, on_localhost

CLAUDE = ROOT / "node_modules" / ".bin" / "claude"


def available() -> bool:
    return CLAUDE.exists() and shutil.which("node") is not None


@dataclass
class Run:
    returncode: int
    stdout: str
    stderr: str

    @property
    def json(self) -> dict[str, Any]:
        """The `--output-format json` result of `claude -p`."""
        return json.loads(self.stdout)


class ClaudeCode:
    """`claude -p` through a router, one process per run."""

    def __init__(self, router: RouterProc, origin: FakeProvider, home: Path) -> None:
        self.router = router
        self.origin = origin
        self.home = home
        home.mkdir(parents=True, exist_ok=True)

    def env(self, user: str | None = None) -> dict[str, str]:
        proxy = self.router.env(user)["HTTPS_PROXY"]
        return {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(self.home),
            "ANTHROPIC_BASE_URL": on_localhost(self.origin),
            "ANTHROPIC_API_KEY": "dummy",
            "HTTPS_PROXY": proxy,
            "HTTP_PROXY": proxy,
            "NO_PROXY": "",
            "no_proxy": "",
            "NODE_EXTRA_CA_CERTS": str(self.router.bundle),
            "DISABLE_AUTOUPDATER": "1",
            "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
        }

    def start(
        self, prompt: str, *args: str, cwd: Path | None = None, user: str | None = None
    ) -> Process:
        """Start `claude -p PROMPT --output-format json ARGS...` in its own process group."""
        cmd = [str(CLAUDE), "-p", prompt, "--output-format", "json", *args]
        popen = subprocess.Popen(
            cmd,
            cwd=cwd or self.home,
            env=self.env(user),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,  # its own group: node may start children
        )
        return Process(popen)

    def run(
        self,
        prompt: str,
        *args: str,
        cwd: Path | None = None,
        timeout: float = 120,
        user: str | None = None,
    ) -> Run:
        """Run to the end; an AssertionError (and the process group killed) past `timeout`."""
        return self.start(prompt, *args, cwd=cwd, user=user).wait(timeout)


class Process:
    """One running `claude -p`."""

    def __init__(self, popen: subprocess.Popen[bytes]) -> None:
        self.popen = popen

    @property
    def pid(self) -> int:
        return self.popen.pid

    def wait(self, timeout: float) -> Run:
        try:
            out, err = self.popen.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            out, err = self.popen.communicate()
            raise AssertionError(
                f"claude -p did not finish within {timeout}s\nstdout: {out.decode()[-2000:]}\n"
                f"stderr: {err.decode()[-2000:]}"
            ) from None
        return Run(self.popen.returncode, out.decode(errors="replace"),
                   err.decode(errors="replace"))  # fmt: skip

    def kill(self) -> None:
        """Kill its process group, by the PID it was started with."""
        if self.popen.poll() is None:
            os.killpg(self.popen.pid, signal.SIGKILL)
