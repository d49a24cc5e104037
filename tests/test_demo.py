"""`make demo` for real: fakes, mitmweb and the anthropic SDK on 127.0.0.1. The demo serves every
request, shows failovers, and leaves no process behind whether it stops by itself or on Ctrl-C.
A temp confdir (and HOME) keeps ~/.mitmproxy untouched.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from llmrouter.config import load_config
from llmrouter.tools import _demoweb, demo

pytestmark = pytest.mark.e2e


def two_free_ports() -> tuple[int, int]:
    with socket.socket() as a, socket.socket() as b:  # both bound at once: never the same
        a.bind(("127.0.0.1", 0))
        b.bind(("127.0.0.1", 0))
        return a.getsockname()[1], b.getsockname()[1]


class DemoRun:
    """`python -m llmrouter.demo` as a subprocess, its output in a file (no pipe to fill)."""

    def __init__(self, tmp: Path, *extra: str) -> None:
        self.conf = tmp / "conf"
        self.out_path = tmp / "demo.out"
        proxy_port, web_port = two_free_ports()
        cmd = [sys.executable, "-m", "llmrouter.tools.demo", "--requests", "6",
               "--proxy-port", str(proxy_port), "--web-port", str(web_port),
               "--confdir", str(self.conf), *extra]  # fmt: skip
        env = {**os.environ, "HOME": str(tmp)}
        with self.out_path.open("wb") as out:
            self.proc = subprocess.Popen(
                cmd, stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True
            )

    def output(self) -> str:
        return self.out_path.read_text(errors="replace")

    def wait_for(self, text: str, timeout: float = 60) -> None:
        end = time.monotonic() + timeout
        while text not in self.output():
            assert self.proc.poll() is None, f"demo exited early:\n{self.output()}"
            assert time.monotonic() < end, f"no {text!r} within {timeout}s:\n{self.output()}"
            time.sleep(0.1)

    def kill(self) -> None:
        """Test clean-up only: whatever the demo failed to stop dies here, by group."""
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)
        for pid in processes_mentioning(str(self.conf)):
            os.killpg(os.getpgid(pid), signal.SIGKILL)


def processes_mentioning(text: str) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if text in cmdline:
            found.append(int(entry.name))
    return found


def assert_nothing_left(run: DemoRun) -> None:
    out = run.output()
    m = re.search(r"demo: mitmweb pid (\d+) \(profile (\S+)/profiles\.yaml", out)
    assert m, out
    with pytest.raises(ProcessLookupError):
        os.kill(int(m.group(1)), 0)
    assert processes_mentioning(str(run.conf)) == []
    assert not Path(m.group(2)).exists(), "the demo's temp dir was left behind"


def assert_client_story(out: str) -> None:
    lines = re.findall(r"^#(\d+) +(flaky|steady) +attempts=(\d) +(.*)$", out, re.M)
    assert [int(n) for n, *_ in lines] == [1, 2, 3, 4, 5, 6], out
    for _, provider, _attempts, rest in lines:
        assert f"Hello from {provider}." in rest
    failovers = [rest for _, _, attempts, rest in lines if int(attempts) > 1]
    assert failovers, f"no failover shown:\n{out}"
    assert all("flaky" in r and "-> steady ok" in r for r in failovers)
    assert f"{demo.DONE}: 6 served" in out


@pytest.fixture
def runs(tmp_path: Path) -> Iterator[list[DemoRun]]:
    started: list[DemoRun] = []
    yield started
    for run in started:
        run.kill()


@pytest.mark.timeout(90)
def test_demo_runs_the_client_and_exits_cleanly(tmp_path: Path, runs: list[DemoRun]) -> None:
    run = DemoRun(tmp_path, "--exit-after-client")
    runs.append(run)
    assert run.proc.wait(75) == 0, run.output()
    out = run.output()
    assert_client_story(out)
    assert "demo: mitmweb UI http://127.0.0.1:" in out and "?token=" in out
    assert (run.conf / "mitmproxy-ca-cert.pem").exists()  # the temp confdir, not ~/.mitmproxy
    assert_nothing_left(run)


@pytest.mark.timeout(90)
def test_demo_stops_cleanly_on_ctrl_c(tmp_path: Path, runs: list[DemoRun]) -> None:
    run = DemoRun(tmp_path)
    runs.append(run)
    run.wait_for("Press Ctrl-C to stop everything.")
    assert "router.explain @focus" in run.output()
    os.kill(run.proc.pid, signal.SIGINT)
    assert run.proc.wait(10) == 0, run.output()
    assert "demo: stopped" in run.output()
    assert_nothing_left(run)
    # The follow-up the demo suggests still works after Ctrl-C: the log outlived the demo, and
    # the command names a Python that has the router (not whatever `python` is on PATH).
    follow_up = re.search(r"its report:\n  (.+)\n", run.output())
    assert follow_up, run.output()
    assert str(run.conf / demo.LOG_NAME) in follow_up.group(1)
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}
    report = subprocess.run(
        ["bash", "-c", follow_up.group(1)], capture_output=True, timeout=60, env=env, check=False
    )
    assert report.returncode == 0 and not report.stderr, report
    assert b"flaky" in report.stdout and b"steady" in report.stdout


# -- the pure parts, no processes ---------------------------------------------------------


def test_demo_profile_is_valid_and_tries_flaky_first(tmp_path: Path) -> None:
    path = tmp_path / "profiles.yaml"
    path.write_text(demo.demo_config("http://127.0.0.1:1111", "http://127.0.0.1:2222"))
    cfg = load_config(str(path))
    profile = cfg.profiles[demo.PROFILE]
    assert profile.providers == ["flaky", "steady"] and profile.strategy == "failover"
    assert profile.hosts == ["api.anthropic.com"]
    urls = {name: p.base_url for name, p in cfg.providers.items()}
    assert urls == {"flaky": "http://127.0.0.1:1111", "steady": "http://127.0.0.1:2222"}
    for p in cfg.providers.values():
        assert p.api_key is not None and p.api_key.get_secret_value().startswith("demo-key")


def test_mitmweb_command() -> None:
    cmd = demo.mitmweb_cmd(Path("/t/p.yaml"), Path("/t/r.jsonl"), 18080, 18081, Path("/t/c"))
    joined = " ".join(cmd)
    for part in ("--listen-host 127.0.0.1", "-p 18080", "web_port=18081",
                 "web_open_browser=false", "router_config=/t/p.yaml", "router_log=/t/r.jsonl",
                 "router_profile=demo", "confdir=/t/c", "web_columns=comment"):  # fmt: skip
        assert part in joined
    assert "confdir" not in " ".join(demo.mitmweb_cmd(Path("p"), Path("r"), 1, 2, None))


def test_web_url_needs_both_listeners() -> None:
    web = "[01:31:23.199] Web server listening at http://127.0.0.1:8081/?token=abc123\n"
    assert _demoweb.web_url(web) is None
    proxy = "[01:31:23.196] HTTP(S) proxy listening at 127.0.0.1:8080.\n"
    assert _demoweb.web_url(proxy + web) == "http://127.0.0.1:8081/?token=abc123"


def test_chain_orders_attempts() -> None:
    lines = [
        {"provider": "steady", "attempt": 2, "outcome": "ok", "status": 200},
        {"provider": "flaky", "attempt": 1, "outcome": "http_error", "status": 529},
    ]
    assert demo.chain(lines) == "flaky 529 -> steady ok"
    assert demo.chain([{"provider": "flaky", "attempt": 1, "outcome": "timeout"}]) == (
        "flaky timeout"
    )


def test_busy_port_is_a_clear_error() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        with pytest.raises(demo.DemoError, match=f"port {port} on 127.0.0.1 is in use"):
            demo.check_ports(port, port + 1 if port < 65535 else port - 1)
    with pytest.raises(demo.DemoError, match="both"):
        demo.check_ports(18080, 18080)
