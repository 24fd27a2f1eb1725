"""Reading the configuration file: YAML in, a validated ``BridgeConfig`` out.

The loader is PyYAML's safe loader that also refuses duplicate keys (YAML would silently keep
the last), an empty value means the key's default, and every problem is a ``ConfigError`` line
naming its key path, with the file's name on lines that have no key.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from .errors import ConfigError, kind_of, validate
from .schema import BridgeConfig
from .types import quote


class _UniqueKeyLoader(yaml.SafeLoader):
    """A safe loader that rejects duplicate keys instead of silently keeping the last."""


def _construct_mapping(loader: yaml.SafeLoader, node: yaml.MappingNode) -> dict[Any, Any]:
    loader.flatten_mapping(node)
    result: dict[Any, Any] = {}
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)  # type: ignore[no-untyped-call]
        try:
            duplicate = key in result
        except TypeError:  # a list or mapping used as a key
            raise yaml.constructor.ConstructorError(
                None, None, "found an unhashable key", key_node.start_mark
            ) from None
        if duplicate:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {quote(key)}", key_node.start_mark
            )
        result[key] = loader.construct_object(value_node, deep=True)  # type: ignore[no-untyped-call]
    return result


_UniqueKeyLoader.add_constructor(
    yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG,
    _construct_mapping,  # type: ignore[arg-type]
)


def parse_config(text: str) -> BridgeConfig:
    """Validate configuration YAML; empty text gives the embedded defaults.

    Raises:
        ConfigError: YAML syntax error or any invalid key; the message names the key path.
    """
    try:
        data = yaml.load(text, Loader=_UniqueKeyLoader)  # a SafeLoader subclass
    except yaml.YAMLError as e:
        raise ConfigError([("", f"invalid YAML: {_yaml_problem(e)}")]) from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError([("", f"the top level must be a mapping, got {kind_of(data)}")])
    return validate(BridgeConfig, _drop_nulls(data))


def _drop_nulls(value: Any) -> Any:
    """An empty value (``key:`` with everything under it commented out) means the default."""
    if isinstance(value, dict):
        return {k: _drop_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_drop_nulls(v) for v in value]
    return value


def load_config(path: str | Path | None) -> BridgeConfig:
    """Read and validate the configuration file; ``None`` gives the embedded defaults.

    Raises:
        ConfigError: the file is unreadable or invalid; the message names the key path.
    """
    if path is None:
        return BridgeConfig()
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        reason = e.strerror if isinstance(e, OSError) and e.strerror else str(e)
        raise ConfigError([("", f"cannot read config file {path}: {reason}")]) from None
    try:
        return parse_config(text)
    except ConfigError as e:
        raise ConfigError([(p, m) if p else ("", f"{path}: {m}") for p, m in e.errors]) from None


def _yaml_problem(e: yaml.YAMLError) -> str:
    mark = getattr(e, "problem_mark", None)
    problem = getattr(e, "problem", None) or str(e)
    if mark is not None:
        return f"{problem} (line {mark.line + 1}, column {mark.column + 1})"
    return problem
