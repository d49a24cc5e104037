"""`make bench QUICK=1` stays runnable: the quick mode exits 0, prints its table and writes JSON
with every section. No timing is asserted: speed is for the benchmark, not for tests.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[1]
SECTIONS = (
    "throughput",
    "latency",
    "streaming",
    "failover",
    "bodies",
    "translation",
    "shared",
    "selection",
    "memory",
    "framing",
    "routecost",
)


@pytest.mark.timeout(90)
def test_quick_bench_runs_and_reports_every_section(tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    proc = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "run.py"), "--quick", "--out", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=80,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "throughput, c=16 (req/s)" in proc.stdout
    assert "memory: router RSS (MiB)" in proc.stdout
    assert f"Raw figures: {out}" in proc.stdout
    data = json.loads(out.read_text())
    for section in SECTIONS:
        assert section in data, section
    assert data["meta"]["quick"] is True
    assert data["origin_requests"] == 0  # routed requests never reached the original host
    sections = {row["section"] for row in data["table"]}
    assert sections == {str(n) for n in range(1, 12)}
    assert set(data["bodies"]["sizes"]) == {"80 B", "50 KB", "500 KB"}
    assert "proxy CPU per request, 500 KB body" in proc.stdout
    assert set(data["translation"]["cases"]) == {"paced", "burst"}
    assert "router CPU per stream vs Anthropic->Anthropic" in proc.stdout
    assert data["streaming"]["deltas_ok"] is True  # every stream arrived whole, on every path
    assert data["memory"]["errors"] == 0
    assert set(data["routecost"]["cpu"]["sizes"]) == {"50 KB", "500 KB"}
    assert "planner, routes + affinity, 500 KB Claude Code body" in proc.stdout
    assert data["routecost"]["bindings"]["bindings"] == 100_000
