"""profiles.yaml validation: every error names its field path and what is allowed."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from llmrouter import config
from llmrouter.config import (
    DEFAULT_DEADLINE,
    DEFAULT_TIMEOUTS,
    STRATEGIES,
    ConfigError,
    json_schema,
    load_config,
    parse_config,
)

REPO = Path(__file__).resolve().parents[1]

BASE: dict[str, Any] = {
    "providers": {
        "a": {"base_url": "https://a.example.com", "api": "anthropic"},
        "b": {"base_url": "https://b.example.com/v1", "api": "openai"},
    },
    "profiles": {"p": {"hosts": ["api.example.com"], "providers": ["a", "b"]}},
}


def cfg_with(**patch: Any) -> dict[str, Any]:
    """BASE with dotted-path keys replaced: cfg_with(**{"providers.a.weight": 2})."""
    data = copy.deepcopy(BASE)
    for dotted, value in patch.items():
        node = data
        *parents, last = dotted.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[last] = value
    return data


def error_of(data: Any, env: dict[str, str] | None = None) -> str:
    with pytest.raises(ConfigError) as e:
        parse_config(data, env or {})
    return str(e.value)


def test_minimal_config_defaults() -> None:
    cfg = parse_config(BASE, {})
    p = cfg.profiles["p"]
    assert p.strategy == "failover"
    assert p.unknown_price == "last"
    assert p.explore == 0.05
    assert p.min_samples == 5
    assert p.weights == {}
    a = cfg.providers["a"]
    assert a.weight == 1.0 and a.enabled and a.api_key is None and a.models == {}
    assert cfg.health.backoff_initial == 10.0 and cfg.health.backoff_max == 300.0
    assert cfg.health.auth_cooldown == 1800.0
    assert cfg.deadline(p) == DEFAULT_DEADLINE
    assert cfg.intercepted_hosts() == ["api.example.com"]


def test_base_url_trailing_slash_is_dropped() -> None:
    cfg = parse_config(cfg_with(**{"providers.a.base_url": "https://a.example.com/x/"}), {})
    assert cfg.providers["a"].base_url == "https://a.example.com/x"


def test_hosts_are_lowercased_and_stripped() -> None:
    cfg = parse_config(cfg_with(**{"profiles.p.hosts": [" API.Example.com:8443 "]}), {})
    assert cfg.profiles["p"].hosts == ["api.example.com:8443"]


# -- errors -----------------------------------------------------------------------------------


def test_unknown_provider_in_profile_lists_known() -> None:
    msg = error_of(cfg_with(**{"profiles.p.providers": ["a", "nope"]}))
    assert "profiles.p.providers[1]" in msg
    assert "unknown provider 'nope'" in msg
    assert "known: a, b" in msg


def test_unknown_strategy_lists_allowed() -> None:
    msg = error_of(cfg_with(**{"profiles.p.strategy": "fastest"}))
    assert msg.startswith("profiles.p.strategy:")
    assert "'fastest'" in msg
    for s in STRATEGIES:
        assert repr(s) in msg


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("ftp://a.example.com", "http:// or https://"),
        ("a.example.com", "http:// or https://"),
        ("https://", "with a host"),
        ("https://a.example.com/?x=1", "query string"),
        ("https://a.example.com/#frag", "fragment"),
        ("https://a.example.com:99999", "bad port"),
    ],
)
def test_bad_url(url: str, why: str) -> None:
    msg = error_of(cfg_with(**{"providers.a.base_url": url}))
    assert msg.startswith("providers.a.base_url:")
    assert why in msg


def test_negative_weight() -> None:
    msg = error_of(cfg_with(**{"providers.a.weight": -1}))
    assert msg == "providers.a.weight: Input should be greater than or equal to 0; got -1"


def test_negative_profile_weight_and_unknown_weight_name() -> None:
    msg = error_of(cfg_with(**{"profiles.p.weights": {"a": -2}}))
    assert "profiles.p.weights.a: Input should be greater than or equal to 0; got -2" in msg
    msg = error_of(cfg_with(**{"profiles.p.weights": {"zz": 1}}))
    assert "profiles.p.weights.zz: 'zz' is not one of this profile's providers (a, b)" in msg


def test_bad_api_lists_allowed() -> None:
    msg = error_of(cfg_with(**{"providers.a.api": "gemini"}))
    assert msg == "providers.a.api: Input should be 'anthropic' or 'openai'; got 'gemini'"


def test_profile_with_no_providers() -> None:
    msg = error_of(cfg_with(**{"profiles.p.providers": []}))
    assert msg.startswith("profiles.p.providers:")
    assert "at least 1 item" in msg


def test_duplicate_provider_in_profile() -> None:
    msg = error_of(cfg_with(**{"profiles.p.providers": ["a", "b", "a"]}))
    assert msg == "profiles.p.providers: lists a more than once"


def test_profile_with_no_hosts_and_host_with_scheme() -> None:
    assert "profiles.p.hosts:" in error_of(cfg_with(**{"profiles.p.hosts": []}))
    msg = error_of(cfg_with(**{"profiles.p.hosts": ["https://api.example.com"]}))
    assert msg.startswith("profiles.p.hosts:")
    assert "no scheme" in msg


@pytest.mark.parametrize(
    ("dotted", "allowed"),
    [
        ("extra", "providers, profiles, defaults, health"),
        ("providers.a.wieght", "base_url, api, api_key, auth_header, models, weight"),
        ("profiles.p.stratgy", "hosts, providers, strategy, weights, deadline"),
        ("health.backof_max", "backoff_initial, backoff_max, auth_cooldown"),
        ("defaults.idle", "idle_timeout, deadline"),
        ("providers.a.price", None),
    ],
)
def test_unknown_field_names_path_and_allowed(dotted: str, allowed: str | None) -> None:
    if allowed is None:  # nested model inside an optional field
        data = cfg_with(**{"providers.a.price": {"input": 1, "output": 2, "cahce_read": 1}})
        dotted, allowed = "providers.a.price.cahce_read", "input, output, cache_read, cache_write"
    else:
        data = cfg_with(**{dotted: 1})
    msg = error_of(data)
    assert msg.startswith(f"{dotted}: unknown field (check the spelling); allowed: ")
    assert allowed in msg


@pytest.mark.parametrize("value", ["first", -1, True, None])
def test_bad_unknown_price_is_one_clear_line(value: Any) -> None:
    msg = error_of(cfg_with(**{"profiles.p.unknown_price": value}))
    assert msg == (
        f"profiles.p.unknown_price: must be last, exclude or a blended USD/M price >= 0; "
        f"got {value!r}"
    )


@pytest.mark.parametrize("value", ["last", "exclude", 0, 0.5, 3])
def test_good_unknown_price(value: Any) -> None:
    assert (
        parse_config(cfg_with(**{"profiles.p.unknown_price": value}), {})
        .profiles["p"]
        .unknown_price
        == value
    )


@pytest.mark.parametrize(
    ("dotted", "value", "fragment"),
    [
        ("profiles.p.explore", 2, "profiles.p.explore: Input should be less than or equal to 1"),
        ("profiles.p.min_samples", 0, "profiles.p.min_samples: Input should be greater than"),
        ("profiles.p.deadline", 0, "profiles.p.deadline: Input should be greater than 0"),
        ("providers.a.idle_timeout", -1, "providers.a.idle_timeout: Input should be greater"),
        ("health.backoff_max", 0, "health.backoff_max: Input should be greater than 0"),
        ("providers.a.price", {"input": 1}, "providers.a.price.output: Field required"),
        ("providers.a.auth_header", "x-key", "providers.a.auth_header: Input should be"),
        ("providers.a.models", {"x": 1}, "providers.a.models.x: Input should be a valid string"),
    ],
)
def test_other_field_errors_name_the_path(dotted: str, value: Any, fragment: str) -> None:
    assert fragment in error_of(cfg_with(**{dotted: value}))


def test_several_errors_are_all_reported() -> None:
    data = cfg_with(
        **{"providers.a.weight": -1, "profiles.p.strategy": "x", "providers.b.base_url": "b"}
    )
    lines = error_of(data).splitlines()
    assert {line.split(":", 1)[0] for line in lines} == {
        "providers.a.weight",
        "providers.b.base_url",
        "profiles.p.strategy",
    }


def test_not_a_mapping() -> None:
    assert "must be a mapping" in error_of(["providers"])
    assert "must be a mapping" in error_of(None)


def test_missing_sections() -> None:
    msg = error_of({"providers": BASE["providers"]})
    assert "profiles: Field required" in msg


# -- ${ENV} interpolation ---------------------------------------------------------------------


def test_env_var_is_interpolated() -> None:
    data = cfg_with(**{"providers.a.api_key": "${KEY_A}", "providers.b.base_url": "${B_URL}/v1"})
    cfg = parse_config(data, {"KEY_A": "sk-123", "B_URL": "https://b.test"})
    assert cfg.providers["a"].api_key is not None
    assert cfg.providers["a"].api_key.get_secret_value() == "sk-123"
    assert cfg.providers["b"].base_url == "https://b.test/v1"


def test_unset_env_var_names_path_and_variable() -> None:
    msg = error_of(cfg_with(**{"providers.a.api_key": "${NOPE_KEY}"}))
    assert msg == "providers.a.api_key: environment variable NOPE_KEY is not set"


def test_unset_env_var_in_list_names_index() -> None:
    msg = error_of(cfg_with(**{"profiles.p.hosts": ["x.com", "${HOST2}"]}))
    assert msg == "profiles.p.hosts[1]: environment variable HOST2 is not set"


def test_env_default() -> None:
    data = cfg_with(**{"providers.a.api_key": "${NOPE_KEY:-fallback}"})
    cfg = parse_config(data, {})
    assert cfg.providers["a"].api_key.get_secret_value() == "fallback"  # type: ignore[union-attr]
    # set but empty also takes the default, as in the shell
    cfg = parse_config(data, {"NOPE_KEY": ""})
    assert cfg.providers["a"].api_key.get_secret_value() == "fallback"  # type: ignore[union-attr]
    cfg = parse_config(data, {"NOPE_KEY": "real"})
    assert cfg.providers["a"].api_key.get_secret_value() == "real"  # type: ignore[union-attr]
    # an empty default is allowed where an empty string is
    cfg = parse_config(cfg_with(**{"profiles.p.hosts": ["api${SUFFIX:-}.example.com"]}), {})
    assert cfg.profiles["p"].hosts == ["api.example.com"]


def test_unset_env_var_of_disabled_provider_is_not_an_error() -> None:
    data = cfg_with(**{"providers.a.api_key": "${NOPE_KEY}", "providers.a.enabled": False})
    cfg = parse_config(data, {})
    assert not cfg.providers["a"].enabled


def test_env_defaults_to_process_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LLMROUTER_TEST_KEY", "from-env")
    cfg = parse_config(cfg_with(**{"providers.a.api_key": "${LLMROUTER_TEST_KEY}"}))
    assert cfg.providers["a"].api_key.get_secret_value() == "from-env"  # type: ignore[union-attr]


# -- timeouts ---------------------------------------------------------------------------------


def test_timeout_precedence_provider_profile_defaults_builtin() -> None:
    data = cfg_with(
        **{
            "providers.a.connect_timeout": 1,
            "profiles.p.connect_timeout": 2,
            "profiles.p.first_byte_timeout": 3,
            "defaults.connect_timeout": 4,
            "defaults.first_byte_timeout": 5,
            "defaults.idle_timeout": 6,
        }
    )
    cfg = parse_config(data, {})
    t = cfg.timeouts(cfg.profiles["p"], cfg.providers["a"])
    assert t["connect_timeout"] == 1  # provider
    assert t["first_byte_timeout"] == 3  # profile
    assert t["idle_timeout"] == 6  # defaults
    assert t["response_timeout"] == DEFAULT_TIMEOUTS["response_timeout"]  # built-in
    assert t["first_token_timeout"] == DEFAULT_TIMEOUTS["first_token_timeout"]
    # another provider of the same profile does not inherit a's own setting
    tb = cfg.timeouts(cfg.profiles["p"], cfg.providers["b"])
    assert tb["connect_timeout"] == 2


def test_builtin_timeouts() -> None:
    cfg = parse_config(BASE, {})
    assert cfg.timeouts(cfg.profiles["p"], cfg.providers["a"]) == DEFAULT_TIMEOUTS


def test_deadline_precedence() -> None:
    cfg = parse_config(cfg_with(**{"defaults.deadline": 30}), {})
    assert cfg.deadline(cfg.profiles["p"]) == 30
    cfg = parse_config(cfg_with(**{"defaults.deadline": 30, "profiles.p.deadline": 7}), {})
    assert cfg.deadline(cfg.profiles["p"]) == 7


# -- files ------------------------------------------------------------------------------------


def test_load_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"nope\.yaml: file not found"):
        load_config(tmp_path / "nope.yaml")


def test_load_bad_yaml_gives_line(tmp_path: Path) -> None:
    f = tmp_path / "bad.yaml"
    f.write_text("providers:\n  a: [1, 2\nprofiles: {}\n")
    with pytest.raises(ConfigError) as e:
        load_config(f)
    assert "bad.yaml: not valid YAML (line" in str(e.value)


def test_load_prefixes_path_to_field_errors(tmp_path: Path) -> None:
    f = tmp_path / "p.yaml"
    f.write_text(yaml.safe_dump(cfg_with(**{"providers.a.weight": -3})))
    with pytest.raises(ConfigError) as e:
        load_config(f, {})
    assert str(e.value).startswith(f"{f}:\n  providers.a.weight:")


def test_load_good_file(tmp_path: Path) -> None:
    f = tmp_path / "p.yaml"
    f.write_text(yaml.safe_dump(cfg_with(**{"providers.a.api_key": "${K}"})))
    cfg = load_config(f, {"K": "v"})
    assert cfg.providers["a"].api_key.get_secret_value() == "v"  # type: ignore[union-attr]


def test_config_is_frozen() -> None:
    cfg = parse_config(BASE, {})
    with pytest.raises(Exception):  # noqa: B017 - pydantic's frozen error
        cfg.providers["a"].weight = 3  # type: ignore[misc]


def test_shipped_profiles_yaml_validates() -> None:
    cfg = load_config(REPO / "profiles.yaml", {})
    assert cfg.profiles
    for profile in cfg.profiles.values():
        assert all(n in cfg.providers for n in profile.providers)


def test_checked_in_schema_is_current() -> None:
    checked_in = json.loads((REPO / "profiles.schema.json").read_text())
    assert checked_in == json_schema(), (
        "profiles.schema.json is out of date with llmrouter/config.py: run `make schema`"
    )


def test_schema_cli(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert config._main(["--schema"]) == 0
    assert json.loads(capsys.readouterr().out) == json_schema()
    assert config._main([str(REPO / "profiles.yaml")]) == 0
    assert ": ok (" in capsys.readouterr().out
    assert config._main([str(tmp_path / "missing.yaml")]) == 1
    assert "file not found" in capsys.readouterr().err
    assert config._main([]) == 2
