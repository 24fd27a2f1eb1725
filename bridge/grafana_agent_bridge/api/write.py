"""``POST /api/v1/write``: the remote-write 1.0 and 2.0 receiver.

A 2.0 request (``Content-Type: application/x-protobuf;proto=io.prometheus.write.v2.Request``,
see ``remote_write2``) is kept by the same rules and answered the same way, plus the
``X-Prometheus-Remote-Write-{Samples,Histograms,Exemplars}-Written`` headers in every case.

What is kept of a request (the contract senders and operators rely on):

- The whole request is refused, nothing stored, for a wrong ``Content-Type``/``Content-Encoding``
  (415), a body over ``ingest.max_body_bytes`` or one that would
  decode past ``ingest.max_decoded_bytes``/``max_decoded_elements`` (413), bad snappy or
  protobuf (400), a full disk or I/O fault (503 with ``Retry-After``) and shutdown (503).
- Otherwise every valid sample is stored, and the answer is 204 when nothing was invalid, or
  400 listing what was rejected: series with invalid labels (whole series), out-of-order or
  duplicate-timestamp samples (just those samples), malformed native histograms. A 400 tells
  the sender not to retry, which is right: a retry would be rejected the same way, and the
  valid samples it carried are already stored (an exact re-send of a stored sample is
  accepted silently).
  Over-limit series, labels and exemplars are rejections like any other, each reason naming
  the limit's configuration key.

The 400 answer is bounded whatever was rejected: the message counts rejected samples by kind
and describes the first ``MESSAGE_REJECTIONS``; ``data.rejections`` lists the first
``MAX_LISTED_REJECTIONS`` (``data.unlisted`` counts the samples they leave out), and each
label set shown is abbreviated (``abbreviate``), so a request of huge rejected labels cannot
make an answer many times its own size.

This differs from Prometheus, which rolls back a whole request on an out-of-order sample: here
one bad series in a batch of 2,000 does not cost the other 1,999.
"""

from __future__ import annotations

from collections.abc import Sequence

from ..labels import METRIC_NAME, LabelLimits, Labels
from ..lifecycle import Lifecycle, Phase
from ..metrics import Registry
from ..remote_write import (
    LABEL_CACHE_ENTRIES,
    DecodeLimits,
    LabelCache,
    RemoteWriteError,
    RequestLimits,
    decode_write_request,
)
from ..remote_write2 import decode_write_request_v2, is_v2
from ..storage import (
    Appender,
    AppendResult,
    MetricMetadata,
    Rejection,
    SeriesBatch,
    ShuttingDownError,
    StorageFullError,
)
from . import encoding
from .query import Response

RETRY_AFTER_S = 5
MAX_LISTED_REJECTIONS = 8
MESSAGE_REJECTIONS = 1
SHOWN_LABELS = 6
"""Labels of a rejected series repeated in the answer, ``__name__`` first."""
SHOWN_CHARS = 32
"""Characters of each label name and value repeated in the answer."""


class IngestMetrics:
    """What remote write counts, in the registry the daemon gives it."""

    def __init__(self, registry: Registry) -> None:
        self.requests = registry.counter(
            "bridge_ingest_requests_total",
            "Remote-write requests received, by HTTP status.",
            ("code",),
        )
        self.samples = registry.counter(
            "bridge_ingest_samples_total", "Samples stored from remote write."
        )
        self.rejected = registry.counter(
            "bridge_ingest_rejections_total",
            "Samples (and exemplars) of remote-write requests that were refused (400), by reason.",
            ("reason",),
        )
        self.exemplars = registry.counter("bridge_ingest_exemplars_total", "Exemplars stored.")


def _clip(text: str) -> str:
    return text if len(text) <= SHOWN_CHARS else text[:SHOWN_CHARS] + "…"


def abbreviate(labels: Labels) -> dict[str, str]:
    """A bounded view of a rejected label set: ``__name__`` and the first other labels, names
    and values clipped, and ``"…"`` saying how many labels were left out."""
    first = [(n, v) for n, v in labels if n == METRIC_NAME]
    others = [(n, v) for n, v in labels[: SHOWN_LABELS + 1] if n != METRIC_NAME]
    shown = {_clip(n): _clip(v) for n, v in (first + others)[:SHOWN_LABELS]}
    if len(labels) > len(shown):
        shown["…"] = f"{len(labels) - len(shown)} more labels"
    return shown


def _show_labels(labels: Labels) -> str:
    if not labels:
        return "{}"
    return "{" + ", ".join(f'{n}="{v}"' for n, v in abbreviate(labels).items()) + "}"


LIMIT_KEYS = {
    "head_series": "storage.max_head_series",
    "labels_per_series": "storage.max_labels_per_series",
    "label_name_length": "storage.max_label_name_length",
    "label_value_length": "storage.max_label_value_length",
    "exemplar_labels_length": "storage.max_exemplar_labels_length",
    "series_per_request": "ingest.max_series_per_request",
    "samples_per_request": "ingest.max_samples_per_request",
}
"""The configuration key behind each over-limit rejection kind, named in the summary so that
every limit a request hit is named even when only the first rejection is described."""


