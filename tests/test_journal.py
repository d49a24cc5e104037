"""The JSONL log: whole lines under concurrency, size rotation, a bounded tail, warm start;
and the engine state a reload keeps or lifts."""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from llmrouter.config import parse_config
from llmrouter.proxy.dispatch import Engine, provider_key
from llmrouter.proxy.journal import Journal, default_path, tail
from llmrouter.state.warmstart import warm_start
from llmrouter.wire.outcome import Failure


def test_concurrent_writers_never_interleave_lines(tmp_path: Path) -> None:
    j = Journal(tmp_path / "log.jsonl")
    payload = "x" * 3000  # longer than a pipe buffer's atomic write, to catch interleaving

    def writer(n: int) -> None:
        for i in range(200):
            j.write({"writer": n, "i": i, "payload": payload})

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    j.close()
    lines = (tmp_path / "log.jsonl").read_text().splitlines()
    assert len(lines) == 1600
    records = [json.loads(line) for line in lines]
    assert all(r["payload"] == payload for r in records)
    assert {(r["writer"], r["i"]) for r in records} == {
        (n, i) for n in range(8) for i in range(200)
    }


def test_rotates_by_size_and_keeps_the_configured_number_of_files(tmp_path: Path) -> None:
    j = Journal(tmp_path / "log.jsonl", max_bytes=10_000, backups=3)
    for i in range(500):
        j.write({"i": i, "pad": "y" * 100})
    j.close()
    files = sorted(p.name for p in tmp_path.iterdir())
    assert files == ["log.jsonl", "log.jsonl.1", "log.jsonl.2", "log.jsonl.3"]
    for p in tmp_path.iterdir():
        assert p.stat().st_size <= 10_000
        assert all(json.loads(line)["pad"] for line in p.read_text().splitlines())


def test_tail_is_bounded_and_skips_bad_lines(tmp_path: Path) -> None:
    path = tmp_path / "log.jsonl"
    good = [json.dumps({"i": i}) for i in range(100)]
    path.write_text("\n".join([*good[:50], "{not json", "[1, 2]", *good[50:]]) + '\n{"half":')
    assert [r["i"] for r in tail(path, max_lines=10)] == list(range(91, 100))
    assert len(list(tail(path))) == 100
    assert list(tail(tmp_path / "missing.jsonl")) == []
    assert default_path("~/.mitmproxy").endswith("/.mitmproxy/router.jsonl")


async def test_warm_start_makes_latency_survive_a_restart(tmp_path: Path) -> None:
    cfg = parse_config(
        {
            "providers": {"a": {"base_url": "http://127.0.0.1:9", "api": "anthropic"}},
            "profiles": {"p": {"hosts": ["x"], "providers": ["a"], "strategy": "least-latency"}},
        }
    )
    now = datetime.now(UTC).isoformat().replace("+00:00", "Z")
    path = tmp_path / "log.jsonl"
    line = {"ts": now, "provider": "a", "profile": "p", "model": "m", "stream": True,
            "outcome": "ok", "ttft_ms": 250.0, "total_ms": 900.0, "output_tokens": 20,
            "input_tokens": 300, "cache_read_tokens": None}  # fmt: skip
    path.write_text("\n".join(json.dumps(line) for _ in range(6)) + "\n")

    class NoSession:
        async def close(self) -> None: ...

    engine = Engine(NoSession(), lambda record: None)  # type: ignore[arg-type]
    engine.apply_config(cfg)
    assert await warm_start(engine, cfg, path) == 6
    series = engine.latency.get(provider_key("a", cfg.providers["a"]), "m", True)
    assert series is not None and len(series.samples) == 6
    assert engine.mixes["p"] is not None


def test_a_reload_with_a_new_key_lifts_that_providers_auth_cooldown() -> None:
    def cfg(key: str) -> Any:
        return parse_config({
            "providers": {"a": {"base_url": "http://127.0.0.1:9", "api": "anthropic",
                                "api_key": key}},
            "profiles": {"p": {"hosts": ["x"], "providers": ["a"]}},
        })  # fmt: skip

    class NoSession:
        async def close(self) -> None: ...

    engine = Engine(NoSession(), lambda record: None)  # type: ignore[arg-type]
    old = cfg("bad-key")
    engine.apply_config(old)
    key = provider_key("a", old.providers["a"])
    engine.health.record(key, 0.0, Failure.AUTH)
    engine.apply_config(cfg("bad-key"))  # an unrelated reload keeps the cooldown
    assert not engine.health.available(key, 1.0)
    engine.apply_config(cfg("good-key"))
    assert engine.health.available(key, 1.0)
