"""``POST /api/v1/write``: the remote-write 1.0 receiver.

What is kept of a request (the contract senders and operators rely on):

- The whole request is refused, nothing stored, for a wrong ``Content-Type``/``Content-Encoding``
  or a remote-write 2.0 body (415), a body over ``ingest.max_body_bytes`` (413), bad snappy or
  protobuf (400), a full disk or I/O fault (503 with ``Retry-After``) and shutdown (503).
- Otherwise every valid sample is stored, and the answer is 204 when nothing was invalid, or
  400 listing what was rejected: series with invalid labels (whole series), out-of-order or
  duplicate-timestamp samples (just those samples), native histograms. A 400 tells the sender
  not to retry, which is right: a retry would be rejected the same way, and the valid samples
  it carried are already stored (an exact re-send of a stored sample is accepted silently).

This differs from Prometheus, which rolls back a whole request on an out-of-order sample: here
one bad series in a batch of 2,000 does not cost the other 1,999.
"""

from __future__ import annotations

from collections.abc import Sequence

from ..labels import Labels
from ..metrics import REGISTRY
from ..remote_write import RemoteWriteError, decode_write_request
from ..storage import Appender, Rejection, ShuttingDownError, StorageFullError
from . import encoding
from .query import Response

RETRY_AFTER_S = 5
MAX_LISTED_REJECTIONS = 20

_requests = REGISTRY.counter(
    "bridge_ingest_requests_total", "Remote-write requests received, by HTTP status.", ("code",)
)
_samples = REGISTRY.counter("bridge_ingest_samples_total", "Samples stored from remote write.")
_rejected = REGISTRY.counter(
    "bridge_ingest_rejections_total",
    "Samples or series of remote-write requests that were refused (400).",
)
_exemplars = REGISTRY.counter("bridge_ingest_exemplars_total", "Exemplars stored.")


def _show_labels(labels: Labels) -> str:
    if not labels:
        return "{}"
    return "{" + ", ".join(f'{n}="{v}"' for n, v in labels) + "}"


def describe(rejections: Sequence[Rejection]) -> str:
    parts = []
    for r in rejections[:MAX_LISTED_REJECTIONS]:
        at = f" at {r.timestamp}" if r.timestamp is not None else ""
        parts.append(f"{r.reason} for {_show_labels(r.labels)}{at}")
    more = len(rejections) - MAX_LISTED_REJECTIONS
    if more > 0:
        parts.append(f"and {more} more")
    return "; ".join(parts)


class WriteAPI:
    def __init__(self, appender: Appender) -> None:
        self.appender = appender
        self.shutting_down = False

    def handle(
        self, body: bytes, content_type: str | None, content_encoding: str | None
    ) -> Response:
        response = self._handle(body, content_type, content_encoding)
        _requests.inc(1, str(response.status))
        return response

    def _handle(
        self, body: bytes, content_type: str | None, content_encoding: str | None
    ) -> Response:
        if self.shutting_down:
            return _unavailable("the bridge is shutting down")
        try:
            decoded = decode_write_request(body, content_type, content_encoding)
        except RemoteWriteError as e:
            error_type = "bad_data" if e.status == 400 else "unsupported_media_type"
            return Response(e.status, encoding.error(error_type, e.message))
        try:
            result = self.appender.append(decoded.series, decoded.metadata)
        except StorageFullError as e:
            return _unavailable(f"storage unavailable, retry later: {e}")
        except ShuttingDownError:
            return _unavailable("the bridge is shutting down")
        _samples.inc(result.accepted_samples)
        _exemplars.inc(result.accepted_exemplars)
        rejections = [*decoded.rejections, *result.rejections]
        if not rejections:
            return Response(204, b"", content_type="")
        _rejected.inc(len(rejections))
        message = (
            f"{len(rejections)} rejected ({result.accepted_samples} valid samples stored): "
            + describe(rejections)
        )
        data = {
            "acceptedSamples": result.accepted_samples,
            "rejections": [
                {"labels": dict(r.labels), "timestamp": r.timestamp, "reason": r.reason}
                for r in rejections[:MAX_LISTED_REJECTIONS]
            ],
        }
        return Response(400, encoding.error("bad_data", message, data))


def _unavailable(message: str) -> Response:
    return Response(
        503,
        encoding.error("unavailable", message),
        headers={"Retry-After": str(RETRY_AFTER_S)},
    )
