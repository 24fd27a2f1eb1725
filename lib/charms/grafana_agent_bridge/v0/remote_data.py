# Copyright 2026 grafana-agent-bridge contributors
# See LICENSE file for licensing details.
"""The one door for values read from another application's relation databag.

Under cross-model relations the other side is untrusted: a databag value may be megabytes
long, nested thousands of levels deep (``json.loads`` then raises RecursionError), or hold
strings with NULs, lone surrogates, bidirectional-override marks or digits that ``isdigit``
accepts and ``int`` refuses. Every remote value goes through these functions, which either
return something of the expected shape or raise :class:`RemoteDataError`, whose message says
what is wrong without echoing the value. Callers drop what raises and say so (a log line and
the unit status); nothing here ever raises anything else.

The bounds, in order, before any parsing work is paid for:

1. the raw string's length (:data:`MAX_JSON_CHARS` unless the caller allows more);
2. the JSON nesting depth, counted on the raw text without recursion (:data:`MAX_DEPTH`);
3. only then ``json.loads``, whose result the caller type-checks.
"""

from __future__ import annotations

import ipaddress
import json
import re
import unicodedata
from dataclasses import dataclass
from itertools import accumulate
from typing import Any
from urllib.parse import urlsplit

# The unique identifier of this library.
LIBID = "7f2924b0918f46d8a4a5c9feaa38847e"
# Increment this major API version when introducing breaking changes.
LIBAPI = 0
# Increment this PATCH version before using `charmcraft publish-lib` or reset to 0 when
# bumping LIBAPI.
LIBPATCH = 1

MAX_JSON_CHARS = 1 << 20
"""Default size cap of a JSON value (1 MiB): a UID map of a thousand units is ~120 KiB."""
MAX_DEPTH = 32
"""Deepest JSON nesting accepted; the interfaces' real values are at most 5 levels deep."""
MAX_TEXT_CHARS = 256
"""Longest plain string (a UID, an application name) taken from a remote databag."""
MAX_URL_CHARS = 2048
MIN_IPV4_PREFIX = 8
"""Widest IPv4 network taken from relation data: a /8. 0.0.0.0/0 would let anyone in."""
MIN_IPV6_PREFIX = 32
"""Widest IPv6 network taken from relation data: a /32 (a whole site's allocation)."""
_IPV4_MAPPED = ipaddress.IPv6Network("::ffff:0:0/96")

# A JSON string token: quote, any run of non-special characters or escapes, closing quote.
# The closing quote is optional so an unterminated string ends the scan instead of being
# rescanned from every later quote (which would make the scan quadratic).
_JSON_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"?', re.DOTALL)
_NOT_BRACKET = re.compile(r"[^\[\]{}]+")
_STEP = {"[": 1, "{": 1, "]": -1, "}": -1}
# Unicode categories refused in remote text: controls (NUL...), format characters
# (bidirectional marks and overrides, zero-width joiners), lone surrogates, private use and
# unassigned code points.
_BAD_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Co", "Cn"})


class RemoteDataError(ValueError):
    """A remote value is unusable; the message says why and never contains the value."""


class TooWideNetworkError(RemoteDataError):
    """A valid network that would let too many addresses in."""

    def __init__(self, network: ipaddress.IPv4Network | ipaddress.IPv6Network):
        super().__init__(f"is wider than /{MIN_IPV4_PREFIX} (IPv4) or /{MIN_IPV6_PREFIX} (IPv6)")
        self.network = str(network)
        """The refused network, normalised (IP syntax only, safe to show)."""


@dataclass(frozen=True)
class Ignored:
    """Something a remote application published that the charm dropped, for the unit status.

    ``source`` is a Juju application or unit name (never remote text), ``what`` a fixed phrase
    (e.g. "bad remote_write"), so the status cannot be made to show attacker-chosen text.
    """

    what: str
    source: str

    def __str__(self) -> str:
        return f"{self.what} from {self.source}"


