"""The README's report commands, run literally against a log written the way the router writes
it (`Attempt.record()`), so they cannot drift from what works: exit 0, no stderr.

`make` runs with `-f` and `VENV` pointing at this checkout from a temporary directory (so that
`--html report.html` lands there), and `-o` so that it never reinstalls the environment.
"""

from __future__ import annotations

import json
import re
import shlex
import subprocess
import sys
import time
from pathlib import Path

import pytest
from llmrouter.proxy.attempt import Attempt, Ctx
from llmrouter.wire.apis import Usage
from llmrouter.wire.outcome import Outcome

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text(encoding="utf-8")
VENV = Path(sys.executable).parents[1]  # the environment running the tests
REPORT = re.compile(r"^(make report\b.*|\.venv/bin/python -m llmrouter\.report\b.*)$")


def readme_report_commands() -> list[str]:
    """Every report command line in the README's bash blocks, without its trailing comment."""
    found = []
    for block in re.findall(r"```bash\n(.*?)```", README, re.S):
        for line in block.splitlines():
            m = REPORT.match(line.strip())
            if m:
                found.append(re.sub(r"\s+#.*$", "", m.group(1)))
    return found


def runnable(cmd: str) -> str:
    """The README line, pointed at this checkout: only the make flags and the venv path change."""
    if cmd.startswith("make "):
        make = f"make -s -f {ROOT / 'Makefile'} VENV={VENV} -o {VENV / '.installed'}"
        return make + cmd.removeprefix("make")
    return shlex.quote(str(VENV)) + cmd.removeprefix(".venv")


def _line(rid: str, n: int, provider: str, status: int, outcome: Outcome, **usage: int) -> str:
    ctx = Ctx(rid, "default", "failover", "anthropic", "claude-sonnet-4-5", True, 0.0)
    ctx.candidates, ctx.reason = ["anthropic", "backup"], "failover: configured order"
    a = Attempt(ctx, n, provider, f"{provider} https://x", False, t0=0.0, wall=time.time() - 60)
    a.model, a.status, a.final = "claude-sonnet-4-5", status, outcome is Outcome.OK
    a.ttfb, a.ttft = 0.2, (0.4 if outcome is Outcome.OK else None)
    a.usage = Usage(**usage) if usage else Usage()
    a.end(outcome, None if outcome is Outcome.OK else f"HTTP {status}", ended=1.5)
    return json.dumps(a.record())


@pytest.fixture
def home(tmp_path: Path) -> Path:
    """A HOME whose ~/.mitmproxy/router.jsonl holds a failover and two served requests."""
    log = tmp_path / ".mitmproxy" / "router.jsonl"
    log.parent.mkdir()
    backup = {"input_tokens": 1200, "output_tokens": 80, "cache_read_tokens": 1000}
    direct = {"input_tokens": 900, "output_tokens": 40, "cache_write_tokens": 800}
    lines = [
        _line("r1", 1, "anthropic", 529, Outcome.HTTP_ERROR),
        _line("r1", 2, "backup", 200, Outcome.OK, **backup),
        _line("r2", 1, "anthropic", 200, Outcome.OK, **direct),
    ]
    log.write_text("\n".join(lines) + "\n")
    return tmp_path


def _run(cmd: str, home: Path) -> subprocess.CompletedProcess[str]:
    env = {"HOME": str(home), "PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"}
    return subprocess.run(["bash", "-o", "pipefail", "-c", cmd], cwd=home, env=env,
                          capture_output=True, text=True, timeout=120, check=False)  # fmt: skip


def test_the_readme_names_its_report_commands() -> None:
    assert readme_report_commands() == [
        "make report",
        'make report ARGS="--since 24h --html report.html"',
        ".venv/bin/python -m llmrouter.report ~/.mitmproxy/router.jsonl --since 7d",
    ]
    assert "(`make report | head`)" in README


@pytest.mark.parametrize("cmd", readme_report_commands())
def test_readme_report_command_runs(cmd: str, home: Path) -> None:
    out = _run(runnable(cmd), home)
    assert out.returncode == 0 and out.stderr == "", out
    assert "backup" in out.stdout and "anthropic" in out.stdout, out.stdout
    assert "Prompt cache by provider" in out.stdout  # the cache view, from real lines
    if "--html report.html" in cmd:
        page = (home / "report.html").read_text()
        assert page.startswith("<!doctype html>") and "<svg" in page


def test_a_closed_pipe_ends_the_report_quietly(home: Path) -> None:
    out = _run(runnable("make report") + " | head -3", home)
    assert out.returncode == 0 and out.stderr == "", out
    assert len(out.stdout.splitlines()) == 3


def test_no_proxy_url_with_a_user_but_no_password_is_recommended() -> None:
    """Claude Code fails every request with `user@` in HTTPS_PROXY: the docs say `user:x@`."""
    for name in ("README.md", "profiles.yaml"):
        text = (ROOT / name).read_text(encoding="utf-8")
        bad = re.findall(r"https?://[\w.-]+@", text)
        assert not bad, f"{name} recommends a proxy URL without a password: {bad}"


def test_the_readme_shows_the_log_lines_the_router_writes() -> None:
    source = "".join(
        (ROOT / "addon" / "llmrouter" / "proxy" / n).read_text() for n in ("reload.py", "addon.py")
    )
    for line in ("router: reloaded ", "router: config not reloaded, keeping the last good one:"):
        assert line in README and line in source, line
