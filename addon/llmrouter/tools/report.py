"""Traffic report over the router's JSONL attempt log.

`python -m llmrouter.report [LOG ...] [--since 24h] [--until ...] [--html out.html]`

The log is streamed line by line into `Aggregator` (`_reportagg`, pure, bounded state whatever
the log size); `_reporttext` renders the terminal tables and `_reporthtml` the offline page.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from llmrouter.tools._reportagg import Aggregator, Dist, Report, Row, SeriesPoint
from llmrouter.tools._reportgroups import CacheRates
from llmrouter.tools._reporttext import header_lines, render_text, tables

__all__ = ["Aggregator", "Dist", "Report", "Row", "SeriesPoint", "aggregate_files", "log_files",
           "main", "parse_time"]  # fmt: skip

DEFAULT_LOG = Path("~/.mitmproxy/router.jsonl")
_REPO_CONFIG = Path(__file__).resolve().parents[3] / "profiles.yaml"
_MAX_LINE = 1 << 20  # bytes; attempt lines are ~1 kB


# --- I/O ------------------------------------------------------------------------------------


def log_files(log: Path, rotated: bool = True) -> list[Path]:
    """The files of one log, oldest first: LOG.N ... LOG.1, then LOG (those that exist)."""
    files: list[tuple[int, Path]] = []
    if rotated and log.parent.is_dir():
        pattern = re.compile(re.escape(log.name) + r"\.(\d+)")
        for child in log.parent.iterdir():
            m = pattern.fullmatch(child.name)
            if m and child.is_file():
                files.append((int(m.group(1)), child))
    ordered = [p for _, p in sorted(files, reverse=True)]
    if log.is_file():
        ordered.append(log)
    return ordered


def iter_lines(paths: Iterable[Path]) -> Iterator[bytes]:
    """Raw lines of the files in order, one at a time (never a whole file in memory)."""
    for path in paths:
        with path.open("rb") as f:
            while line := f.readline(_MAX_LINE):
                if len(line) == _MAX_LINE and not line.endswith(b"\n"):
                    # A runaway line (corruption, no newlines) is cut: its head fails to parse
                    # and counts as one bad line; the rest is skipped, never held in memory.
                    tail = line
                    while len(tail) == _MAX_LINE and not tail.endswith(b"\n"):
                        tail = f.readline(_MAX_LINE)
                yield line


def aggregate_files(
    paths: Iterable[Path],
    since: datetime | None = None,
    until: datetime | None = None,
    rates: CacheRates | None = None,
) -> Report:
    agg = Aggregator(since, until, rates=rates)
    for line in iter_lines(paths):
        agg.add_line(line)
    return agg.result()


_DURATION = re.compile(r"(\d+(?:\.\d+)?)\s*([smhdw])")
_UNIT_S = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_time(text: str, now: datetime) -> datetime:
    """`30m`/`24h`/`7d`/`90s` before `now`, or an ISO 8601 date/datetime (naive = UTC)."""
    text = text.strip()
    m = _DURATION.fullmatch(text)
    if m:
        return now - timedelta(seconds=float(m.group(1)) * _UNIT_S[m.group(2)])
    try:
        ts = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"not a duration (30m, 24h, 7d) or ISO 8601 time: {text!r}") from None
    return ts if ts.tzinfo else ts.replace(tzinfo=UTC)


def cache_rates(config: Path | None) -> CacheRates:
    """Prices of cached tokens: the config's `price` overrides (read leniently: only `price` and
    `base_url` of each provider, unset ${ENV} or all), else genai-prices by model."""
    import yaml

    from llmrouter.routing import pricing
    from llmrouter.schema import Price

    known: dict[str, tuple[Price | None, str | None]] = {}
    try:
        data = yaml.safe_load(config.read_text(encoding="utf-8")) if config else None
    except (OSError, yaml.YAMLError):
        data = None
    providers = data.get("providers") if isinstance(data, dict) else None
    for name, p in (providers or {}).items():
        if not isinstance(p, dict):
            continue
        url = p.get("base_url") if isinstance(p.get("base_url"), str) else None
        try:
            price = Price.model_validate(p["price"]) if "price" in p else None
        except ValueError:
            price = None
        known[str(name)] = (price, None if url is None or "${" in url else url.rstrip("/"))

    def rates(provider: str, model: str, total_in: int) -> tuple[float, float, float] | None:
        override, url = known.get(provider, (None, None))
        try:
            mp = pricing.price_of(model, override, url)
        except Exception:  # genai-prices data problems must not sink the report
            mp = None
        if mp is None:
            return None
        return mp.input.at(total_in), mp.cache_read.at(total_in), mp.cache_write.at(total_in)

    return rates


def _quiet_pipe(write: Callable[[], Any]) -> bool:
    """Run `write`; a reader that went away (`| head`) ends the output quietly (False)."""
    try:
        write()
        sys.stdout.flush()
    except BrokenPipeError:
        # Point stdout at /dev/null so the interpreter's final flush does not raise again.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
        return False
    return True


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m llmrouter.report",
        description="Per provider/model traffic report from the router's JSONL attempt log.",
    )
    parser.add_argument("logs", nargs="*", metavar="LOG", help=f"default: {DEFAULT_LOG}")
    parser.add_argument("--since", help="e.g. 30m, 24h, 7d, or an ISO 8601 date/datetime")
    parser.add_argument("--until", help="same forms as --since (exclusive)")
    parser.add_argument("--html", metavar="OUT", help="also write a self-contained HTML page")
    parser.add_argument(
        "--no-rotated", action="store_true", help="do not read the rotated LOG.1 ... LOG.N"
    )
    parser.add_argument(
        "--config",
        metavar="PROFILES_YAML",
        help="price overrides for the prompt-cache view (default: the repo's profiles.yaml)",
    )
    args = parser.parse_args(argv)
    now = datetime.now(UTC)
    try:
        since = parse_time(args.since, now) if args.since else None
        until = parse_time(args.until, now) if args.until else None
    except ValueError as e:
        parser.error(str(e))  # exits 2
    files: list[Path] = []
    for log in args.logs or [DEFAULT_LOG]:
        path = Path(log).expanduser()
        found = log_files(path, rotated=not args.no_rotated)
        if not found:
            hint = ""
            if path != DEFAULT_LOG.expanduser() and DEFAULT_LOG.expanduser().is_file():
                hint = f" (the router's default log is {DEFAULT_LOG})"
            elif not args.logs:
                hint = " (start the router, or name a log; `router_log` sets where it writes)"
            print(f"{parser.prog}: error: no such log file: {path}{hint}", file=sys.stderr)
            return 2
        files.extend(f for f in found if f not in files)
    config = Path(args.config).expanduser() if args.config else _REPO_CONFIG
    if args.config and not config.is_file():
        print(f"{parser.prog}: error: no such config file: {config}", file=sys.stderr)
        return 2
    try:
        report = aggregate_files(files, since, until, cache_rates(config))
    except OSError as e:
        print(f"{parser.prog}: error: {e}", file=sys.stderr)
        return 2
    sources = [str(f) for f in files]
    if args.html:  # first: a reader that closes the pipe early still gets the page
        from llmrouter.tools._reporthtml import render_html

        try:
            page = render_html(report, tables(report, compact=False), header_lines(report, sources))
            Path(args.html).write_text(page, encoding="utf-8")
        except OSError as e:
            print(f"{parser.prog}: error: {e}", file=sys.stderr)
            return 2
    if _quiet_pipe(lambda: sys.stdout.write(render_text(report, sources))) and args.html:
        _quiet_pipe(lambda: print(f"wrote {args.html}"))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
