"""Reading a request body by HTTP/1.1's framing rules (RFC 9112), strictly and within a limit.

Strict because lenient parsing is how bodies get past limits: Python's ``int(text, 16)``
accepts ``-1``, ``+1``, ``0x10`` and ``1_0``, and a chunk size of ``-1`` once made the reader
take the whole connection to EOF into memory. Here a chunk size is ``1*HEXDIG`` and a
``Content-Length`` is ``1*DIGIT``, nothing else; the total is counted against the limit before
a byte of the chunk is read. Anything malformed is a 400 that closes the connection (after a
framing error the rest of the stream cannot be trusted).
"""

from __future__ import annotations

import re
from typing import BinaryIO

MAX_LINE = 1024
"""Longest chunk-size or trailer line (with extensions); real clients send a few bytes."""
MAX_TRAILER_LINES = 32
"""Trailer fields are read and dropped; a sender never needs many."""

_CHUNK_SIZE = re.compile(rb"[0-9A-Fa-f]{1,16}")
_DIGITS = re.compile(r"[0-9]{1,19}")


class BodyError(Exception):
    """The body cannot be read: ``status`` 400 (malformed framing) or 413 (over the limit)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def content_length(text: str) -> int:
    """The value of a ``Content-Length`` header: digits only (no sign, space or underscore)."""
    if not _DIGITS.fullmatch(text):
        raise BodyError(400, f"invalid Content-Length {text[:40]!r}: must be decimal digits")
    return int(text)


def check_transfer_encoding(value: str) -> None:
    """Only ``chunked`` alone is accepted: a request whose final coding is not ``chunked`` has
    no determinable length (RFC 9112 §6.3), and we implement no other coding."""
    if value.strip().lower() != "chunked":
        raise BodyError(400, f"unsupported Transfer-Encoding {value[:40]!r}: only chunked")


def _line(rfile: BinaryIO, what: str) -> bytes:
    line = rfile.readline(MAX_LINE + 1)
    if not line:
        raise BodyError(400, "the chunked body ended early")
    if not line.endswith(b"\n"):
        raise BodyError(400, f"{what} line longer than {MAX_LINE} bytes")
    return line.rstrip(b"\n").removesuffix(b"\r")


def read_chunked(rfile: BinaryIO, limit: int) -> bytes:
    """The decoded body of a chunked request, refused (413) once it would exceed ``limit``."""
    chunks: list[bytes] = []
    total = 0
    while True:
        line = _line(rfile, "chunk-size")
        size_text, semicolon, _extensions = line.partition(b";")
        if semicolon:  # "BWS" is allowed before a chunk extension, and only there
            size_text = size_text.rstrip(b" \t")
        if not _CHUNK_SIZE.fullmatch(size_text):
            raise BodyError(
                400, f"invalid chunk size {size_text[:20]!r}: must be 1 to 16 hexadecimal digits"
            )
        size = int(size_text, 16)
        if size == 0:
            break
        total += size
        if total > limit:
            raise BodyError(413, f"request body exceeds the limit of {limit} bytes")
        data = rfile.read(size)
        if len(data) < size:
            raise BodyError(400, "the chunked body ended early")
        chunks.append(data)
        if _line(rfile, "chunk-data end") != b"":
            raise BodyError(400, "chunk data longer than its chunk size")
    for _ in range(MAX_TRAILER_LINES):
        if _line(rfile, "trailer") == b"":
            return b"".join(chunks)
    raise BodyError(400, f"more than {MAX_TRAILER_LINES} trailer lines")


def read_exactly(rfile: BinaryIO, length: int) -> bytes:
    """``length`` bytes of body; a client that closes before sending them all is a 400."""
    body = rfile.read(length)
    if len(body) < length:
        raise BodyError(400, f"the body ended after {len(body)} of {length} bytes")
    return body
