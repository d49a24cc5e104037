"""The JSONL attempt log: one JSON object per line, one line per attempt.

Each line is written whole by one write and flush (stdlib RotatingFileHandler, which rotates by
size and serialises writers with its lock), so concurrent flows never interleave and a crash
never leaves half a line. The write goes to the page cache: microseconds, not worth the writer
thread we had, whose wake-up per line cost ~0.3 ms of the event loop's time (docs/BENCHMARKS.md).
"""

from __future__ import annotations

import json
import logging
import logging.handlers
import os
from collections import deque
from collections.abc import Iterator
from pathlib import Path
from typing import Any

DEFAULT_MAX_BYTES = 50 * 1024 * 1024
DEFAULT_BACKUPS = 5


class _PrivateFileHandler(logging.handlers.RotatingFileHandler):
    """Creates each log file 0600, as mitmproxy does its CA key: the lines tell who used which
    provider and model, when, at what cost. A file left 0644 by an older version is tightened."""

    def _open(self):  # type: ignore[no-untyped-def]
        fd = os.open(
            self.baseFilename, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600
        )
        try:
            if os.fstat(fd).st_mode & 0o077:
                os.fchmod(fd, 0o600)
        except OSError:
            pass  # not ours to change (another owner): keep logging
        return os.fdopen(fd, "a", encoding=self.encoding, errors=self.errors)


class Journal:
    def __init__(
        self, path: str | Path, max_bytes: int = DEFAULT_MAX_BYTES, backups: int = DEFAULT_BACKUPS
    ) -> None:
        self.path = Path(path).expanduser()
        self.max_bytes, self.backups = max_bytes, backups
        self.path.parent.mkdir(parents=True, exist_ok=True)
        handler = _PrivateFileHandler(
            self.path, maxBytes=max_bytes, backupCount=backups, encoding="utf-8"
        )
        handler.setFormatter(logging.Formatter("%(message)s"))
        # A private logger outside the logging tree: lines never reach mitmproxy's own log.
        self._logger = logging.Logger("llmrouter.journal")
        self._logger.propagate = False
        self._logger.addHandler(handler)
        self._handler = handler

    def write(self, record: dict[str, Any]) -> None:
        # ASCII escapes: any valid JSON string (a lone surrogate included) survives the write.
        self._logger.info(json.dumps(record, separators=(",", ":")))

    def close(self) -> None:
        self._handler.close()


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