def nesting_depth(text: str) -> int:
    """The deepest bracket nesting of JSON text, computed without recursion in linear time.

    Brackets inside strings do not count. On malformed text the figure is still an upper
    bound of what a parser could recurse into, which is all the caller needs.
    """
    brackets = _NOT_BRACKET.sub("", _JSON_STRING.sub("", text))
    return max(0, max(accumulate(_STEP[c] for c in brackets), default=0))


def load_json(raw: object, *, max_chars: int = MAX_JSON_CHARS, max_depth: int = MAX_DEPTH) -> Any:
    """Parse a remote JSON value within the size and depth bounds.

    Raises:
        RemoteDataError: not a string, too long, nested too deep or not JSON.
    """
    if not isinstance(raw, str):
        raise RemoteDataError(f"is a {type(raw).__name__}, not text")
    if len(raw) > max_chars:
        raise RemoteDataError(f"is {len(raw)} characters long, more than {max_chars}")
    depth = nesting_depth(raw)
    if depth > max_depth:
        raise RemoteDataError(f"is nested {depth} levels deep, more than {max_depth}")
    try:
        return json.loads(raw)
    except json.JSONDecodeError as e:
        raise RemoteDataError(f"is not JSON ({e.msg} at character {e.pos})") from None
    except (ValueError, RecursionError) as e:  # e.g. an integer of more than 4300 digits
        raise RemoteDataError(f"is not usable JSON ({type(e).__name__})") from None


def clean_text(value: object, *, max_chars: int = MAX_TEXT_CHARS) -> str:
    """A non-empty string of printable characters, as a UID or a name must be.

    Raises:
        RemoteDataError: not a string, empty, too long, or holding a control, format
            (e.g. right-to-left override), surrogate, private-use or unassigned character.
    """
    if not isinstance(value, str):
        raise RemoteDataError(f"is a {type(value).__name__}, not a string")
    if not value:
        raise RemoteDataError("is empty")
    if len(value) > max_chars:
        raise RemoteDataError(f"is {len(value)} characters long, more than {max_chars}")
    for char in value:
        if unicodedata.category(char) in _BAD_CATEGORIES:
            raise RemoteDataError(f"holds the non-printable character U+{ord(char):04X}")
    return value


def http_url(value: object) -> str:
    """An ``http(s)://host[:port]/path`` URL the bridge will accept, unchanged.

    Stricter than the bridge (printable ASCII only, no comma, no whitespace), because the
    value is also an item of a comma-separated snap setting.

    Raises:
        RemoteDataError: anything else, including an unparsable host or port.
    """
    if not isinstance(value, str):
        raise RemoteDataError(f"is a {type(value).__name__}, not a URL")
    if len(value) > MAX_URL_CHARS:
        raise RemoteDataError(f"is {len(value)} characters long, more than {MAX_URL_CHARS}")
    if not value.isascii() or not value.isprintable() or " " in value or "," in value:
        raise RemoteDataError("holds characters a URL here may not (non-ASCII, space, comma)")
    try:
        parts = urlsplit(value)
        _ = parts.port  # raises ValueError on a bad port
    except ValueError:
        raise RemoteDataError("is not a parsable URL") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise RemoteDataError("is not an http(s) URL with a host")
    return value


def narrow_network(value: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    """An IP address or network no wider than the sane prefixes above.

    An IPv4-mapped IPv6 network (``::ffff:a.b.c.d/n``) is judged as the IPv4 network it
    covers, so ``::ffff:0.0.0.0/96`` cannot smuggle in all of IPv4.

    Raises:
        TooWideNetworkError: a network wider than those prefixes.
        RemoteDataError: not an address or network.
    """
    try:
        network = ipaddress.ip_network(value.strip(), strict=False)
    except ValueError:
        raise RemoteDataError("is not an IP address or network") from None
    if isinstance(network, ipaddress.IPv4Network):
        too_wide = network.prefixlen < MIN_IPV4_PREFIX
    elif network.subnet_of(_IPV4_MAPPED):
        too_wide = network.prefixlen - 96 < MIN_IPV4_PREFIX
    else:
        too_wide = network.overlaps(_IPV4_MAPPED) or network.prefixlen < MIN_IPV6_PREFIX
    if too_wide:
        raise TooWideNetworkError(network)
    return network
