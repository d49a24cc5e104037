"""Loading profiles.yaml: ${ENV} interpolation, validation against `llmrouter.schema`, and
errors that name the path of every bad field.

`load_config` turns a YAML file into a frozen `RouterConfig` or raises `ConfigError` whose
message names the path of every bad field. The schema's models are re-exported here.
"""

from __future__ import annotations

import json
import os
import re
import stat
import sys
from collections.abc import Mapping
from pathlib import Path
from types import UnionType
from typing import Any, Union, get_args, get_origin

import yaml
from pydantic import BaseModel, ValidationError

from llmrouter.schema import (
    DEFAULT_DEADLINE,
    DEFAULT_TIMEOUTS,
    STRATEGIES,
    ApiName,
    Defaults,
    Health,
    Price,
    Profile,
    Provider,
    RouterConfig,
    Strategy,
    Timeouts,
)

__all__ = [
    "DEFAULT_DEADLINE",
    "DEFAULT_TIMEOUTS",
    "STRATEGIES",
    "ApiName",
    "ConfigError",
    "Defaults",
    "Health",
    "Price",
    "Profile",
    "Provider",
    "RouterConfig",
    "Strategy",
    "Timeouts",
    "key_of",
    "load_config",
    "parse_config",
]

MAX_FILE_BYTES = 4 * 1024 * 1024  # a profiles.yaml is a few KB; anything this big is a mistake
MAX_NODES = 100_000  # values in the document once YAML aliases are expanded


class ConfigError(Exception):
    """A profiles.yaml that cannot be used. The message names the bad field's path."""


def key_of(provider: Provider) -> str | None:
    """The key the router sends to `provider`, or None: the client's own credentials pass through.

    The one place that decides "has a key": the attempt (what is sent) and the flow display
    (what is shown) both ask it, so they cannot disagree. Validation refuses an empty key.
    """
    key = provider.api_key
    return None if key is None else key.get_secret_value()


_ENV_RE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-(.*?))?\}")


def _interpolate(node: Any, path: str, env: Mapping[str, str], errors: list[str]) -> Any:
    """Replace ${VAR} and ${VAR:-default} in every string, collecting unset variables by path."""
    if isinstance(node, dict):
        return {k: _interpolate(v, _join(path, k), env, errors) for k, v in node.items()}
    if isinstance(node, list):
        return [_interpolate(v, f"{path}[{i}]", env, errors) for i, v in enumerate(node)]
    if not isinstance(node, str) or "${" not in node:
        return node

    def repl(m: re.Match[str]) -> str:
        name, default = m.group(1), m.group(2)
        value = env.get(name)
        if value is None or (value == "" and default is not None):
            if default is None:
                errors.append(f"{path}: environment variable {name} is not set")
                return ""
            return default
        return value

    return _ENV_RE.sub(repl, node)


def _join(path: str, key: Any) -> str:
    return f"{path}.{key}" if path else str(key)


def _fields_at(loc: tuple[int | str, ...]) -> list[str]:
    """Field names allowed at `loc` (the parent of an unknown key), for the error message."""
    tp: Any = RouterConfig
    for part in loc:
        if isinstance(tp, type) and issubclass(tp, BaseModel):
            field = tp.model_fields.get(str(part))
            if field is None:
                return []
            tp = field.annotation
        else:  # dict[str, Model] or list[Model]: step into the value type
            args = [a for a in get_args(tp) if a is not type(None)]
            tp = args[-1] if args else None
        if get_origin(tp) in (Union, UnionType):  # Model | None
            tp = next((a for a in get_args(tp) if a is not type(None)), None)
    return list(tp.model_fields) if isinstance(tp, type) and issubclass(tp, BaseModel) else []


# Constraint errors whose message does not say what was given.
_SHOW_INPUT = frozenset(
    ("literal_error", "greater_than", "greater_than_equal", "less_than_equal", "too_short")
)


def _format_validation(e: ValidationError) -> list[str]:
    lines = []
    for err in e.errors():
        loc = ""
        for part in err["loc"]:
            loc = f"{loc}[{part}]" if isinstance(part, int) else _join(loc, part)
        msg = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            allowed = _fields_at(err["loc"][:-1])
            msg = "unknown field (check the spelling)"
            if allowed:
                msg += f"; allowed: {', '.join(allowed)}"
        elif err["type"] in _SHOW_INPUT:
            msg = f"{msg}; got {err['input']!r}"
        if loc:
            lines.append(f"{loc}: {msg}")
        else:  # cross-field checks already name their paths, one per line
            lines.extend(msg.split("\n"))
    return lines


def parse_config(data: Any, env: Mapping[str, str] | None = None) -> RouterConfig:
    """Validate already-parsed YAML data. Raises ConfigError naming each bad field's path."""
    if not isinstance(data, dict):
        raise ConfigError("the file must be a mapping with `providers` and `profiles`")
    env = os.environ if env is None else env
    errors: list[str] = []
    data = _interpolate(data, "", env, errors)
    # A disabled provider may name a key that is not set on this machine: that is not an error.
    providers = data.get("providers")
    if isinstance(providers, dict):
        disabled = {
            f"providers.{n}."
            for n, p in providers.items()
            if isinstance(p, dict) and p.get("enabled") is False
        }
        errors = [e for e in errors if not any(e.startswith(d) for d in disabled)]
        for name, p in providers.items():
            # A disabled provider's key may be unset on this machine: it is never sent.
            if f"providers.{name}." in disabled and p.get("api_key") == "":
                p.pop("api_key")
    if errors:
        raise ConfigError("\n".join(errors))
    try:
        return RouterConfig.model_validate(data)
    except ValidationError as e:
        raise ConfigError("\n".join(_format_validation(e))) from None


