"""`python -m llmrouter.access`: make a user's token and the lines to paste, or hash a token.

    add NAME --profiles a,b [--default P] [--usd-per-day X] [--usd-per-month Y] [--rpm N]
        [--proxy HOST:PORT] [--config profiles.yaml]
    hash        reads a token on stdin, prints its token_sha256

The token is printed once and stored nowhere: profiles.yaml keeps only its SHA-256.
"""

from __future__ import annotations

import argparse
import socket
import sys
from typing import Any

import yaml
from pydantic import ValidationError

from llmrouter.access.credentials import TOKEN_BYTES, hash_token, new_token
from llmrouter.schema import Access

_MIN_TOKEN_CHARS = 22  # ~128 bits of URL-safe base64


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m llmrouter.access", description="Users of a shared router."
    )
    sub = p.add_subparsers(dest="command", required=True)
    add = sub.add_parser("add", help="make a user: a fresh token and the YAML lines to paste")
    add.add_argument("name")
    add.add_argument("--profiles", required=True, help="comma-separated profiles the user may use")
    add.add_argument("--default", dest="default_profile", help="the user's default profile")
    add.add_argument("--usd-per-day", type=float, help="budget per UTC day (USD)")
    add.add_argument("--usd-per-month", type=float, help="budget per UTC month (USD)")
    add.add_argument("--rpm", type=int, help="requests in any 60 s")
    add.add_argument(
        "--proxy",
        default=f"{socket.gethostname()}:8080",
        help="host:port clients reach the router at (default: this host, port 8080)",
    )
    add.add_argument("--config", help="a profiles.yaml to check the profiles and the name against")
    sub.add_parser("hash", help="print the token_sha256 of a token read from stdin")
    return p


def _entry(args: argparse.Namespace, token: str) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "token_sha256": hash_token(token),
        "profiles": [p.strip() for p in args.profiles.split(",") if p.strip()],
    }
    if args.default_profile:
        entry["default_profile"] = args.default_profile
    limits = {
        k: int(v) if float(v).is_integer() else v  # 5, not 5.0
        for k, v in (
            ("usd_per_day", args.usd_per_day),
            ("usd_per_month", args.usd_per_month),
            ("rpm", args.rpm),
        )
        if v is not None
    }
    if limits:
        entry["limits"] = limits
    return entry


def _check(args: argparse.Namespace, entry: dict[str, Any]) -> list[str]:
    """Problems that would make the router reject the pasted lines."""
    try:
        Access.model_validate({"users": {args.name: entry}})
    except ValidationError as e:
        return [
            f"{'.'.join(str(p) for p in err['loc'])}: {err['msg'].removeprefix('Value error, ')}"
            for err in e.errors()
        ]
    problems = []
    if entry.get("default_profile") and entry["default_profile"] not in entry["profiles"]:
        problems.append(f"--default {entry['default_profile']!r} is not one of --profiles")
    if args.config:
        from llmrouter.config import ConfigError, load_config

        try:
            cfg = load_config(args.config)
        except ConfigError as e:
            return [*problems, str(e)]
        if cfg.access is not None and args.name in cfg.access.users:
            print(
                f"note: {args.config} has a user {args.name}: replace the entry, and the old "
                "token stops working at the next reload",
                file=sys.stderr,
            )
        unknown = [p for p in entry["profiles"] if p not in cfg.profiles]
        if unknown:
            problems.append(
                f"{args.config}: no profile {', '.join(unknown)}; known: {', '.join(cfg.profiles)}"
            )
    return problems


def _add(args: argparse.Namespace) -> int:
    token = new_token()
    entry = _entry(args, token)
    problems = _check(args, entry)
    if problems:
        print("error: " + "\n  ".join(problems), file=sys.stderr)
        return 1
    block = yaml.safe_dump(
        {"access": {"users": {args.name: entry}}},
        default_flow_style=None,
        sort_keys=False,
        width=1000,
    )
    print(
        f"User {args.name}: a new token of {TOKEN_BYTES * 8} random bits. It is shown only "
        "now; profiles.yaml keeps only its SHA-256.\n\n"
        "1. Add the user under access.users in profiles.yaml (the router reloads it):\n\n"
        f"{block}\n"
        f"2. Give {args.name} this line, privately:\n\n"
        f"export HTTPS_PROXY=http://{args.name}:{token}@{args.proxy}\n\n"
        f"   NAME+PROFILE picks one of the user's profiles: http://{args.name}+"
        f"{entry['profiles'][0]}:TOKEN@{args.proxy}"
    )
    return 0


def _hash() -> int:
    token = sys.stdin.readline().rstrip("\r\n")
    if not token:
        print("error: no token on stdin", file=sys.stderr)
        return 1
    if len(token) < _MIN_TOKEN_CHARS:
        print(
            f"warning: a {len(token)}-character token is guessable; `add` makes 256-bit ones",
            file=sys.stderr,
        )
    print(hash_token(token))
    return 0


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    return _add(args) if args.command == "add" else _hash()
