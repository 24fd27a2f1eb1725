"""Decompressing a remote-write body within bounds decided before paying for it.

Snappy expands up to 21 times, and the protobuf parser then spends up to ~54 bytes on an element
sent in 2 (an empty series or sample): a 1 MiB body used to cost ~450 MiB of memory. So:

- the decoded size is read from the snappy block header (a varint in its first bytes) and
  refused past ``max_decoded_bytes`` before anything is allocated; the decompressor then
  fails on a body that does not decode to exactly the declared size;
- every protobuf element the parser allocates (series, labels, samples, exemplars, histograms,
  metadata, and their strings) begins with one of the length-delimited tag bytes of fields 1-5
  (``0x0a 0x12 0x1a 0x22 0x2a``), so counting those bytes (C speed, no parse) is an upper
  bound on the elements; past ``max_elements`` the body is refused before it is parsed.
"""

from __future__ import annotations

import cramjam

ELEMENT_TAGS = b"\x0a\x12\x1a\x22\x2a"
_COUNT_STEP = 1 << 20


class BodyTooLargeError(Exception):
    """The body decodes to more than a limit allows (HTTP 413); ``message`` names the key."""


def declared_length(body: bytes) -> int:
    """The uncompressed length a snappy block declares (ValueError if the header is bad)."""
    length = 0
    for i, byte in enumerate(body[:5]):  # a uint32 varint: at most 5 bytes
        length |= (byte & 0x7F) << (7 * i)
        if byte < 0x80:
            return length
    raise ValueError("invalid snappy block header")


def decompress(
    body: bytes, max_decoded_bytes: int, max_elements: int, tags: bytes = ELEMENT_TAGS
) -> memoryview:
    """The decompressed body, or ``BodyTooLargeError`` before any large allocation.

    Raises:
        ValueError: ``body`` is not a valid snappy block.
        BodyTooLargeError: it declares more than ``max_decoded_bytes`` or holds more than
            ``max_elements`` protobuf elements (counted as ``tags`` bytes: the length-delimited
            tags that begin an element of the message decoded; remote write 1.0's by default).
    """
    size = declared_length(body)
    if size > max_decoded_bytes:
        raise BodyTooLargeError(
            f"the body decompresses to {size} bytes, over the limit of {max_decoded_bytes} "
            "(ingest.max_decoded_bytes)"
        )
    try:
        raw = memoryview(cramjam.snappy.decompress_raw(body))
    except Exception as e:  # cramjam raises its own error types
        raise ValueError(str(e)) from None
    if len(raw) != size:
        raise ValueError(f"decoded {len(raw)} bytes, the header declared {size}")
    elements = count_element_tags(raw, tags)
    if elements > max_elements:
        raise BodyTooLargeError(
            f"the body holds up to {elements} protobuf elements, over the limit of "
            f"{max_elements} (ingest.max_decoded_elements)"
        )
    return raw


def count_element_tags(data: memoryview, tags: bytes = ELEMENT_TAGS) -> int:
    """How many bytes of ``data`` are element tags (an upper bound on its protobuf elements),
    counted a MiB at a time so that no copy of the whole body is made. Deleting the tag bytes
    and measuring what is left is one C pass over a piece (five ``count`` calls were five).
    ``tags`` are the bytes counted (remote write's element tags by default)."""
    total = 0
    for start in range(0, len(data), _COUNT_STEP):
        piece = data[start : start + _COUNT_STEP].tobytes()
        total += len(piece) - len(piece.translate(None, tags))
    return total
