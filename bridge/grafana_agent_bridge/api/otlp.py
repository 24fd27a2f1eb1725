"""``POST /api/v1/otlp/v1/metrics`` (and ``/v1/metrics``): OTLP/HTTP metrics ingest.

Answers by the OTLP/HTTP rules (opentelemetry-proto ``docs/specification.md``), in the
request's own encoding (protobuf or JSON):

- 200 with an ``ExportMetricsServiceResponse``; when some data points were refused it carries
  ``partial_success`` with ``rejected_data_points`` and an ``error_message`` naming why (the
  sender must not retry those). The valid points of the same request are stored.
- 400 (malformed body), 413 (over a size limit), 415 (not protobuf/JSON, not gzip) with a
  ``google.rpc.Status`` body: not retryable.
- 503 with ``Retry-After`` when the store cannot take the write now (disk full, I/O fault,
  shutdown) or all ``ingest.max_concurrent_writes`` slots are taken: OTLP senders retry these.

Stored series go through the same ``Appender`` as remote write, so they are queried and
forwarded alike.
"""

from __future__ import annotations

import json
from typing import Any

from google.protobuf import json_format
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceResponse,
)

from ..lifecycle import Lifecycle, Phase
from ..metrics import Registry
from ..otlp.decode import JSON, PROTOBUF, Bounds, OTLPDecodeError, decode
from ..otlp.translate import Settings, Translator
from ..remote_write import varint
from ..storage import Appender, ShuttingDownError, StorageFullError
from .query import Response

RETRY_AFTER_S = 5
MAX_MESSAGE_CHARS = 1000

# google.rpc.Code values used in Status bodies.
INVALID_ARGUMENT = 3
UNAVAILABLE = 14


class OTLPMetrics:
    """What OTLP ingest counts, in the registry the daemon gives it."""

    def __init__(self, registry: Registry) -> None:
        self.requests = registry.counter(
            "bridge_otlp_requests_total",
            "OTLP/HTTP metrics requests received, by HTTP status.",
            ("code",),
        )
        self.points = registry.counter(
            "bridge_otlp_data_points_total", "OTLP data points received (valid or not)."
        )
        self.rejected = registry.counter(
            "bridge_otlp_rejected_data_points_total",
            "OTLP data points refused (reported to the sender as partial success).",
        )
        self.samples = registry.counter(
            "bridge_otlp_samples_total", "Samples stored from OTLP requests."
        )


def status_body(media: str, code: int, message: str) -> bytes:
    """A ``google.rpc.Status`` (code, message) in ``media``: protobuf written by hand (two
    fields), so no extra schema is needed."""
    message = message[:MAX_MESSAGE_CHARS]
    if media == JSON:
        return json.dumps({"code": code, "message": message}).encode()
    text = message.encode()
    return b"\x08" + varint(code) + b"\x12" + varint(len(text)) + text


def _media_of(content_type: str | None) -> str:
    media = (content_type or "").split(";", 1)[0].strip().lower()
    return JSON if media == JSON else PROTOBUF


def unavailable(content_type: str | None, message: str) -> Response:
    media = _media_of(content_type)
    return Response(
        503,
        status_body(media, UNAVAILABLE, message),
        content_type=media,
        headers={"Retry-After": str(RETRY_AFTER_S)},
    )


class OTLPMetricsAPI:
    def __init__(
        self,
        appender: Appender,
        settings: Settings,
        bounds: Bounds,
        *,
        lifecycle: Lifecycle | None = None,
        registry: Registry | None = None,
    ) -> None:
        """Requests are refused (503, retryable) unless ``lifecycle`` is serving; without one,
        always accepted. ``registry`` receives the metrics (a private one when not given)."""
        self.appender = appender
        self.translator = Translator(settings)
        self.bounds = bounds
        self.lifecycle = lifecycle or Lifecycle(Phase.SERVING)
        self.metrics = OTLPMetrics(registry or Registry())

    def handle(
        self, body: bytes, content_type: str | None, content_encoding: str | None
    ) -> Response:
        if not self.lifecycle.serving:
            response = unavailable(content_type, "the bridge is shutting down")
        else:
            response = self._handle(body, content_type, content_encoding)
        self.metrics.requests.inc(1, str(response.status))
        return response

    def _handle(
        self, body: bytes, content_type: str | None, content_encoding: str | None
    ) -> Response:
        try:
            request, media = decode(body, content_type, content_encoding, self.bounds)
        except OTLPDecodeError as e:
            media = _media_of(content_type)
            return Response(
                e.status, status_body(media, INVALID_ARGUMENT, e.message), content_type=media
            )
        translation = self.translator.translate(request)
        self.metrics.points.inc(translation.points)
        try:
            result = self.appender.append(translation.series, translation.metadata)
        except StorageFullError as e:
            return unavailable(content_type, f"storage unavailable, retry later: {e}")
        except ShuttingDownError:
            return unavailable(content_type, "the bridge is shutting down")
        self.metrics.samples.inc(result.accepted_samples)
        translation.store_rejections(result.rejections)
        response: Any = ExportMetricsServiceResponse()
        rejected = translation.rejected_points
        if translation.errors:
            self.metrics.rejected.inc(rejected)
            message = "; ".join(translation.errors)
            more = translation.error_count - len(translation.errors)
            if more > 0:
                message += f"; and {more} more"
            response.partial_success.rejected_data_points = rejected
            response.partial_success.error_message = message[:MAX_MESSAGE_CHARS]
        if media == JSON:
            payload = json_format.MessageToJson(response, indent=None).encode()
        else:
            payload = response.SerializeToString()
        return Response(200, payload, content_type=media)
