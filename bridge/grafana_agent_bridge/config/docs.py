"""Generate the reference tables of ``docs/configuration.md`` from the models themselves.

The configuration reference is written once, as field descriptions in ``config.schema`` and the
snap key table in ``config.snapkeys``; this module renders them into the marked blocks of the
document, so the docs cannot drift from what the validator accepts (a test runs ``--check``).

    python -m grafana_agent_bridge.config.docs docs/configuration.md          # rewrite
    python -m grafana_agent_bridge.config.docs --check docs/configuration.md  # exit 1 if stale
"""

from __future__ import annotations

import json
import sys
import types
import typing
from collections.abc import Iterator, Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, SecretStr
from pydantic.fields import FieldInfo

from .schema import BridgeConfig
from .snapkeys import SNAP_KEYS
from .types import value_kind
from .units import format_duration, format_size

BEGIN = "<!-- BEGIN GENERATED {name}: python -m grafana_agent_bridge.config.docs -->"
END = "<!-- END GENERATED {name} -->"


def _type_name(annotation: Any, metadata: Sequence[object] = ()) -> str:
    kind = value_kind(metadata)
    if kind:
        return kind
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin is typing.Annotated:
        return _type_name(args[0], annotation.__metadata__)
    if origin in (typing.Union, types.UnionType):
        names = [_type_name(a) for a in args if a is not type(None)]
        return " or ".join(names) + (" or null" if type(None) in args else "")
    if origin is Literal:
        return "one of " + ", ".join(f"`{a}`" for a in args)
    if origin is list:
        return f"list of {_type_name(args[0])}s"
    if origin is dict:
        return f"mapping of {_type_name(args[0])} to {_type_name(args[1])}"
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return "mapping"
    return {str: "string", int: "integer", float: "number", bool: "boolean"}.get(
        annotation, getattr(annotation, "__name__", str(annotation))
    )


def _default(field: FieldInfo) -> str:
    if field.is_required():
        return "(required)"
    value = field.get_default(call_default_factory=True)
    if value is None:
        return "(see description)"
    if isinstance(value, BaseModel):
        return ""
    if isinstance(value, timedelta):
        return f"`{format_duration(value)}`"
    if isinstance(value, SecretStr):
        return f"`{json.dumps(value.get_secret_value())}`"
    if value_kind(field.metadata) == "size":
        return f"`{format_size(value)}`"
    return f"`{json.dumps(value)}`"


def _rows(model: type[BaseModel], prefix: str) -> Iterator[tuple[str, str, str, str]]:
    for name, field in model.model_fields.items():
        path = f"{prefix}{name}"
        annotation = field.annotation
        nested = None
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            nested = (annotation, f"{path}.")
        elif typing.get_origin(annotation) is list:
            (item,) = typing.get_args(annotation)
            if isinstance(item, type) and issubclass(item, BaseModel):
                nested = (item, f"{path}[].")
        type_name = _type_name(annotation, field.metadata)
        if nested and typing.get_origin(annotation) is list:
            type_name = "list of mappings"
        yield f"`{path}`", type_name, _default(field), (field.description or "").strip()
        if nested:
            yield from _rows(*nested)


def config_table() -> str:
    lines = ["| key | type | default | meaning |", "|---|---|---|---|"]
    for key, type_name, default, meaning in _rows(BridgeConfig, ""):
        escaped = meaning.replace("|", "\\|")
        lines.append(f"| {key} | {type_name} | {default} | {escaped} |")
    return "\n".join(lines)


def snap_table() -> str:
    lines = ["| snap key | config key | example | meaning |", "|---|---|---|---|"]
    for key in SNAP_KEYS:
        example = f"`{key.name}={key.example}`" if key.example else ""
        meaning = f"{key.help} (secret: never shown)" if key.secret else key.help
        lines.append(f"| `{key.name}` | `{key.path}` | {example} | {meaning} |")
    return "\n".join(lines)


BLOCKS = {"CONFIG-REFERENCE": config_table, "SNAP-KEYS": snap_table}


def render(document: str) -> str:
    """``document`` with every generated block replaced by its current content."""
    for name, make in BLOCKS.items():
        begin, end = BEGIN.format(name=name), END.format(name=name)
        head, sep, rest = document.partition(begin)
        if not sep:
            raise ValueError(f"marker missing: {begin}")
        _, sep, tail = rest.partition(end)
        if not sep:
            raise ValueError(f"marker missing: {end}")
        document = f"{head}{begin}\n{make()}\n{end}{tail}"
    return document


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    check = "--check" in args
    paths = [a for a in args if a != "--check"]
    if len(paths) != 1:
        print("usage: python -m grafana_agent_bridge.config.docs [--check] FILE", file=sys.stderr)
        return 2
    path = Path(paths[0])
    current = path.read_text(encoding="utf-8")
    wanted = render(current)
    if current == wanted:
        return 0
    if check:
        print(f"{path} is stale: run python -m grafana_agent_bridge.config.docs {path}")
        return 1
    path.write_text(wanted, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
