"""The JSONL attempt log: one JSON object per line, one line per attempt.

Each line is written whole by one os.write to a file opened O_APPEND, under a lock that also
serialises the rotation by size, so concurrent flows never interleave and a crash never leaves
half a line. The write goes to the page cache: microseconds. (A writer thread cost ~0.3 ms of
the event loop per line, and the logging machinery of RotatingFileHandler tens of µs:
docs/BENCHMARKS.md.) Files are created 0600, as mitmproxy does its CA key: the lines tell who
used which provider and model, when, at what cost.
"""

from __future__ import annotations

import contextlib
import json
import os
import threading
from collections import deque
from collections.abc import Iterator
from pathlib import Path
from typing import Any

DEFAULT_MAX_BYTES = 50 * 1024 * 1024
DEFAULT_BACKUPS = 5
_FLAGS = os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC


class Journal:
    def __init__(
        self, path: str | Path, max_bytes: int = DEFAULT_MAX_BYTES, backups: int = DEFAULT_BACKUPS
    ) -> None:
        self.path = Path(path).expanduser()
        self.max_bytes, self.backups = max_bytes, backups
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._fd = -1
        self._size = 0
        self._open()

    def _open(self) -> None:
        self._fd = os.open(self.path, _FLAGS, 0o600)
        st = os.fstat(self._fd)
        if st.st_mode & 0o077:  # left readable by an older version: tighten it
            with contextlib.suppress(OSError):  # not ours to change: keep logging
                os.fchmod(self._fd, 0o600)
        self._size = st.st_size

    def _rotate(self) -> None:
        os.close(self._fd)
        for i in range(self.backups - 1, 0, -1):
            src = self.path.with_name(f"{self.path.name}.{i}")
            if src.exists():
                os.replace(src, self.path.with_name(f"{self.path.name}.{i + 1}"))
        os.replace(self.path, self.path.with_name(f"{self.path.name}.1"))
        self._open()

    def write(self, record: dict[str, Any]) -> None:
        # ASCII escapes: any valid JSON string (a lone surrogate included) survives the write.
        data = (json.dumps(record, separators=(",", ":")) + "\n").encode()
        with self._lock:
            if self._fd < 0:
                return
            if self._size and self._size + len(data) > self.max_bytes:
                self._rotate()
            view = memoryview(data)
            while view:  # a regular file takes it in one write; a short one is finished
                view = view[os.write(self._fd, view) :]
            self._size += len(data)

    def close(self) -> None:
        with self._lock:
            if self._fd >= 0:
                os.close(self._fd)
                self._fd = -1


def tail(
    path: str | Path, max_lines: int = 10_000, max_bytes: int = 16 * 1024 * 1024
) -> Iterator[dict[str, Any]]:
    """The last lines of a JSONL log (bounded in lines and bytes), oldest first.

    Bad or partial lines are skipped: this feeds a warm start, not an audit.
    """
    path = Path(path).expanduser()
    try:
        size = path.stat().st_size
        with path.open("rb") as f:
            f.seek(max(0, size - max_bytes))
            if size > max_bytes:
                f.readline()  # drop the partial first line
            lines: deque[bytes] = deque(f, maxlen=max_lines)
    except OSError:
        return
    for line in lines:
        try:
            obj = json.loads(line)
        except ValueError:
            continue
        if isinstance(obj, dict):
            yield obj


def default_path(confdir: str) -> str:
    return os.path.join(os.path.expanduser(confdir), "router.jsonl")
