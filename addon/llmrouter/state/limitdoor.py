"""The one door to users' limits that the engine holds (`Engine.limits`), and its local kind.

`LocalLimits` is this instance's `limits.Ledger` behind an async `reserve`, with the spend
rebuilt from the journal at start-up. The Redis backend has its own door
(`redisbackend.SharedLimits`): the same calls, the cluster's counters. Either way the request
path reserves through `StateBackend.begin` (one round trip with the conversation's binding)
and books through the door's `settle` and `release`.
"""

from __future__ import annotations

import asyncio
import logging
import time
from pathlib import Path
from typing import Protocol

from llmrouter.state import limitstart
from llmrouter.state.limits import Denial, Grant, Ledger, Window
from llmrouter.state.limittypes import Reservation

logger = logging.getLogger("llmrouter")


class LedgerView(Protocol):
    """What router.status and /status read of users' spend (limits.Ledger's methods)."""

    def spent(self, user: str, window: Window) -> int: ...
    def reserved(self, user: str, window: Window) -> int: ...
    def spending(self, user: str, now_unix: float) -> tuple[int, int]: ...
    def holding(self, user: str) -> int: ...


class LimitsDoor(Protocol):
    ledger: LedgerView
    ready: asyncio.Event  # cleared while a request must wait for the spend (start-up)

    async def reserve(self, r: Reservation, now_unix: float) -> Grant | Denial: ...
    def settle(self, grant: Grant, actual_micro: int, now_unix: float) -> None: ...
    def release(self, grant: Grant, now_unix: float) -> None: ...
    def rebuilding(self, path: Path, backups: int) -> asyncio.Task[None] | None: ...


class LocalLimits:
    """This instance's budgets and rates: the local Ledger behind an async `reserve`."""

    def __init__(self, ledger: Ledger | None = None) -> None:
        self.ledger = ledger if ledger is not None else Ledger()
        self.ready = asyncio.Event()  # cleared while the spend is rebuilt from the journal
        self.ready.set()

    async def reserve(self, r: Reservation, now_unix: float) -> Grant | Denial:
        if not self.ready.is_set():  # a request at start-up waits for the journal's spend
            await self.ready.wait()
            now_unix = time.time()
        # One synchronous step from here: no other request can slip in between check and hold.
        return self.ledger.reserve(r.user, r.windows, r.amount, now_unix)

    def settle(self, grant: Grant, actual_micro: int, now_unix: float) -> None:
        self.ledger.settle(grant, actual_micro, now_unix)

    def release(self, grant: Grant, now_unix: float) -> None:
        self.ledger.release(grant, now_unix)

    def rebuilding(self, path: Path, backups: int) -> asyncio.Task[None]:
        """Rebuild the spend from the journal in the background; `reserve` waits until done.
        `ready` is cleared now, before any request can reserve."""
        self.ready.clear()
        return asyncio.create_task(self._rebuild(path, backups))

    async def _rebuild(self, path: Path, backups: int) -> None:
        try:
            warn = await limitstart.rebuild(self.ledger, path, time.time(), backups)
            if warn:
                logger.warning(warn)
        except Exception:  # budgets then start from zero: say so loudly, never hang requests
            logger.exception("router: spend not rebuilt from the journal; budgets start at 0")
        finally:
            self.ready.set()
