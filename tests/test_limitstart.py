"""Spend survives a restart: the ledger rebuilt from the real journal files, rotated ones
included, summed per user and UTC day without holding the journal in memory."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from llmrouter.proxy.journal import Journal
from llmrouter.state.limits import Ledger, windows_for
from llmrouter.state.limitstart import journal_files, read_spend, rebuild


def at(*args: int) -> float:
    return datetime(*args, tzinfo=UTC).timestamp()  # type: ignore[misc]


def iso(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


NOW = at(2026, 11, 26, 12)


def line(user: str | None, cost: float | None, t: float, attempt: int = 1) -> dict[str, Any]:
    rec: dict[str, Any] = {"ts": iso(t), "request_id": "r", "attempt": attempt, "cost_usd": cost}
    if user is not None:
        rec["user"] = user
    return rec


class Lim:
    usd_per_day: float | None = 100
    usd_per_month: float | None = 1000
    rpm: int | None = 3


def spending(led: Ledger, user: str) -> tuple[int, int]:
    return led.spending(user, NOW)


def test_journal_files_oldest_first(tmp_path: Path) -> None:
    log = tmp_path / "router.jsonl"
    for name in ("router.jsonl", "router.jsonl.1", "router.jsonl.10", "router.jsonl.2",
                 "router.jsonl.bak", "other.jsonl.1"):  # fmt: skip
        (tmp_path / name).write_text("")
    assert [p.name for p in journal_files(log)] == [
        "router.jsonl.10",
        "router.jsonl.2",
        "router.jsonl.1",
        "router.jsonl",
    ]
    assert journal_files(tmp_path / "missing.jsonl") == []


async def test_rebuild_from_the_real_journal_with_rotation(tmp_path: Path) -> None:
    log = tmp_path / "router.jsonl"
    journal = Journal(log, max_bytes=400, backups=50)  # rotates every few lines
    for rec in [
        line("alice", 7.0, at(2026, 10, 31, 23)),  # last month
        line("alice", 1.0, at(2026, 11, 1, 0, 0, 1)),
        line("alice", 0.5, at(2026, 11, 25, 23, 59)),  # yesterday
        line("alice", 0.25, NOW - 3600),
        line("alice", 0.125, NOW - 3000, attempt=2),
        line("bob", 0.003, NOW - 30),
        line("bob", None, NOW - 20),  # unpriced, still a request for rpm
        line("bob", 0.001, NOW - 19, attempt=2),  # failover attempt: not another request
        line(None, 50.0, NOW - 10),  # a router without users
        {**line("carol", 0.001, NOW - 5), "charged_usd": 0.02},  # a stream cut before usage
    ]:
        journal.write(rec)
    journal.close()
    assert len(journal_files(log)) > 2  # the lines really are spread over rotated files
    led = Ledger()
    warning = await rebuild(led, log, NOW, backups=50)
    assert warning is None
    assert spending(led, "alice") == (375_000, 1_875_000)
    assert spending(led, "bob") == (4_000, 4_000)
    assert spending(led, "carol") == (20_000, 20_000)
    rpm = windows_for(Lim(), NOW)[2]
    assert (led.spent("bob", rpm), led.spent("alice", rpm)) == (2, 0)


async def test_bad_lines_are_skipped(tmp_path: Path) -> None:
    log = tmp_path / "router.jsonl"
    good = json.dumps(line("alice", 0.5, NOW - 60), separators=(",", ":"))
    log.write_bytes(
        b"\n".join(
            [
                b"not json",
                b'{"user":"alice","cost_usd":',  # cut by a crash
                b'["user":"alice"]',
                b"[1, 2]",
                b'{"user":"alice","cost_usd":9,"ts":"garbage"}',
                b'{"user":"alice","cost_usd":"9","ts":"2026-11-26T11:00:00Z"}',
                b'{"user":"' + b"x" * (2 << 20) + b'"}',  # a runaway line, read in pieces
                good.encode(),
                b"",
            ]
        )
    )
    led = Ledger()
    assert await rebuild(led, log, NOW, backups=5) is None
    assert spending(led, "alice") == (500_000, 500_000)


async def test_no_journal_yet(tmp_path: Path) -> None:
    led = Ledger()
    assert await rebuild(led, tmp_path / "router.jsonl", NOW, backups=5) is None
    assert spending(led, "alice") == (0, 0)


async def test_warns_when_rotation_dropped_part_of_the_month(tmp_path: Path) -> None:
    log = tmp_path / "router.jsonl"
    (tmp_path / "router.jsonl.1").write_text(json.dumps(line("alice", 1.0, NOW - 86400)) + "\n")
    log.write_text(json.dumps(line("alice", 1.0, NOW - 60)) + "\n")
    led = Ledger()
    warning = await rebuild(led, log, NOW, backups=1)  # the backups are full
    assert warning is not None and "may be undercounted" in warning
    assert spending(led, "alice") == (1_000_000, 2_000_000)  # json.dumps' spaces read too
    assert await rebuild(Ledger(), log, NOW, backups=5) is None  # nothing was dropped yet


def test_read_spend_sums_per_day_in_micro_dollars(tmp_path: Path) -> None:
    log = tmp_path / "router.jsonl"
    log.write_text(
        "".join(
            json.dumps(line("alice", 0.1, NOW - i), separators=(",", ":")) + "\n"
            for i in range(1000, 0, -1)  # oldest first, as written
        )
    )
    spend = read_spend(log, at(2026, 11, 1), NOW)
    day = int(NOW // 86400)
    assert spend.by_day == {("alice", day): 100_000_000}  # 1000 x $0.10, no float drift
    assert spend.oldest == NOW - 1000
