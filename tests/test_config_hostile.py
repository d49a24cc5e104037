"""profiles.yaml against careless and hostile edits: empty keys, credentials in URLs, files
that are not UTF-8 or not files at all, duplicate keys, and alias bombs. Each is a ConfigError
that names where, never a hang, a traceback or a silent surprise."""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Any

import pytest
import yaml
from llmrouter.config import ConfigError, key_of, load_config, parse_config

BASE: dict[str, Any] = {
    "providers": {"a": {"base_url": "https://a.example.com", "api": "anthropic"}},
    "profiles": {"p": {"hosts": ["api.example.com"], "providers": ["a"]}},
}


def with_key(key: str, **provider: Any) -> dict[str, Any]:
    a = {**BASE["providers"]["a"], "api_key": key, **provider}
    return {**BASE, "providers": {"a": a}}


@pytest.mark.parametrize("key", ["", "   ", "${EMPTY}", "${UNSET:-}", "${EMPTY:-}"])
def test_an_empty_key_is_an_error_naming_its_path(key: str) -> None:
    with pytest.raises(ConfigError) as e:
        parse_config(with_key(key), {"EMPTY": ""})
    assert str(e.value).startswith("providers.a.api_key: is empty")
    assert "remove api_key to pass the client's own credentials through" in str(e.value)


@pytest.mark.parametrize("key", ["sk-abc\n", " sk-abc", "sk-\x00abc", "sk-a\r\nx-evil: 1"])
def test_a_key_with_spaces_or_control_characters_is_an_error(key: str) -> None:
    with pytest.raises(ConfigError, match=r"^providers\.a\.api_key: has surrounding spaces"):
        parse_config(with_key("${K}"), {"K": key})


def test_a_disabled_providers_empty_key_is_no_error_and_sends_nothing() -> None:
    cfg = parse_config(with_key("${UNSET}", enabled=False), {})
    assert key_of(cfg.providers["a"]) is None and not cfg.providers["a"].enabled
    cfg = parse_config(with_key("", enabled=False), {})
    assert key_of(cfg.providers["a"]) is None


def test_key_of_is_the_one_answer() -> None:
    assert key_of(parse_config(BASE, {}).providers["a"]) is None
    assert key_of(parse_config(with_key("${K}"), {"K": "sk-1"}).providers["a"]) == "sk-1"


@pytest.mark.parametrize(
    "url", ["https://user:pass@a.example.com", "https://key@a.example.com/v1", "http://:p@h"]
)
def test_credentials_in_base_url_are_refused(url: str) -> None:
    data = {**BASE, "providers": {"a": {"base_url": url, "api": "anthropic"}}}
    with pytest.raises(ConfigError) as e:
        parse_config(data, {})
    assert str(e.value) == (
        "providers.a.base_url: must not carry user:password@ (put the key in api_key)"
    )


def write(tmp_path: Path, data: bytes | str) -> Path:
    path = tmp_path / "profiles.yaml"
    path.write_bytes(data.encode() if isinstance(data, str) else data)
    return path


def test_a_file_that_is_not_utf8_names_the_byte_and_its_place(tmp_path: Path) -> None:
    text = yaml.safe_dump(BASE).encode()
    path = write(tmp_path, text + b"# caf\xe9 cr\xe8me\n")
    line = text.count(b"\n") + 1
    with pytest.raises(ConfigError) as e:
        load_config(path)
    assert str(e.value) == (
        f"{path}: not valid UTF-8 (byte 0xe9 at line {line}, column 6); save the file as UTF-8"
    )
    # a UTF-8 byte order mark is fine
    assert load_config(write(tmp_path, b"\xef\xbb\xbf" + text)).profiles["p"]


def test_a_fifo_or_a_directory_is_refused_without_hanging(tmp_path: Path) -> None:
    fifo = tmp_path / "fifo.yaml"
    os.mkfifo(fifo)
    result: list[BaseException | None] = []

    def load() -> None:
        try:
            load_config(fifo)
        except BaseException as e:
            result.append(e)

    t = threading.Thread(target=load, daemon=True)
    t.start()
    t.join(10)
    assert result and isinstance(result[0], ConfigError), "load_config hung on a FIFO"
    assert str(result[0]) == f"{fifo}: not a regular file"
    with pytest.raises(ConfigError, match="not a regular file"):
        load_config(tmp_path)


def test_a_huge_file_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path, b"#" * (5 * 1024 * 1024))
    with pytest.raises(ConfigError, match="larger than 4 MB"):
        load_config(path)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "providers:\n  a: {base_url: 'https://a.example.com', api: anthropic}\n"
            "  a: {base_url: 'https://b.example.com', api: anthropic}\n"
            "profiles:\n  p: {hosts: [x], providers: [a]}\n",
            "providers: duplicate key 'a' at line 3 (first at line 2)",
        ),
        (
            "providers:\n  a: {base_url: 'https://a.example.com', api: anthropic,\n"
            "      api: openai}\nprofiles: {}\n",
            "providers.a: duplicate key 'api' at line 3 (first at line 2)",
        ),
        ("profiles: {}\nproviders: {}\nprofiles: {}\n",
         "(top level): duplicate key 'profiles' at line 3 (first at line 1)"),
    ],
)  # fmt: skip
def test_duplicate_keys_are_refused_with_path_and_line(
    tmp_path: Path, text: str, message: str
) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as e:
        load_config(path)
    assert str(e.value) == f"{path}: {message}"


def test_an_alias_bomb_is_refused_quickly(tmp_path: Path) -> None:
    lines = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for prev, cur in zip("abcdefgh", "bcdefghi", strict=True):
        lines.append(f"{cur}: &{cur} [" + ",".join([f"*{prev}"] * 9) + "]")
    path = write(tmp_path, "\n".join(lines) + "\n")  # ~500 bytes, 9**9 values expanded
    with pytest.raises(ConfigError, match="more than 100000 values once YAML aliases are expanded"):
        load_config(path)
    # A self-referencing alias is bounded the same way.
    with pytest.raises(ConfigError, match="aliases nested too deep"):
        load_config(write(tmp_path, "a: &a [*a, *a]\n"))


def test_anchors_and_merge_keys_still_work(tmp_path: Path) -> None:
    text = (
        "providers:\n"
        "  a: &base {base_url: 'https://a.example.com', api: anthropic, connect_timeout: 3}\n"
        "  b: {<<: *base, base_url: 'https://b.example.com'}\n"
        "profiles:\n  p: {hosts: [x], providers: [a, b]}\n"
    )
    cfg = load_config(write(tmp_path, text))
    assert cfg.providers["b"].connect_timeout == 3 and cfg.providers["b"].api == "anthropic"


def test_deep_nesting_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="nested too deeply"):
        load_config(write(tmp_path, "[" * 5000 + "]" * 5000))
