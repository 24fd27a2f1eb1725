"""Decoding an OTLP/HTTP metrics request body, within bounds decided before paying for it.

OTLP/HTTP (opentelemetry-proto ``docs/specification.md``) sends an
``ExportMetricsServiceRequest`` as binary protobuf (``application/x-protobuf``) or in the
OTLP JSON mapping (``application/json``), optionally gzip-compressed. The JSON mapping is
protobuf's, except that trace and span ids are hex strings, not base64: they are converted
before ``json_format`` parses the message, so both forms yield the same message.

Bounds (the same keys as remote write): the decompressed size is capped while decompressing
(``ingest.max_decoded_bytes``, never more is inflated), and the elements a parse would allocate
are counted on the bytes before parsing (``ingest.max_decoded_elements``).
"""

from __future__ import annotations

import base64
import binascii
import json
import zlib
from dataclasses import dataclass
from typing import Any

from google.protobuf import json_format
from google.protobuf.message import DecodeError
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
)

from ..decompress import count_element_tags

PROTOBUF = "application/x-protobuf"
JSON = "application/json"

_LENGTH_DELIMITED_TAGS = bytes((n << 3) | 2 for n in range(1, 16))
"""Every OTLP metrics sub-message and string sits in a length-delimited field numbered 1-15,
so these tag bytes bound the elements a parse allocates."""
_JSON_SEPARATORS = b",:["
"""Every JSON value but the first follows one of these: their count bounds the values."""


class OTLPDecodeError(Exception):
    """The request cannot be decoded: ``status`` is 400, 413 or 415; ``message`` says why."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass(frozen=True)
class Bounds:
    max_decoded_bytes: int = 64 << 20
    max_decoded_elements: int = 2_000_000


def media_type(content_type: str | None) -> str:
    """``PROTOBUF`` or ``JSON`` for a request's ``Content-Type``, else ``OTLPDecodeError(415)``."""
    media = (content_type or "").split(";", 1)[0].strip().lower()
    if media in (PROTOBUF, JSON):
        return media
    raise OTLPDecodeError(
        415,
        f"unsupported Content-Type {(content_type or '')[:80]!r}: OTLP/HTTP takes "
        f"{PROTOBUF} or {JSON}",
    )


def gunzip(body: bytes, limit: int) -> bytes:
    """The decompressed body, inflating at most ``limit + 1`` bytes (413 past ``limit``)."""
    out: list[bytes] = []
    total = 0
    data = body
    while data:
        inflater = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
        try:
            piece = inflater.decompress(data, limit + 1 - total)
        except zlib.error as e:
            raise OTLPDecodeError(400, f"invalid gzip body: {e}") from None
        total += len(piece)
        if total > limit or inflater.unconsumed_tail:
            raise OTLPDecodeError(
                413,
                f"the body decompresses to more than {limit} bytes (ingest.max_decoded_bytes)",
            )
        if not inflater.eof:
            raise OTLPDecodeError(400, "invalid gzip body: it ended early")
        out.append(piece)
        data = inflater.unused_data  # a further gzip member, as Go's reader accepts
    return b"".join(out)


def decode(
    body: bytes, content_type: str | None, content_encoding: str | None, bounds: Bounds
) -> tuple[Any, str]:
    """The ``ExportMetricsServiceRequest`` in ``body`` and the media type it came in."""
    media = media_type(content_type)
    encoding = (content_encoding or "").strip().lower()
    if encoding == "gzip":
        body = gunzip(body, bounds.max_decoded_bytes)
    elif encoding not in ("", "identity"):
        raise OTLPDecodeError(415, f"unsupported Content-Encoding {encoding[:40]!r}: gzip or none")
    if len(body) > bounds.max_decoded_bytes:
        raise OTLPDecodeError(
            413,
            f"the body is {len(body)} bytes, over the limit of {bounds.max_decoded_bytes} "
            "(ingest.max_decoded_bytes)",
        )
    view = memoryview(body)
    tags = _LENGTH_DELIMITED_TAGS if media == PROTOBUF else _JSON_SEPARATORS
    elements = count_element_tags(view, tags)
    if elements > bounds.max_decoded_elements:
        raise OTLPDecodeError(
            413,
            f"the body holds up to {elements} elements, over the limit of "
            f"{bounds.max_decoded_elements} (ingest.max_decoded_elements)",
        )
    request: Any = ExportMetricsServiceRequest()
    if media == PROTOBUF:
        try:
            request.ParseFromString(body)
        except DecodeError as e:
            raise OTLPDecodeError(
                400, f"invalid protobuf ExportMetricsServiceRequest: {e}"
            ) from None
        return request, media
    try:
        document = json.loads(body)
    except (UnicodeDecodeError, ValueError) as e:
        raise OTLPDecodeError(400, f"invalid JSON: {str(e)[:200]}") from None
    except RecursionError:
        raise OTLPDecodeError(400, "invalid JSON: nested too deeply") from None
    if not isinstance(document, dict):
        raise OTLPDecodeError(400, "invalid OTLP JSON: the body is not an object")
    _hex_ids_to_base64(document)
    try:
        json_format.ParseDict(document, request, ignore_unknown_fields=True)
    except (json_format.ParseError, ValueError, TypeError, RecursionError) as e:
        raise OTLPDecodeError(400, f"invalid OTLP JSON: {str(e)[:300]}") from None
    return request, media


_ID_FIELDS = {"traceId": 16, "trace_id": 16, "spanId": 8, "span_id": 8}


def _hex_ids_to_base64(document: dict[str, Any]) -> None:
    """Rewrite the exemplars' hex ``traceId``/``spanId`` (OTLP JSON) as the base64 that
    protobuf's JSON mapping expects for ``bytes``; an id that is not hex of the right length
    is a 400. Only exemplars carry ids in a metrics request."""
    for rm in _items(document, "resourceMetrics", "resource_metrics"):
        for sm in _items(rm, "scopeMetrics", "scope_metrics"):
            for metric in _items(sm, "metrics"):
                for kind in (
                    "gauge",
                    "sum",
                    "histogram",
                    "exponentialHistogram",
                    "exponential_histogram",
                    "summary",
                ):
                    data = metric.get(kind) if isinstance(metric, dict) else None
                    for point in _items(data, "dataPoints", "data_points"):
                        for exemplar in _items(point, "exemplars"):
                            _convert_ids(exemplar)


def _items(parent: object, *keys: str) -> list[Any]:
    if not isinstance(parent, dict):
        return []
    for key in keys:
        value = parent.get(key)
        if isinstance(value, list):
            return value
    return []


def _convert_ids(exemplar: object) -> None:
    if not isinstance(exemplar, dict):
        return
    for key, size in _ID_FIELDS.items():
        value = exemplar.get(key)
        if value is None or value == "":
            continue
        if not isinstance(value, str) or len(value) != 2 * size:
            raise OTLPDecodeError(
                400, f"invalid exemplar {key}: {size * 2} hexadecimal digits expected"
            )
        try:
            raw = binascii.unhexlify(value)
        except (binascii.Error, ValueError):
            raise OTLPDecodeError(
                400, f"invalid exemplar {key} {value[:40]!r}: not hexadecimal"
            ) from None
        exemplar[key] = base64.b64encode(raw).decode("ascii")
