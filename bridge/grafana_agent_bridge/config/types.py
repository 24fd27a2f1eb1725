"""The configuration's value types: how a duration, a size, a URL or a secret is read from
YAML, shown, and dumped back.

Each type is an ``Annotated`` alias whose validator gives an operator-readable message and whose
serializer decides what a dump shows: a ``Secret`` is masked and a URL's credentials are masked
unless the dump is the daemon's own file (``REVEAL``). Being types, not key names, they let the
schema itself say which keys are secret (``holds_secret``, ``secret_paths``), so nothing keeps a
list of secret key names that could fall behind.
"""

from __future__ import annotations

import ipaddress
import json
import re
import typing
from collections.abc import Iterator, Sequence
from datetime import timedelta
from typing import Annotated, Any
from urllib.parse import urlsplit

from pydantic import (
    BaseModel,
    BeforeValidator,
    PlainSerializer,
    SecretStr,
    SerializationInfo,
    WithJsonSchema,
)
from pydantic.fields import FieldInfo

from ..redact import MASK, first_unsafe_char, one_line, redact_url, redacted_netloc
from .units import MAX_SIZE, format_duration, format_size, parse_duration, parse_size


def quote(value: object) -> str:
    """A value quoted for an error message, escaped so the message stays on one line."""
    return one_line(json.dumps(str(value), ensure_ascii=False))


# --- durations and sizes --------------------------------------------------------------------


def validate_duration(value: object) -> timedelta:
    if isinstance(value, timedelta):
        return value
    if isinstance(value, bool):
        raise ValueError(f'expected a duration such as "30s", got {value!r}')
    if isinstance(value, int) and value == 0:
        return timedelta(0)
    if isinstance(value, (int, float)):
        raise ValueError(f'a duration needs a unit, e.g. "{value}s"; got {value!r}')
    if not isinstance(value, str):
        raise ValueError(f'expected a duration such as "30s", got {type(value).__name__}')
    return parse_duration(value)


Duration = Annotated[
    timedelta,
    BeforeValidator(validate_duration),
    PlainSerializer(format_duration, return_type=str),
    WithJsonSchema({"type": "string", "description": "Prometheus duration, e.g. 30s, 1h30m"}),
]
"""A Prometheus-syntax duration in YAML, a ``timedelta`` in Python (see ``duration_ms``)."""


def validate_size(value: object) -> int:
    if isinstance(value, bool):
        raise ValueError(f'expected a size such as "512MiB", got {value!r}')
    if isinstance(value, int):
        if not 0 <= value < MAX_SIZE:
            raise ValueError(f"a size must be between 0 and 1024PiB, got {value}")
        return value
    if not isinstance(value, str):
        raise ValueError(f'expected a size such as "512MiB", got {type(value).__name__}')
    return parse_size(value)


def _not_bool(value: object) -> object:
    if isinstance(value, bool):
        raise ValueError(f"expected a number, got {str(value).lower()}")
    return value


Int = Annotated[int, BeforeValidator(_not_bool)]
"""An integer that refuses YAML booleans (pydantic would read `true` as 1)."""
Float = Annotated[float, BeforeValidator(_not_bool)]

ByteSize = Annotated[
    int,
    BeforeValidator(validate_size),
    PlainSerializer(format_size, return_type=str),
    WithJsonSchema({"type": ["string", "integer"], "description": "bytes, e.g. 512MiB, 10GB"}),
]
"""A byte count; YAML accepts an integer or a number with a unit (B, KB/KiB, MB/MiB, ...)."""


# --- addresses and URLs ---------------------------------------------------------------------


def parse_host_port(text: str) -> tuple[str, int]:
    """Split ``host:port``, ``[v6]:port`` or ``:port`` (all interfaces, host ``""``).

    Raises:
        ValueError: with a message fit to show after the key path.
    """
    s = text.strip()
    host, sep, port_text = s.rpartition(":")
    if not sep:
        raise ValueError(f'invalid address {quote(text)}: expected HOST:PORT, e.g. "0.0.0.0:9099"')
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
        _check_ip(host, text)
    elif ":" in host:
        raise ValueError(
            f'invalid address {quote(text)}: write IPv6 hosts in brackets, "[::]:9099"'
        )
    if not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise ValueError(f"invalid address {quote(text)}: port must be 1-65535")
    if host and not re.fullmatch(r"[A-Za-z0-9.:_-]+", host):
        raise ValueError(f"invalid address {quote(text)}: bad host {quote(host)}")
    return host, int(port_text)


def _check_ip(host: str, text: str) -> None:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        raise ValueError(
            f"invalid address {quote(text)}: {quote(host)} is not an IP address"
        ) from None


