"""Spend survives a restart: read the JSONL journal (rotated files included) for the current
UTC month and the last minute, and rebuild the ledger from it.

Reading runs in a thread (the journal may hold a month of traffic); what it hands back is
already summed per user and UTC day, so memory stays small whatever the journal's size. The
ledger itself is only touched on the event loop.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from llmrouter.state.limits import (
    MICRO,
    RPM_SPAN,
    Ledger,
    charged_micro,
    journal_time,
    month_start,
)

_DAY = 86400.0
_MAX_LINE = 1 << 20  # a longer line is not one the router wrote
_HAS_USER = b'"user"'  # lines of a router without users lack it: no JSON parse


@dataclass(slots=True)
class Spend:
    """What the journal says, reduced: micro-USD per (user, UTC day), recent request times."""

    by_day: dict[tuple[str, int], int] = field(default_factory=dict)
    recent: list[tuple[str, float]] = field(default_factory=list)
    oldest: float | None = None  # the oldest line's time, in any file
    rotated: int = 0  # rotated files read

    def records(self) -> Iterator[dict[str, Any]]:
        """As journal-shaped records for `Ledger.rebuild`."""
        for (user, day), micro in self.by_day.items():
            yield {"user": user, "cost_usd": micro / MICRO, "ts": day * _DAY + 1.0}
        for user, t in self.recent:
            yield {"user": user, "cost_usd": None, "ts": t, "attempt": 1}


def journal_files(path: Path) -> list[Path]:
    """LOG.N ... LOG.1, then LOG: oldest first, those that exist."""
    rotated: list[tuple[int, Path]] = []
    if path.parent.is_dir():
        pattern = re.compile(re.escape(path.name) + r"\.(\d+)")
        for child in path.parent.iterdir():
            if (m := pattern.fullmatch(child.name)) and child.is_file():
                rotated.append((int(m.group(1)), child))
    files = [p for _, p in sorted(rotated, reverse=True)]
    return [*files, path] if path.is_file() else files


def read_spend(path: Path, since: float, now: float) -> Spend:
    """Sum the journal's costs per user and UTC day from `since`; keep the last minute's
    first attempts (one per request) for rpm. Unreadable lines are skipped."""
    spend = Spend()
    files = journal_files(path)
    spend.rotated = sum(1 for f in files if f != path)
    for file in files:
        try:
            with file.open("rb") as f:
                while line := f.readline(_MAX_LINE):
                    _take(spend, line, since, now)
        except OSError:
            continue
    return spend


def _take(spend: Spend, line: bytes, since: float, now: float) -> None:
    first = spend.oldest is None  # until one line tells the journal's oldest time
    if not first and _HAS_USER not in line:
        return  # most lines: no JSON parse
    try:
        rec = json.loads(line)
    except ValueError:
        return
    if not isinstance(rec, dict):
        return
    user, t = rec.get("user"), journal_time(rec.get("ts"))
    if first:
        spend.oldest = t
    if not isinstance(user, str) or not user or t is None or t < since:
        return
    cost = charged_micro(rec)
    if cost:
        key = (user, int(t // _DAY))  # Unix time has no leap seconds: UTC days are exact
        spend.by_day[key] = spend.by_day.get(key, 0) + cost
    if now - RPM_SPAN < t <= now and rec.get("attempt", 1) == 1:
        spend.recent.append((user, t))


async def rebuild(ledger: Ledger, path: Path, now: float, backups: int) -> str | None:
    """Rebuild `ledger` from the journal at `path`. Returns a warning when rotation may have
    dropped part of this month (then spend is undercounted: keep more or larger backups)."""
    since = min(month_start(now), now - RPM_SPAN)
    spend = await asyncio.to_thread(read_spend, path, since, now)
    ledger.rebuild(spend.records(), now)
    if spend.rotated >= backups and spend.oldest is not None and spend.oldest > since:
        return (
            "router: the journal's oldest line is newer than this month's start and older "
            "files were rotated away: this month's spend may be undercounted "
            "(raise router_log_backups or router_log_max_mb)"
        )
    return None
