"""The `access:` section of profiles.yaml: users, their profiles and limits, with errors that
name the field path and never echo what was pasted as a token."""

from __future__ import annotations

import copy
import hashlib
from typing import Any

import pytest
from llmrouter.config import ConfigError, parse_config

H1 = hashlib.sha256(b"token-one").hexdigest()
H2 = hashlib.sha256(b"token-two").hexdigest()

BASE: dict[str, Any] = {
    "providers": {"a": {"base_url": "https://a.example.com", "api": "anthropic"}},
    "profiles": {
        "default": {"hosts": ["api.anthropic.com"], "providers": ["a"]},
        "work": {"hosts": ["api.anthropic.com"], "providers": ["a"]},
    },
}


def with_users(**users: Any) -> dict[str, Any]:
    data = copy.deepcopy(BASE)
    data["access"] = {"users": users}
    return data


def error_of(data: Any) -> str:
    with pytest.raises(ConfigError) as e:
        parse_config(data, {})
    return str(e.value)


def test_no_access_section_means_no_authentication() -> None:
    assert parse_config(BASE, {}).access is None


def test_a_full_user() -> None:
    cfg = parse_config(
        with_users(
            alice={
                "token_sha256": H1.upper(),
                "profiles": ["default", "work"],
                "default_profile": "work",
                "limits": {"usd_per_day": 5, "usd_per_month": 60, "rpm": 30},
            }
        ),
        {},
    )
    assert cfg.access is not None
    alice = cfg.access.users["alice"]
    assert alice.token_sha256 == H1  # normalised to lower case
    assert alice.profiles == ["default", "work"]
    assert alice.default_profile == "work"
    assert (alice.limits.usd_per_day, alice.limits.usd_per_month, alice.limits.rpm) == (5, 60, 30)


def test_limits_are_each_optional() -> None:
    cfg = parse_config(with_users(bob={"token_sha256": H1, "profiles": ["default"]}), {})
    assert cfg.access is not None
    limits = cfg.access.users["bob"].limits
    assert (limits.usd_per_day, limits.usd_per_month, limits.rpm) == (None, None, None)
    assert cfg.access.users["bob"].default_profile is None


def test_empty_users_locks_everyone_out_but_is_valid() -> None:
    data = copy.deepcopy(BASE)
    data["access"] = {}
    cfg = parse_config(data, {})
    assert cfg.access is not None and cfg.access.users == {}


def test_token_from_the_environment() -> None:
    data = with_users(alice={"token_sha256": "${ALICE_SHA}", "profiles": ["default"]})
    cfg = parse_config(data, {"ALICE_SHA": H1})
    assert cfg.access is not None and cfg.access.users["alice"].token_sha256 == H1


@pytest.mark.parametrize(
    "value",
    [
        "s3cret-token-pasted-by-mistake",  # the token itself
        H1[:-1],  # 63 hex digits
        H1 + "0",  # 65
        "g" * 64,  # not hex
        "",
    ],
)
def test_bad_token_sha256_names_the_path_and_never_echoes_it(value: str) -> None:
    msg = error_of(with_users(alice={"token_sha256": value, "profiles": ["default"]}))
    assert "access.users.alice.token_sha256: must be 64 hex digits" in msg
    assert "python -m llmrouter.access hash" in msg
    if value:
        assert value not in msg


def test_hash_of_an_empty_token_is_refused() -> None:
    empty = hashlib.sha256(b"").hexdigest()
    msg = error_of(with_users(alice={"token_sha256": empty, "profiles": ["default"]}))
    assert "access.users.alice.token_sha256: is the SHA-256 of an empty token" in msg
    assert empty not in msg


def test_two_users_with_one_token() -> None:
    msg = error_of(
        with_users(
            alice={"token_sha256": H1, "profiles": ["default"]},
            bob={"token_sha256": H1.upper(), "profiles": ["default"]},
        )
    )
    assert "access.users: 'alice' and 'bob' have the same token_sha256" in msg
    assert H1 not in msg.lower()


