"""A real `redis-server` for tests: on a free loopback port, no persistence, stopped by PID.

Fault helpers act on that one process only: `kill()` (SIGKILL), `freeze()` / `thaw()` (SIGSTOP /
SIGCONT), `restart()` on the same port.
"""

from __future__ import annotations

import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

REDIS_SERVER = shutil.which("redis-server")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _pong(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2) as s:
            s.sendall(b"PING\r\n")
            return s.recv(16).startswith(b"+PONG")
    except OSError:
        return False


class RedisProc:
    def __init__(self, directory: Path) -> None:
        self.dir = directory
        self.dir.mkdir(parents=True, exist_ok=True)
        self.port = 0
        self.proc: subprocess.Popen[bytes] | None = None
        self.frozen = False

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, port: int | None = None) -> RedisProc:
        assert REDIS_SERVER, "redis-server is not installed (make redis)"
        for _ in range(5):  # a port picked free can be taken before redis binds it
            self.port = port or _free_port()
            log = open(self.dir / f"redis-{self.port}.log", "ab")  # noqa: SIM115 - child owns it
            self.proc = subprocess.Popen(
                [REDIS_SERVER, "--port", str(self.port), "--bind", "127.0.0.1",
                 "--save", "", "--appendonly", "no", "--dir", str(self.dir),
                 "--protected-mode", "yes"],
                stdout=log, stderr=subprocess.STDOUT,
            )  # fmt: skip
            log.close()
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline and self.proc.poll() is None:
                if _pong(self.port):
                    return self
                time.sleep(0.02)
            self._reap()
            if port is not None:
                break
        raise RuntimeError(f"redis-server did not start; see {self.dir}")

    def kill(self) -> None:
        """SIGKILL: gone at once, every connection reset."""
        if self.proc is not None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(5)
            self.proc, self.frozen = None, False

    def freeze(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGSTOP)
        self.frozen = True

    def thaw(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGCONT)
        self.frozen = False

    def restart(self) -> None:
        """A fresh, empty server on the same port (as after a crash without persistence)."""
        self.kill()
        self.start(self.port)

    def _reap(self) -> None:
        if self.proc is None:
            return
        if self.frozen:
            self.proc.send_signal(signal.SIGCONT)
            self.frozen = False
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.proc = None

    def stop(self) -> None:
        self._reap()


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisProc]:
    """A real redis-server for one test, stopped by PID after it."""
    if REDIS_SERVER is None:
        pytest.fail("redis-server is not installed: run `make redis` (make test does)")
    proc = RedisProc(tmp_path / "redis").start()
    try:
        yield proc
    finally:
        proc.stop()
