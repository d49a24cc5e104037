"""The README is the user's reference: every option, every profiles.yaml field, every JSONL
field, strategy and outcome must be documented there, and the two commands come first."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from llmrouter.config import STRATEGIES, Defaults, Health, Price, Profile, Provider
from llmrouter.proxy.addon import Router
from llmrouter.proxy.attempt import Attempt, Ctx
from llmrouter.schema import Access, Route, RouteMatch, User, UserLimits
from llmrouter.wire.outcome import Outcome
from mitmproxy.test import taddons
from pydantic import BaseModel

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")


def documented(name: str) -> bool:
    return f"`{name}`" in README or re.search(rf"`{re.escape(name)}[,`= ]", README) is not None


def test_readme_opens_with_the_two_commands_and_the_demo() -> None:
    first_screen = "\n".join(README.splitlines()[:30])
    assert "make run" in first_screen and "make test" in first_screen
    assert "make demo" in first_screen


def test_every_option_is_documented(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))  # the default JSONL lives in ~/.mitmproxy
    with taddons.context() as bare:
        theirs = {n for n, _ in bare.options.items()}
    with taddons.context(Router()) as tctx:
        names = [n for n, _ in tctx.options.items() if n not in theirs]  # the router's own
    assert len(names) >= 7 and "max_request_mb" in names
    missing = [n for n in names if not documented(n)]
    assert not missing, f"options missing from the README reference: {missing}"


_MODELS = [Provider, Profile, Route, RouteMatch, Defaults, Health, Price, Access, User, UserLimits]


@pytest.mark.parametrize("model", _MODELS)
def test_every_config_field_is_documented(model: type[BaseModel]) -> None:
    missing = [name for name in model.model_fields if not documented(name)]
    assert not missing, f"{model.__name__} fields missing from the README: {missing}"


def test_every_jsonl_field_strategy_and_outcome_is_documented() -> None:
    ctx = Ctx("id", "default", "failover", "anthropic", "m", True, 0.0)
    fields = list(Attempt(ctx, 1, "p", "p https://x", False).record())
    missing = [f for f in [*fields, *STRATEGIES, *(o.value for o in Outcome)] if not documented(f)]
    assert not missing, f"missing from the README: {missing}"


def test_make_targets_named_in_the_readme_exist() -> None:
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    targets = set(re.findall(r"^([a-z][a-z-]*):", makefile, re.M))
    named = set(re.findall(r"make ([a-z][a-z-]*)", README))
    assert named <= targets, f"the README names make targets that do not exist: {named - targets}"


def test_shipped_profiles_point_editors_at_the_schema() -> None:
    first = (ROOT / "profiles.yaml").read_text(encoding="utf-8").splitlines()[0]
    assert first == "# yaml-language-server: $schema=./profiles.schema.json"
    assert (ROOT / "profiles.schema.json").is_file()
