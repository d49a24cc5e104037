"""The JSONL attempt log as the Router uses it: its options, and the file they name.

`router_log` (default: router.jsonl in mitmproxy's confdir), `router_log_max_mb` and
`router_log_backups`; a change to any of them (or to confdir) reopens the log, unless it names
the file already open. The Router calls `load` and `configure` itself, so that its start-up
error handling covers these options too.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mitmproxy import ctx, exceptions

from llmrouter.proxy import journal

_REOPEN = frozenset({"router_log", "confdir", "router_log_max_mb", "router_log_backups"})


class AttemptLog:
    def __init__(self) -> None:
        self.journal: journal.Journal | None = None

    def load(self, loader: Any) -> None:
        loader.add_option(
            "router_log",
            str,
            "",
            "JSONL attempt log. Default: router.jsonl in mitmproxy's confdir.",
        )
        loader.add_option(
            "router_log_max_mb", int, 50, "Rotate the JSONL log when it reaches this size (MB)."
        )
        loader.add_option("router_log_backups", int, 5, "Rotated JSONL files to keep.")

    def configure(self, updated: set[str]) -> None:
        if updated & {"router_log_max_mb", "router_log_backups"} and (
            ctx.options.router_log_max_mb < 1 or ctx.options.router_log_backups < 1
        ):
            raise exceptions.OptionsError("router_log_max_mb and router_log_backups must be >= 1")
        if updated & _REOPEN:
            self._open()

    def write(self, record: dict[str, Any]) -> None:
        if self.journal is not None:
            self.journal.write(record)

    def close(self) -> None:
        if self.journal is not None:
            self.journal.close()
            self.journal = None

    def _open(self) -> None:
        path = Path(ctx.options.router_log or journal.default_path(ctx.options.confdir))
        max_bytes, backups = (
            ctx.options.router_log_max_mb * 1024 * 1024,
            ctx.options.router_log_backups,
        )
        if self.journal is not None:
            j = self.journal
            if (j.path, j.max_bytes, j.backups) == (path.expanduser(), max_bytes, backups):
                return
            j.close()
        self.journal = journal.Journal(path, max_bytes, backups)