def test_unknown_profile_named_by_path() -> None:
    msg = error_of(with_users(alice={"token_sha256": H1, "profiles": ["default", "wrok"]}))
    assert msg == "access.users.alice.profiles[1]: unknown profile 'wrok'; known: default, work"


def test_default_profile_must_be_one_of_the_users() -> None:
    msg = error_of(
        with_users(alice={"token_sha256": H1, "profiles": ["default"], "default_profile": "work"})
    )
    assert msg == (
        "access.users.alice.default_profile: 'work' is not one of this user's profiles (default)"
    )


def test_every_cross_check_error_is_reported_at_once() -> None:
    msg = error_of(
        with_users(
            alice={"token_sha256": H1, "profiles": ["nope"], "default_profile": "x"},
            bob={"token_sha256": H2, "profiles": ["gone"]},
        )
    )
    assert msg.splitlines() == [
        "access.users.alice.profiles[0]: unknown profile 'nope'; known: default, work",
        "access.users.alice.default_profile: 'x' is not one of this user's profiles (nope)",
        "access.users.bob.profiles[0]: unknown profile 'gone'; known: default, work",
    ]


def test_profiles_must_not_be_empty_or_repeated() -> None:
    msg = error_of(with_users(alice={"token_sha256": H1, "profiles": []}))
    assert "access.users.alice.profiles:" in msg
    msg = error_of(with_users(alice={"token_sha256": H1, "profiles": ["work", "work"]}))
    assert "access.users.alice.profiles: lists work more than once" in msg


@pytest.mark.parametrize("name", ["al ice", "bob+work", "carol:x", "", "-dash", "x" * 65, "é"])
def test_user_names_that_cannot_be_a_proxy_user(name: str) -> None:
    msg = error_of(with_users(**{name: {"token_sha256": H1, "profiles": ["default"]}}))
    assert msg.startswith("access.users: ")
    assert f"{name!r} is not a user name" in msg


@pytest.mark.parametrize("name", ["alice", "a", "bob.smith", "ci_bot-2", "X" * 64])
def test_user_names_accepted(name: str) -> None:
    cfg = parse_config(with_users(**{name: {"token_sha256": H1, "profiles": ["default"]}}), {})
    assert cfg.access is not None and name in cfg.access.users


@pytest.mark.parametrize(
    ("limits", "path"),
    [
        ({"usd_per_day": -1}, "access.users.alice.limits.usd_per_day"),
        ({"usd_per_month": "lots"}, "access.users.alice.limits.usd_per_month"),
        ({"rpm": -5}, "access.users.alice.limits.rpm"),
        ({"rpm": 2.5}, "access.users.alice.limits.rpm"),
    ],
)
def test_bad_limits(limits: dict[str, Any], path: str) -> None:
    msg = error_of(
        with_users(alice={"token_sha256": H1, "profiles": ["default"], "limits": limits})
    )
    assert msg.startswith(f"{path}: ")


def test_unknown_keys_list_what_is_allowed() -> None:
    msg = error_of(
        with_users(alice={"token_sha256": H1, "profiles": ["default"], "limits": {"usd": 5}})
    )
    assert msg == (
        "access.users.alice.limits.usd: unknown field (check the spelling); "
        "allowed: usd_per_day, usd_per_month, rpm"
    )
    msg = error_of(with_users(alice={"token": "x", "token_sha256": H1, "profiles": ["default"]}))
    assert "access.users.alice.token: unknown field" in msg
    assert "allowed: token_sha256, profiles, default_profile, limits" in msg


def test_zero_limits_are_allowed_to_suspend_a_user() -> None:
    cfg = parse_config(
        with_users(
            alice={
                "token_sha256": H1,
                "profiles": ["default"],
                "limits": {"usd_per_day": 0, "rpm": 0},
            }
        ),
        {},
    )
    assert cfg.access is not None and cfg.access.users["alice"].limits.rpm == 0