def _read(path: Path) -> str:
    """The file's text. Refuses what is not a regular file (a FIFO would block start-up), what
    is too big to be a profiles.yaml, and what is not UTF-8, with the place of the bad byte."""
    try:
        # O_NONBLOCK: opening a FIFO with no writer must not hang; fstat then refuses it.
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError:
        raise ConfigError(f"{path}: file not found") from None
    except OSError as e:
        raise ConfigError(f"{path}: cannot read: {e.strerror}") from None
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise ConfigError(f"{path}: not a regular file")
    with os.fdopen(fd, "rb") as f:
        try:
            data = f.read(MAX_FILE_BYTES + 1)
        except OSError as e:
            raise ConfigError(f"{path}: cannot read: {e.strerror}") from None
    if len(data) > MAX_FILE_BYTES:
        raise ConfigError(f"{path}: larger than {MAX_FILE_BYTES // 1024 // 1024} MB")
    try:
        return data.decode("utf-8").removeprefix("\ufeff")
    except UnicodeDecodeError as e:
        line = data.count(b"\n", 0, e.start) + 1
        column = e.start - (data.rfind(b"\n", 0, e.start) + 1) + 1
        raise ConfigError(
            f"{path}: not valid UTF-8 (byte 0x{data[e.start]:02x} at line {line}, "
            f"column {column}); save the file as UTF-8"
        ) from None


def _check_nodes(root: yaml.Node) -> None:
    """Refuse duplicate keys (YAML would keep the last silently) with their path and line, and
    documents whose aliases expand past MAX_NODES values ("billion laughs")."""
    # Each entry: (node, its parent entry, its key or index): the path is built only for an
    # error, so a deep (or, through aliases, endless) document costs O(1) per value.
    Entry = tuple[yaml.Node, Any, str | int | None]
    stack: list[Entry] = [(root, None, None)]
    checked: set[int] = set()  # an aliased node is checked once, however often it is used
    visits = 0
    while stack:
        entry = stack.pop()
        node = entry[0]
        visits += 1
        if visits > MAX_NODES:
            raise ConfigError(
                f"more than {MAX_NODES} values once YAML aliases are expanded "
                "(aliases nested too deep)"
            )
        if isinstance(node, yaml.MappingNode):
            first = id(node) not in checked
            checked.add(id(node))
            seen: dict[str, int] = {}
            for key, value in node.value:
                name = key.value if isinstance(key, yaml.ScalarNode) else "?"
                if first and isinstance(key, yaml.ScalarNode):
                    line = key.start_mark.line + 1
                    if name in seen:
                        raise ConfigError(
                            f"{_path_of(entry) or '(top level)'}: duplicate key {name!r} at "
                            f"line {line} (first at line {seen[name]})"
                        )
                    seen[name] = line
                stack.append((value, entry, name))
        elif isinstance(node, yaml.SequenceNode):
            stack.extend((v, entry, i) for i, v in enumerate(node.value))


def _path_of(entry: Any) -> str:
    parts: list[str | int] = []
    while entry is not None and entry[2] is not None:
        parts.append(entry[2])
        entry = entry[1]
    path = ""
    for part in reversed(parts):
        path = f"{path}[{part}]" if isinstance(part, int) else _join(path, part)
    return path


def _parse_yaml(text: str) -> Any:
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        _check_nodes(node)
        return loader.construct_document(node)
    finally:
        loader.dispose()


def load_config(path: str | Path, env: Mapping[str, str] | None = None) -> RouterConfig:
    """Read and validate a profiles.yaml. Raises ConfigError with a readable message."""
    path = Path(path).expanduser()
    text = _read(path)
    try:
        data = _parse_yaml(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
        raise ConfigError(f"{path}: not valid YAML{where}: {getattr(e, 'problem', e)}") from None
    except ConfigError as e:
        raise ConfigError(f"{path}: {e}") from None
    except RecursionError:
        raise ConfigError(f"{path}: nested too deeply") from None
    try:
        return parse_config(data, env)
    except ConfigError as e:
        raise ConfigError(f"{path}:\n  " + str(e).replace("\n", "\n  ")) from None
    except RecursionError:
        raise ConfigError(f"{path}: nested too deeply") from None


def json_schema() -> dict[str, Any]:
    """The JSON Schema editors use to complete and validate profiles.yaml."""
    schema = RouterConfig.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "llmrouter profiles.yaml"
    return schema


def _main(argv: list[str]) -> int:
    """`python -m llmrouter.config --schema` prints the schema; `... FILE` validates a file."""
    if argv == ["--schema"]:
        print(json.dumps(json_schema(), indent=2, sort_keys=True))
        return 0
    if len(argv) != 1:
        print("usage: python -m llmrouter.config (--schema | PROFILES_YAML)", file=sys.stderr)
        return 2
    try:
        cfg = load_config(argv[0])
    except ConfigError as e:
        print(e, file=sys.stderr)
        return 1
    print(f"{argv[0]}: ok ({len(cfg.providers)} providers, {len(cfg.profiles)} profiles)")
    return 0


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