def check_http_url(value: str) -> str:
    """``value`` if it is an http(s) URL; errors show it with credentials masked."""
    shown = quote(redact_url(value))
    unsafe = first_unsafe_char(value)
    if unsafe is not None:  # urlsplit would silently drop CR, LF and TAB: refuse them first
        at, char = unsafe
        raise ValueError(f"invalid URL {shown}: control character {char} at position {at}")
    if " " in value:
        raise ValueError(f"invalid URL {shown}: spaces must be percent-encoded (%20)")
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018  (raises ValueError on a bad port)
    except ValueError:
        raise ValueError(f"invalid URL {shown}") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"invalid URL {shown}: expected http(s)://host[:port]/path")
    return value


def validate_http_url(value: object) -> object:
    return check_http_url(value) if isinstance(value, str) else value


def _reveal(info: SerializationInfo) -> bool:
    """Whether a dump is for the daemon itself (``to_yaml``) rather than for showing."""
    context = info.context
    return isinstance(context, dict) and bool(context.get(REVEAL))


REVEAL = "reveal_secrets"


def dump_url(value: str, info: SerializationInfo) -> str:
    return value if _reveal(info) else redact_url(value)


HttpUrl = Annotated[
    str,
    BeforeValidator(validate_http_url),
    PlainSerializer(dump_url, return_type=str),
]
"""An http(s) URL. A dump masks its credentials (``redact_url``) unless ``to_yaml`` asks."""


def is_url_field(field: FieldInfo) -> bool:
    return any(getattr(m, "func", None) in (validate_http_url, dump_url) for m in field.metadata)


def validate_secret(value: object) -> object:
    if isinstance(value, str):
        unsafe = first_unsafe_char(value)
        if unsafe is not None:  # not echoed: the value is a secret
            raise ValueError(f"control character {unsafe[1]} at position {unsafe[0]}")
    return value


def _dump_secret(value: SecretStr, info: SerializationInfo) -> str:
    secret = value.get_secret_value()
    return secret if _reveal(info) or not secret else MASK


Secret = Annotated[
    SecretStr,
    BeforeValidator(validate_secret),
    PlainSerializer(_dump_secret, return_type=str),
    WithJsonSchema({"type": "string", "writeOnly": True, "description": "a secret"}),
]
"""A secret string: ``repr`` and dumps show ``***`` (``to_yaml`` keeps the value) and config
errors never echo it; read it with ``.get_secret_value()``."""

NAME_RE = re.compile(r"^[A-Za-z0-9_.-]+$")
HEADER_NAME_RE = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")  # RFC 9110 token


def _name_from(netloc: str, path: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", f"{netloc}{path}".strip("/")) or "target"


def derived_target_name(url: str) -> str:
    """A target's default name: host, port and path; never its userinfo or query, which may
    hold credentials (the name is a metrics label and part of file names)."""
    parts = urlsplit(url)
    return _name_from(redacted_netloc(parts.netloc).removeprefix(f"{MASK}@"), parts.path)


def legacy_target_name(url: str) -> str:
    """The name earlier versions derived from ``url``, userinfo included: forwarding renames
    state saved under it to the current name, so no cursor is lost."""
    parts = urlsplit(url)
    return _name_from(parts.netloc, parts.path)


def value_kind(metadata: Sequence[object]) -> str | None:
    """Which of these value types a field's metadata declares ("duration", "size", "URL",
    "secret string"), recognised by validator since pydantic strips the aliases."""
    funcs = {getattr(m, "func", None) for m in metadata}
    for func, kind in (
        (validate_duration, "duration"),
        (validate_size, "size"),
        (validate_http_url, "URL"),
        (validate_secret, "secret string"),
    ):
        if func in funcs:
            return kind
    return None


# --- which keys are secret: the schema says --------------------------------------------------


def holds_secret(annotation: Any) -> bool:
    """Whether a value of this type is, or may contain, a ``Secret``."""
    if annotation is SecretStr:
        return True
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return any(holds_secret(f.annotation) for f in annotation.model_fields.values())
    return any(holds_secret(a) for a in typing.get_args(annotation))


def secret_paths(model: type[BaseModel], prefix: str = "") -> Iterator[str]:
    """Dotted paths of the keys declared as secrets (``forward.targets[].headers``), found by
    walking the schema: a key is secret because its type is ``Secret``, not because a list
    names it."""
    for name, field in model.model_fields.items():
        path = f"{prefix}{name}"
        annotation = field.annotation
        origin, args = typing.get_origin(annotation), typing.get_args(annotation)
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            yield from secret_paths(annotation, f"{path}.")
        elif (
            origin is list
            and args
            and isinstance(args[0], type)
            and issubclass(args[0], BaseModel)
        ):
            yield from secret_paths(args[0], f"{path}[].")
        elif holds_secret(annotation):
            yield path
