"""The interfaces between the bridge's parts (like Prometheus's ``storage/interface.go``).

``store/`` implements them (the embedded TSDB); ``ingest``/``api`` write through ``Appender``;
``promql/`` and ``api/`` read through ``Querier``; ``forward/`` reads through ``ChangeFeed``.
Keeping them here, free of implementation, lets each part be built and tested on its own.

Times are integer milliseconds since the Unix epoch everywhere inside the bridge; only the
HTTP layer converts to and from float seconds.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import numpy as np
import numpy.typing as npt

from .histogram.model import FloatHistogram
from .labels import Labels, Matcher

STALE_NAN_BITS = 0x7FF0000000000002
"""Prometheus's staleness marker: a NaN with this exact bit pattern (not just any NaN)."""

STALE_NAN: float = struct.unpack("<d", struct.pack("<Q", STALE_NAN_BITS))[0]


def is_stale_nan(value: float) -> bool:
    return struct.pack("<d", value) == struct.pack("<Q", STALE_NAN_BITS)


def stale_mask(values: npt.NDArray[np.float64]) -> npt.NDArray[np.bool_]:
    """Vectorised ``is_stale_nan`` over a float64 array."""
    return values.view(np.uint64) == np.uint64(STALE_NAN_BITS)


@dataclass
class SeriesData:
    """One series and its samples within a requested window.

    ``timestamps`` is int64 ms, strictly ascending; ``values`` is float64 of the same length.
    Stale markers are kept bit-exactly; the PromQL engine, not the store, interprets them.
    The arrays may be views of the store's own arrays (no copy per series on the query
    path): a reader must not write to them.

    ``histograms`` is None for a float-only series; otherwise a list aligned with
    ``timestamps`` holding a ``histogram.FloatHistogram`` where the sample is a native
    histogram (its ``values`` entry is then NaN and means nothing) and None where it is a
    float. A histogram stale marker is a histogram whose sum is the stale NaN.
    """

    labels: Labels
    timestamps: npt.NDArray[np.int64]
    values: npt.NDArray[np.float64]
    histograms: list[FloatHistogram | None] | None = None


@dataclass(frozen=True)
class Exemplar:
    labels: Labels
    value: float
    timestamp: int


@dataclass(frozen=True)
class MetricMetadata:
    """What remote-write metadata says of a metric family; ``type`` is lower-case (``counter``)."""

    metric_family_name: str
    type: str
    help: str = ""
    unit: str = ""


@dataclass
class SeriesBatch:
    """Samples of one series in one write: ascending timestamps, as remote-write requires."""

    labels: Labels
    timestamps: npt.NDArray[np.int64]
    values: npt.NDArray[np.float64]
    exemplars: list[Exemplar] = field(default_factory=list)
    histograms: list[FloatHistogram | None] | None = None
    """As ``SeriesData.histograms``: None for floats only, else a histogram per sample."""
    histogram_wire: list[bytes | None] | None = None
    """Beside ``histograms``, when set: each histogram's serialized form as it arrived
    (``HistogramSample.wire``), which the WAL then stores without encoding it again."""


@dataclass(frozen=True)
class Rejection:
    """A sample (or a whole series) that a write refused, and why, for the 400 error body."""

    labels: Labels
    timestamp: int | None
    reason: str
    kind: str = "invalid"
    """A fixed word naming the rule broken (``out_of_order``, ``label_value_length``, ...):
    the ``reason`` label of the rejection counter, so its set of values stays small."""
    count: int = 1
    """Samples (or exemplars) refused by this one entry; a summary entry covers many."""


@dataclass
class AppendResult:
    accepted_samples: int = 0
    """Float and histogram samples together."""
    accepted_exemplars: int = 0
    accepted_histograms: int = 0
    """Of ``accepted_samples``, the native histogram ones (remote-write 2.0 reports them)."""
    rejections: list[Rejection] = field(default_factory=list)


class StorageFullError(Exception):
    """A transient fault (disk full, I/O error): nothing of the write was kept; retry later."""


class ShuttingDownError(Exception):
    """The store is closing; the client should retry later (HTTP 503)."""


