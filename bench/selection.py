"""Section 5: the strategies' pytest-benchmark figures, when tests/test_bench_select.py exists.

The full run measures it alone, after every process is stopped. The quick run starts it at once,
next to the other processes, because there its figures only prove that it still runs.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

from procs import BIN, ROOT
from tables import Row, fmt

TEST = ROOT / "tests" / "test_bench_select.py"
Result = tuple[dict[str, Any], list[Row]]


def _skip(reason: str) -> Result:
    return {"skipped": reason}, [Row("5", "selection", "-", "-", f"skipped: {reason}", "-", None)]


class Selection:
    def __init__(self, quick: bool, workdir: Path) -> None:
        self.out = workdir / "selection.json"
        self.log = workdir / "selection.log"
        self.cmd = [str(BIN / "pytest"), str(TEST), "-q", "-p", "no:cacheprovider",
                    "--benchmark-enable", f"--benchmark-json={self.out}"]  # fmt: skip
        if quick:
            self.cmd += ["--benchmark-min-rounds=1", "--benchmark-max-time=0.002",
                         "--benchmark-warmup=off"]  # fmt: skip
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        if not TEST.exists():
            return
        print("bench: selection: running pytest-benchmark", file=sys.stderr, flush=True)
        with self.log.open("wb") as log:
            self.proc = subprocess.Popen(
                self.cmd, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)

    def finish(self, timeout: float) -> Result:
        if not TEST.exists():
            return _skip(f"{TEST.relative_to(ROOT)} not found")
        if self.proc is None:
            self.start()
        assert self.proc is not None
        try:
            code = self.proc.wait(max(1.0, timeout))
        except subprocess.TimeoutExpired:
            self.stop()
            return _skip(f"pytest-benchmark did not finish within {timeout:.0f}s")
        if not self.out.exists():
            tail = self.log.read_text(errors="replace").strip().splitlines()[-3:]
            return _skip(f"pytest exited {code} without figures: {' / '.join(tail)}")
        return self._figures(json.loads(self.out.read_text()), code)

    @staticmethod
    def _figures(data: dict[str, Any], code: int) -> Result:
        raw: dict[str, Any] = {"pytest_exit": code, "benchmarks": []}
        rows = []
        keep = ("min", "max", "mean", "stddev", "median", "iqr", "ops", "rounds")
        for bm in data.get("benchmarks", []):
            st = bm["stats"]
            raw["benchmarks"].append(
                {"name": bm["name"], "group": bm.get("group"), **{k: st.get(k) for k in keep}}
            )
            us, name = 1e6, bm["name"].removeprefix("test_")
            eight = name.endswith("-8]")  # issue 3: median under 10 us with 8 candidates
            rows.append(Row(
                "5", f"select: {name} (us)", "-", fmt(st["median"] * us),
                f"median {fmt(st['median'] * us)}, iqr {fmt(st['iqr'] * us)}",
                "<= 10 us (8 candidates)" if eight else "-",
                st["median"] * us <= 10 if eight else None,
            ))  # fmt: skip
        if code != 0:
            rows.append(Row("5", "selection tests", "-", "-", f"pytest exited {code}",
                            "exit 0", False))  # fmt: skip
        return raw, rows or _skip("no benchmarks in the pytest-benchmark JSON")[1]