def describe(rejections: Sequence[Rejection], listed: int = MESSAGE_REJECTIONS) -> str:
    """A bounded sentence: rejected samples per kind (with the limit's key for over-limit
    kinds), then the first ``listed`` rejections in detail."""
    kinds: dict[str, int] = {}
    for r in rejections:
        kinds[r.kind] = kinds.get(r.kind, 0) + r.count
    parts = [
        ", ".join(
            f"{n} {kind} ({LIMIT_KEYS[kind]})" if kind in LIMIT_KEYS else f"{n} {kind}"
            for kind, n in kinds.items()
        )
    ]
    for r in rejections[:listed]:
        at = f" at {r.timestamp}" if r.timestamp is not None else ""
        parts.append(f"{_clip_reason(r.reason)} for {_show_labels(r.labels)}{at}")
    more = len(rejections) - listed
    if more > 0:
        parts.append(f"and {more} more")
    return "; ".join(parts)


def _clip_reason(reason: str) -> str:
    # Reasons are built short; this only guards against one that embeds sent text in full.
    return reason if len(reason) <= 200 else reason[:200] + "…"


class WriteAPI:
    def __init__(
        self,
        appender: Appender,
        *,
        label_limits: LabelLimits | None = None,
        request_limits: RequestLimits | None = None,
        max_series: int = 0,
        decode_limits: DecodeLimits | None = None,
        lifecycle: Lifecycle | None = None,
        registry: Registry | None = None,
    ) -> None:
        """``max_series``, the store's head-series limit (0: none), also bounds the label
        cache: entries beyond it would hold label sets the store refuses anyway. Writes are
        refused (503) unless ``lifecycle`` is serving; without one, always accepted.
        ``registry`` receives the ingest metrics (a private one when not given)."""
        self.appender = appender
        self.lifecycle = lifecycle or Lifecycle(Phase.SERVING)
        self.metrics = IngestMetrics(registry or Registry())
        self.request_limits = request_limits or RequestLimits()
        self.decode_limits = decode_limits or DecodeLimits()
        entries = min(LABEL_CACHE_ENTRIES, max_series) if max_series else LABEL_CACHE_ENTRIES
        self._label_cache = LabelCache(entries, limits=label_limits)

    def handle(
        self, body: bytes, content_type: str | None, content_encoding: str | None
    ) -> Response:
        if is_v2(content_type):
            response = self._handle_v2(body, content_encoding)
        else:
            response = self._handle(body, content_type, content_encoding)
        self.metrics.requests.inc(1, str(response.status))
        return response

    def _handle(
        self, body: bytes, content_type: str | None, content_encoding: str | None
    ) -> Response:
        if not self.lifecycle.serving:
            return unavailable("the bridge is shutting down")
        try:
            decoded = decode_write_request(
                body,
                content_type,
                content_encoding,
                cache=self._label_cache,
                limits=self.request_limits,
                bounds=self.decode_limits,
            )
        except RemoteWriteError as e:
            error_type = "unsupported_media_type" if e.status == 415 else "bad_data"
            return Response(e.status, encoding.error(error_type, e.message))
        return self._store(decoded.series, decoded.metadata, decoded.rejections)

    def _handle_v2(self, body: bytes, content_encoding: str | None) -> Response:
        """Remote write 2.0: stored like 1.0, answered with the ``...-Written`` headers 2.0
        senders read in every case (zero when nothing was stored)."""
        written = {"samples": 0, "histograms": 0, "exemplars": 0}
        if not self.lifecycle.serving:
            response = unavailable("the bridge is shutting down")
        else:
            try:
                decoded = decode_write_request_v2(
                    body,
                    content_encoding,
                    label_limits=self._label_cache.limits,
                    limits=self.request_limits,
                    bounds=self.decode_limits,
                )
            except RemoteWriteError as e:
                error_type = "unsupported_media_type" if e.status == 415 else "bad_data"
                response = Response(e.status, encoding.error(error_type, e.message))
            else:
                response = self._store(
                    decoded.series, decoded.metadata, decoded.rejections, written
                )
        for kind, n in written.items():
            response.headers[f"X-Prometheus-Remote-Write-{kind.capitalize()}-Written"] = str(n)
        return response

    def _store(
        self,
        series: Sequence[SeriesBatch],
        metadata: Sequence[MetricMetadata],
        decode_rejections: Sequence[Rejection],
        written: dict[str, int] | None = None,
    ) -> Response:
        try:
            result: AppendResult = self.appender.append(series, metadata)
        except StorageFullError as e:
            return unavailable(f"storage unavailable, retry later: {e}")
        except ShuttingDownError:
            return unavailable("the bridge is shutting down")
        self.metrics.samples.inc(result.accepted_samples)
        self.metrics.exemplars.inc(result.accepted_exemplars)
        if written is not None:
            written["samples"] = result.accepted_samples - result.accepted_histograms
            written["histograms"] = result.accepted_histograms
            written["exemplars"] = result.accepted_exemplars
        rejections = [*decode_rejections, *result.rejections]
        if not rejections:
            return Response(204, b"", content_type="")
        total = 0
        for r in rejections:
            self.metrics.rejected.inc(r.count, r.kind)
            total += r.count
        message = (
            f"{total} rejected ({result.accepted_samples} valid samples stored): "
            + describe(rejections)
        )
        listed = rejections[:MAX_LISTED_REJECTIONS]
        data = {
            "acceptedSamples": result.accepted_samples,
            "rejections": [
                {
                    "labels": abbreviate(r.labels),
                    "timestamp": r.timestamp,
                    "reason": _clip_reason(r.reason),
                    "kind": r.kind,
                    "count": r.count,
                }
                for r in listed
            ],
            "unlisted": total - sum(r.count for r in listed),
        }
        return Response(400, encoding.error("bad_data", message, data))


def unavailable(message: str) -> Response:
    return Response(
        503,
        encoding.error("unavailable", message),
        headers={"Retry-After": str(RETRY_AFTER_S)},
    )