class Appender(Protocol):
    def append(
        self, series: Sequence[SeriesBatch], metadata: Sequence[MetricMetadata] = ()
    ) -> AppendResult:
        """Store a write. Returns only once the accepted samples are in the write-ahead log
        (written to the OS, so they survive ``kill -9``); that is what makes a 204 a promise.

        Invalid samples (out of order, duplicate timestamp with another value, ...) are listed
        in ``rejections``; the valid samples of the same write are still kept. An exact duplicate
        (same timestamp, same value bits) is accepted without being stored twice, so a retried
        send is harmless. Raises ``StorageFullError``/``ShuttingDownError`` for transient faults,
        in which case nothing of the write was kept.
        """
        ...


class Querier(Protocol):
    def select(self, matchers: Sequence[Matcher], mint: int, maxt: int) -> Iterable[SeriesData]:
        """Series matching every matcher, with their samples in ``mint <= t <= maxt`` (ms,
        inclusive both ends; the engine applies PromQL's left-open windows itself). Series with
        no sample in the window are omitted. Touches only series the label index selects.
        In label order, each label set once: the engine relies on it and does not sort."""
        ...

    def label_names(self, matchers: Sequence[Matcher], mint: int, maxt: int) -> list[str]:
        """Sorted label names of series with samples in the window (all, if no matchers)."""
        ...

    def label_values(
        self, name: str, matchers: Sequence[Matcher], mint: int, maxt: int
    ) -> list[str]:
        """Sorted values of ``name`` over matching series with samples in the window."""
        ...

    def series(self, matchers: Sequence[Matcher], mint: int, maxt: int) -> list[Labels]:
        """Label sets of matching series with samples in the window, sorted."""
        ...

    def exemplars(
        self, matchers: Sequence[Matcher], mint: int, maxt: int
    ) -> list[tuple[Labels, list[Exemplar]]]: ...

    def metadata(self) -> dict[str, list[MetricMetadata]]: ...


@dataclass(frozen=True)
class FeedPosition:
    """A durable point in the stream of everything ever appended, in append order.

    Opaque to consumers except for ordering: positions compare by ``(segment, offset)``.
    """

    segment: int
    offset: int

    def __lt__(self, other: FeedPosition) -> bool:
        return (self.segment, self.offset) < (other.segment, other.offset)


@dataclass
class FeedBatch:
    series: list[SeriesData]
    """Samples in append order; for each series, ascending timestamps across batches."""
    next_position: FeedPosition
    skipped_samples: int = 0
    """Samples the consumer can no longer get (retention removed them before it read them)."""
    exemplars: list[tuple[Labels, Exemplar]] = field(default_factory=list)
    """Exemplars appended in the same range, in append order, with their series' labels (a
    series may have exemplars here and no samples in ``series``: its samples were rejected or
    are in another batch)."""


class ChangeFeed(Protocol):
    """Everything appended, replayable from a persisted position (what forwarding reads).

    The store keeps data a registered consumer has not acknowledged, up to its retention
    limits; beyond them the oldest data goes and the consumer is told how much it missed.
    """

    def register(self, consumer: str) -> FeedPosition:
        """The consumer's persisted position (the start of retained data for a new consumer)."""
        ...

    def read(self, position: FeedPosition, max_samples: int) -> FeedBatch:
        """Up to about ``max_samples`` samples and exemplars (counted together) after
        ``position``, whole WAL records at a time; empty when caught up. The same position and
        limit give the same batch (an exact resume depends on it)."""
        ...

    def acknowledge(self, consumer: str, position: FeedPosition) -> None:
        """Persist that everything before ``position`` is delivered; lets retention reclaim it."""
        ...

    def end(self) -> FeedPosition:
        """The position just after the newest append."""
        ...

    def samples_after(self, position: FeedPosition) -> int:
        """How many samples were appended after ``position``: a consumer's backlog, cheap
        enough to ask every second."""
        ...

    def rename_consumer(self, old: str, new: str) -> bool:
        """Carry ``old``'s persisted position over to ``new`` (the consumer's name changed);
        False when ``old`` is unknown. Should both exist, the earlier position wins."""
        ...


class MetadataSource(Protocol):
    def metadata(self) -> dict[str, list[MetricMetadata]]:
        """The newest metadata of each metric family, by family name."""
        ...


class ForwardSource(ChangeFeed, MetadataSource, Protocol):
    """Everything forwarding needs of the store: the change feed, the metadata it re-sends
    now and then, and a place for its own progress files next to the data they describe."""

    def state_dir(self) -> Path | None:
        """A directory (maybe not created yet) where a consumer may keep its own state so
        that it lives and dies with the feed's data; None when there is no durable place."""
        ...
