"""The store's statistics as ``bridge_store_*`` metrics in the bridge's registry (``/metrics``).

Values are read from ``Store.stats()`` when the registry is rendered (or self-collected), so
the store's hot paths only bump plain integers. Re-registering (a store reopened in the same
process) points the existing metrics at the new store.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

from ..metrics import Counter, Gauge, LabelValues, Registry

if TYPE_CHECKING:
    from .db import Store
    from .stats import StoreStats


class _Source:
    """The store being observed, with a short cache so one scrape computes stats once."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self._at = 0.0
        self._stats: StoreStats | None = None

    def invalidate(self) -> None:
        self._stats = None

    def stats(self) -> StoreStats:
        now = time.monotonic()
        if self._stats is None or now - self._at > 1.0:
            self._stats = self.store.stats()
            self._at = now
        return self._stats


class _ObservedCounter(Counter):
    def __init__(self, name: str, help: str, fn: Callable[[], float]) -> None:
        super().__init__(name, help)
        self.fn = fn

    def get(self, *labels: str) -> float:
        return self.fn()

    def samples(self) -> Iterator[tuple[str, LabelValues, float, str]]:
        yield "", (), float(self.fn()), ""


GAUGES = {
    "series": ("bridge_store_series", "Series in the label index (head and blocks)."),
    "head_series": ("bridge_store_head_series", "Series with samples in the in-memory head."),
    "head_samples": ("bridge_store_head_samples", "Samples in the in-memory head."),
    "wal_bytes": ("bridge_store_wal_bytes", "Bytes in retained WAL segments."),
    "wal_segments": ("bridge_store_wal_segments", "Retained WAL segments."),
    "blocks": ("bridge_store_blocks", "Loaded blocks."),
    "blocks_bytes": ("bridge_store_blocks_bytes", "Bytes of loaded blocks on disk."),
    "block_samples": ("bridge_store_block_samples", "Samples in loaded blocks."),
    "replay_seconds": ("bridge_store_replay_seconds", "Duration of the last WAL replay."),
    "replay_samples": ("bridge_store_replay_samples", "Samples restored by the last WAL replay."),
}
COUNTERS = {
    "samples_appended": ("bridge_store_samples_appended_total", "Samples written to the store."),
    "samples_rejected": (
        "bridge_store_samples_rejected_total",
        "Samples and exemplars refused (out of order, duplicate timestamp, out of bounds, "
        "over a series, label or exemplar limit).",
    ),
    "samples_duplicate": (
        "bridge_store_samples_duplicate_total",
        "Exact duplicate samples accepted without storing them again.",
    ),
    "exemplars_appended": ("bridge_store_exemplars_appended_total", "Exemplars stored."),
    "wal_corruptions": (
        "bridge_store_wal_corruptions_total",
        "Corrupt or torn WAL segments repaired at startup.",
    ),
    "wal_bytes_dropped": (
        "bridge_store_wal_bytes_dropped_total",
        "WAL bytes dropped by repairs at startup.",
    ),
    "blocks_corrupt": (
        "bridge_store_blocks_corrupt_total",
        "Blocks found damaged at load (skipped entirely or in part).",
    ),
    "compactions": ("bridge_store_compactions_total", "Blocks cut from the head."),
    "compaction_seconds": (
        "bridge_store_compaction_seconds_total",
        "Time spent cutting blocks.",
    ),
    "retention_blocks_deleted": (
        "bridge_store_retention_blocks_deleted_total",
        "Blocks deleted by time or size retention.",
    ),
    "wal_segments_deleted": (
        "bridge_store_wal_segments_deleted_total",
        "WAL segments deleted after compaction and feed acknowledgement, or by retention.",
    ),
    "feed_samples_lost": (
        "bridge_store_feed_samples_lost_total",
        "Samples retention removed before a feed consumer (forwarding) read them.",
    ),
}


def _disk_bytes(path: os.PathLike[str], avail: bool) -> float:
    """Space of the filesystem holding the store (NaN when it cannot be read), for alerts on
    a filling disk: a full disk turns writes into 503s and stops forwarding's backlog."""
    try:
        st = os.statvfs(path)
    except OSError:
        return float("nan")
    return float((st.f_bavail if avail else st.f_blocks) * st.f_frsize)


DISK_GAUGES: dict[str, tuple[str, Callable[[os.PathLike[str]], float]]] = {
    "bridge_store_disk_avail_bytes": (
        "Bytes available to the bridge on the filesystem of its data directory.",
        lambda path: _disk_bytes(path, avail=True),
    ),
    "bridge_store_disk_size_bytes": (
        "Size in bytes of the filesystem of the bridge's data directory.",
        lambda path: _disk_bytes(path, avail=False),
    ),
}


def register_store_metrics(store: Store, registry: Registry) -> None:
    """Expose ``store``'s statistics in ``registry`` (idempotent; re-points to ``store``)."""
    existing = getattr(registry, "_bridge_store_source", None)
    if isinstance(existing, _Source):
        existing.store = store
        existing.invalidate()
        return
    source = _Source(store)
    registry._bridge_store_source = source  # type: ignore[attr-defined]

    def reader(field: str) -> Callable[[], float]:
        return lambda: float(getattr(source.stats(), field))

    for field, (name, help) in GAUGES.items():
        registry.register(Gauge(name, help, fn=reader(field)))
    for name, (help, fn) in DISK_GAUGES.items():
        registry.register(Gauge(name, help, fn=lambda fn=fn: fn(source.store.path)))
    for field, (name, help) in COUNTERS.items():
        registry.register(_ObservedCounter(name, help, reader(field)))
