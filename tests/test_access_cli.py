"""`python -m llmrouter.access`, run as a subprocess the way an admin runs it."""

from __future__ import annotations

import base64
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from llmrouter.access import Identity, check, hash_token
from llmrouter.config import parse_config

BASE: dict[str, Any] = {
    "providers": {"a": {"base_url": "https://a.example.com", "api": "anthropic"}},
    "profiles": {
        "default": {"hosts": ["api.anthropic.com"], "providers": ["a"]},
        "work": {"hosts": ["api.anthropic.com"], "providers": ["a"]},
    },
}
PROXY_RE = re.compile(r"^export HTTPS_PROXY=http://([^:]+):([A-Za-z0-9_-]+)@(\S+)$", re.M)


def run(*args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "llmrouter.access", *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
    )


def yaml_block(out: str) -> dict[str, Any]:
    start = out.index("access:\n")
    end = out.index("\n\n", start)
    return yaml.safe_load(out[start:end])


def test_add_prints_a_token_the_yaml_and_the_client_line() -> None:
    p = run("add", "alice", "--profiles", "default,work", "--default", "work",
            "--usd-per-day", "5", "--usd-per-month", "60.5", "--rpm", "30",
            "--proxy", "router.corp:8080")  # fmt: skip
    assert p.returncode == 0, p.stderr
    m = PROXY_RE.search(p.stdout)
    assert m is not None, p.stdout
    name, token, where = m.groups()
    assert (name, where) == ("alice", "router.corp:8080")
    assert len(token) >= 43  # 256 bits; the issue asks for >= 128
    assert p.stdout.count(token) == 1  # shown once
    block = yaml_block(p.stdout)
    assert block == {
        "access": {
            "users": {
                "alice": {
                    "token_sha256": hash_token(token),
                    "profiles": ["default", "work"],
                    "default_profile": "work",
                    "limits": {"usd_per_day": 5, "usd_per_month": 60.5, "rpm": 30},
                }
            }
        }
    }
    assert "  limits: {usd_per_day: 5, usd_per_month: 60.5, rpm: 30}" in p.stdout
    assert "http://alice+default:TOKEN@router.corp:8080" in p.stdout
    # The lines pasted into a config authenticate the printed token.
    cfg = parse_config({**BASE, **block}, {})
    assert cfg.access is not None
    assert check(cfg.access, _basic(f"alice+work:{token}")) == Identity("alice", "work")


def _basic(userpass: str) -> str:
    return "Basic " + base64.b64encode(userpass.encode()).decode()


def test_every_add_makes_a_new_token() -> None:
    tokens = set()
    for _ in range(2):
        p = run("add", "bob", "--profiles", "default", "--proxy", "h:1")
        m = PROXY_RE.search(p.stdout)
        assert m is not None
        tokens.add(m.group(2))
    assert len(tokens) == 2


def test_minimal_add_has_no_limits_or_default() -> None:
    p = run("add", "bob", "--profiles", " default ", "--proxy", "h:1")
    assert p.returncode == 0, p.stderr
    user = yaml_block(p.stdout)["access"]["users"]["bob"]
    assert set(user) == {"token_sha256", "profiles"}
    assert user["profiles"] == ["default"]


def test_add_checks_against_a_config(tmp_path: Path) -> None:
    path = tmp_path / "profiles.yaml"
    path.write_text(yaml.safe_dump(BASE))
    p = run("add", "alice", "--profiles", "default,wrok", "--config", str(path))
    assert p.returncode == 1
    assert f"{path}: no profile wrok; known: default, work" in p.stderr
    assert "HTTPS_PROXY" not in p.stdout  # no token is made for lines that would not load
    p = run("add", "alice", "--profiles", "default,work", "--config", str(path), "--proxy", "h:1")
    assert p.returncode == 0, p.stderr


def test_add_notes_a_user_that_exists(tmp_path: Path) -> None:
    path = tmp_path / "profiles.yaml"
    data = {**BASE, "access": {"users": {"alice": {"token_sha256": hash_token("old"),
                                                   "profiles": ["default"]}}}}  # fmt: skip
    path.write_text(yaml.safe_dump(data))
    p = run("add", "alice", "--profiles", "default", "--config", str(path), "--proxy", "h:1")
    assert p.returncode == 0, p.stderr
    assert "has a user alice: replace the entry" in p.stderr


@pytest.mark.parametrize(
    ("args", "error"),
    [
        (["add", "al ice", "--profiles", "default"], "is not a user name"),
        (["add", "bob+x", "--profiles", "default"], "is not a user name"),
        (["add", "bob", "--profiles", "default", "--default", "work"], "is not one of --profiles"),
        (["add", "bob", "--profiles", "default", "--usd-per-day", "-1"], "usd_per_day"),
        (["add", "bob", "--profiles", "default", "--rpm", "-1"], "rpm"),
        (["add", "bob", "--profiles", ","], "profiles"),
    ],
)
def test_add_refuses_lines_the_router_would_reject(args: list[str], error: str) -> None:
    p = run(*args)
    assert p.returncode == 1
    assert error in p.stderr
    assert "HTTPS_PROXY" not in p.stdout


def test_usage_errors() -> None:
    assert run().returncode == 2
    assert run("add", "bob").returncode == 2  # --profiles is required
    assert run("add", "bob", "--profiles", "default", "--rpm", "lots").returncode == 2


def test_hash_reads_the_token_from_stdin() -> None:
    token = "t0k3n:with:colons-and-more-than-22-chars"
    p = run("hash", stdin=token + "\n")
    assert p.returncode == 0
    assert p.stdout.strip() == hash_token(token)
    assert p.stderr == ""


def test_hash_warns_about_a_short_token_and_refuses_none() -> None:
    p = run("hash", stdin="abc")
    assert p.returncode == 0 and p.stdout.strip() == hash_token("abc")
    assert "guessable" in p.stderr
    p = run("hash", stdin="")
    assert p.returncode == 1 and "no token" in p.stderr
