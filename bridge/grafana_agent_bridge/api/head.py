"""A request's line and headers, read without the ``email`` package.

``BaseHTTPRequestHandler.parse_request`` hands the header block to ``email.parser``, whose
feed parser cost more than the rest of answering a single-series query (~13 us of state machine
for five headers). This reads the same thing directly: the request line checked as the
standard library checks it (same statuses and messages), header lines bounded as
``http.client`` bounds them (``MAX_LINE`` bytes each, ``MAX_HEADERS`` lines), and the result
kept in a ``Headers`` that answers what the handler asks of ``http.client.HTTPMessage``
(``get``, ``get_all``, ``items``, ``in``) the same way: the ``email`` message scanned and
lower-cased every header on each of the handful of ``get`` calls a request makes.

Where the two differ, this one is stricter, like Go's server (which is what Prometheus runs): a
header line without a colon, or whose name holds whitespace, is a 400 instead of silently
ending the headers there; an obsolete folded line (RFC 9112 §5.2) is joined to the header it
continues with a space.
"""

from __future__ import annotations

import http.client
from dataclasses import dataclass
from http import HTTPStatus
from typing import BinaryIO, overload

MAX_LINE = 65536
"""Longest header line, as ``http.client._MAXLINE``."""
MAX_HEADERS = 100
"""Most header lines, as ``http.client._MAXHEADERS``."""
_NAME_FORBIDDEN = frozenset(" \t\r\n\v\f")


class HeadError(Exception):
    """The request head is refused: answer ``status`` with ``message`` (and ``explain``)."""

    def __init__(self, status: HTTPStatus, message: str, explain: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.explain = explain


@dataclass(frozen=True)
class RequestLine:
    command: str
    path: str
    version: str
    """``HTTP/1.1``, ``HTTP/1.0``, or ``HTTP/0.9`` for a two-word line."""
    keep_alive: bool
    """Whether the version alone keeps the connection open (HTTP/1.1 or later)."""


def request_line(text: str, default_version: str) -> RequestLine | None:
    """The parts of a request line (CRLF removed); ``None`` for an empty line.

    Raises:
        HeadError: with the standard library's status and message.
    """
    words = text.split()
    if not words:
        return None
    version = default_version
    keep_alive = False
    if len(words) >= 3:
        version = words[-1]
        number = _version_number(version)
        if number is None:
            raise HeadError(HTTPStatus.BAD_REQUEST, f"Bad request version ({version!r})")
        keep_alive = number >= (1, 1)
        if number >= (2, 0):
            raise HeadError(
                HTTPStatus.HTTP_VERSION_NOT_SUPPORTED,
                f"Invalid HTTP version ({version.split('/', 1)[1]})",
            )
    if not 2 <= len(words) <= 3:
        raise HeadError(HTTPStatus.BAD_REQUEST, f"Bad request syntax ({text!r})")
    command, path = words[:2]
    if len(words) == 2:
        keep_alive = False
        if command != "GET":
            raise HeadError(HTTPStatus.BAD_REQUEST, f"Bad HTTP/0.9 request type ({command!r})")
    if path.startswith("//"):  # never an absolute URI without a scheme (gh-87389)
        path = "/" + path.lstrip("/")
    return RequestLine(command, path, version, keep_alive)


def _version_number(version: str) -> tuple[int, int] | None:
    if not version.startswith("HTTP/"):
        return None
    parts = version[5:].split(".")
    if len(parts) != 2 or not all(p.isdigit() and len(p) <= 10 for p in parts):
        return None
    return int(parts[0]), int(parts[1])


def read_headers(rfile: BinaryIO) -> Headers:
    """The header lines up to the empty one (``Headers``).

    Raises:
        HeadError: 431 for a line over ``MAX_LINE`` or more than ``MAX_HEADERS`` lines,
            400 for a line that is not a header.
    """
    pairs: list[list[str]] = []
    lines = 0
    while True:
        raw = rfile.readline(MAX_LINE + 1)
        if len(raw) > MAX_LINE:
            raise HeadError(
                HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE,
                "Line too long",
                str(http.client.LineTooLong("header line")),
            )
        lines += 1
        if lines > MAX_HEADERS:
            raise HeadError(
                HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE,
                "Too many headers",
                f"got more than {MAX_HEADERS} headers",
            )
        if raw in (b"\r\n", b"\n", b""):
            break
        line = raw.decode("iso-8859-1").rstrip("\r\n")
        if line[:1] in (" ", "\t"):
            if not pairs:
                raise HeadError(HTTPStatus.BAD_REQUEST, "Bad request: folded first header line")
            pairs[-1][1] += " " + line.strip(" \t")
            continue
        name, colon, value = line.partition(":")
        if not colon or not name or not _NAME_FORBIDDEN.isdisjoint(name):
            raise HeadError(HTTPStatus.BAD_REQUEST, f"Bad request: malformed header line {line!r}")
        pairs.append([name, value.lstrip(" \t")])
    return Headers([(name, value) for name, value in pairs])


class Headers:
    """A request's header lines in order, read like ``http.client.HTTPMessage``: names in any
    case, the first value of a repeated header from ``get``, every value from ``get_all``."""

    __slots__ = ("_first", "_pairs")

    def __init__(self, pairs: list[tuple[str, str]]) -> None:
        self._pairs = pairs
        first: dict[str, str] = {}
        for name, value in pairs:
            first.setdefault(name.lower(), value)
        self._first = first

    @overload
    def get(self, name: str) -> str | None: ...
    @overload
    def get(self, name: str, default: str) -> str: ...
    def get(self, name: str, default: str | None = None) -> str | None:
        return self._first.get(name.lower(), default)

    def __getitem__(self, name: str) -> str | None:
        return self._first.get(name.lower())

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name.lower() in self._first

    def get_all(self, name: str) -> list[str]:
        key = name.lower()
        return [value for n, value in self._pairs if n.lower() == key]

    def items(self) -> list[tuple[str, str]]:
        return list(self._pairs)
