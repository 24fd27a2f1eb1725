"""Configuration errors as operators read them: one ``key.path: message`` line per problem.

pydantic's own errors name internal validator steps and echo any input; ``validate`` turns them
into ``ConfigError`` lines that name the exact key path and never show a secret's value (the
schema's types say which keys may hold one) nor a URL's credentials.
"""

from __future__ import annotations

import re
import typing
from collections.abc import Iterator
from typing import Annotated, Any, TypeVar

from pydantic import BaseModel, ValidationError

from ..redact import redact_url
from .types import holds_secret, is_url_field, quote

M = TypeVar("M", bound=BaseModel)


class ConfigError(ValueError):
    """Invalid configuration; ``errors`` holds ``(key path, message)`` pairs, one per problem."""

    def __init__(self, errors: list[tuple[str, str]]) -> None:
        self.errors = errors
        super().__init__("\n".join(f"{path}: {msg}" if path else msg for path, msg in errors))


def validate(model: type[M], data: dict[str, Any]) -> M:
    """``data`` as a ``model``.

    Raises:
        ConfigError: one line per problem, each naming the key path under ``model``.
    """
    try:
        return model.model_validate(data)
    except ValidationError as e:
        raise ConfigError(list(_describe(e, model))) from None


def kind_of(value: object) -> str:
    return {
        dict: "a mapping",
        list: "a list",
        str: "a string",
        bool: "a boolean",
        int: "an integer",
        float: "a number",
        type(None): "nothing",
    }.get(type(value), type(value).__name__)


def _path(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif part.startswith("function-") or part in ("lax-or-strict", "json-or-python"):
            continue  # pydantic's internal validator steps, not keys
        elif not re.fullmatch(r"[A-Za-z_][\w-]*", part):
            out += f"[{quote(part)}]"  # a key that is not a name: keep the message on one line
        else:
            out += f".{part}" if out else part
    return out


_SIMPLE_MESSAGES = {
    "string_type": "expected a string",
    "int_type": "expected an integer",
    "int_parsing": "expected an integer",
    "int_from_float": "expected an integer",
    "float_type": "expected a number",
    "float_parsing": "expected a number",
    "bool_type": "expected true or false",
    "bool_parsing": "expected true or false",
    "dict_type": "expected a mapping",
    "model_type": "expected a mapping",
    "model_attributes_type": "expected a mapping",
    "list_type": "expected a list",
}


def _describe(error: ValidationError, root: type[BaseModel]) -> Iterator[tuple[str, str]]:
    """Turn pydantic's errors into ``(key path, message)``; never a raw pydantic dump, and
    never the value of a secret (nor of anything that may contain one)."""
    for err in error.errors(include_url=False):
        loc = tuple(err["loc"])
        path = _path(loc)
        kind = err["type"]
        value = _shown_input(root, loc, err.get("input"))
        if kind == "extra_forbidden":
            yield path, "unknown key"
        elif kind == "missing":
            yield path, "required key is missing"
        elif kind in _SIMPLE_MESSAGES:
            yield path, f"{_SIMPLE_MESSAGES[kind]}, got {_show(value)}"
        elif kind == "literal_error":
            expected = err.get("ctx", {}).get("expected", "")
            yield path, f"must be one of {expected}, got {_show(value)}"
        elif kind == "value_error":
            msg = str(err.get("ctx", {}).get("error", err["msg"]))
            yield _split_nested(path, msg)
        else:  # greater_than, less_than_equal, string_too_short, ...: pydantic's own sentence
            yield path, f"{err['msg'][0].lower()}{err['msg'][1:]}, got {_show(value)}"


_NESTED_RE = re.compile(
    r"^(\[\d+\](?:\.[A-Za-z_][\w.\[\]]*)?|[A-Za-z_][\w.\[\]]*(?: and [\w.]+)?): (.*)$", re.S
)


def _split_nested(path: str, msg: str) -> tuple[str, str]:
    """Model validators report ``"sub.key: message"``; fold that prefix into the path."""
    m = _NESTED_RE.match(msg)
    if m is None:
        return path, msg
    sub, rest = m.groups()
    if " and " in sub:
        first, second = sub.split(" and ")
        sub = f"{first} and {path + '.' if path else ''}{second}"
    if sub.startswith("["):
        return f"{path}{sub}", rest
    return (f"{path}.{sub}" if path else sub), rest


class _Hidden:
    """Stands for a secret's input in an error message: only its kind is shown."""

    def __init__(self, value: object) -> None:
        self.kind = kind_of(value)


def _shown_input(root: type[BaseModel], loc: tuple[int | str, ...], value: object) -> object:
    """The input as an error may show it: hidden if the key may hold a secret, a URL with
    its credentials masked."""
    annotation, is_url = _annotation_at(root, loc)
    if holds_secret(annotation):
        return _Hidden(value)
    if is_url and isinstance(value, str):
        return redact_url(value)
    return value


def _annotation_at(root: type[BaseModel], loc: tuple[int | str, ...]) -> tuple[Any, bool]:
    """The declared type at an error's location (as deep as it can be followed: an outer type
    holds any secret an inner one does) and whether it is a URL."""
    annotation: Any = root
    is_url = False
    for part in loc:
        if isinstance(part, str) and (part.startswith("function-") or "-or-" in part):
            continue  # pydantic's validator steps, not keys
        while typing.get_origin(annotation) is Annotated:
            annotation = typing.get_args(annotation)[0]
        origin, args = typing.get_origin(annotation), typing.get_args(annotation)
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            field = annotation.model_fields.get(part) if isinstance(part, str) else None
            if field is None:
                break
            annotation = field.annotation
            is_url = is_url_field(field)
        elif origin is list and isinstance(part, int):
            annotation = args[0]
        elif origin is dict and isinstance(part, str):
            annotation = args[1]
        else:
            break
    return annotation, is_url


def _show(value: object) -> str:
    if isinstance(value, _Hidden):
        return f"{value.kind} (not shown: it may be a secret)"
    if value is None:
        return "null"
    if isinstance(value, str):
        return quote(value)
    if isinstance(value, (dict, list)):
        return kind_of(value)
    return repr(value) if not isinstance(value, bool) else str(value).lower()
