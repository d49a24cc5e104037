"""Hot reload: watch router_config and swap in each edit that validates.

Polling a stat() twice a second is cheap, needs no extra dependency, and works on every file
system and editor save pattern (rename-over, truncate-and-write).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import Callable
from pathlib import Path

from llmrouter.config import ConfigError, RouterConfig, load_config

logger = logging.getLogger("llmrouter")
POLL = 0.5


def _stamp(path: Path) -> tuple[int, int, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_ino, st.st_mtime_ns, st.st_size


class ConfigWatcher:
    """Reloads the file on change. `on_change` may refuse a config by raising ConfigError."""

    def __init__(self, on_change: Callable[[RouterConfig], None]) -> None:
        self._on_change = on_change
        self._path: Path | None = None
        self._stamp: tuple[int, int, int] | None = None
        self._task: asyncio.Task[None] | None = None

    def watch(self, path: str) -> None:
        """The file just loaded; later changes to it are reloaded."""
        self._path = Path(path).expanduser()
        self._stamp = _stamp(self._path)

    def start(self) -> None:
        self._task = asyncio.create_task(self._poll())

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            # Whatever ended the task must not skip the rest of the shutdown.
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task

    async def _poll(self) -> None:
        while True:
            await asyncio.sleep(POLL)
            path = self._path
            if path is None:
                continue
            stamp = _stamp(path)
            if stamp == self._stamp or stamp is None:
                continue  # unchanged, or mid-save (rename): look again next tick
            self._stamp = stamp
            try:
                cfg = await asyncio.to_thread(load_config, path)
                if path != self._path:
                    continue  # router_config changed meanwhile: that file was loaded already
                self._on_change(cfg)
            except ConfigError as e:
                logger.error(f"router: config not reloaded, keeping the last good one:\n{e}")
                continue
            except Exception:  # the watcher must outlive any bad edit
                logger.exception("router: config not reloaded, keeping the last good one")
                continue
            logger.info(f"router: reloaded {path}")
