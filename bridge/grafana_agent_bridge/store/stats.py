"""The store's counters and sizes: one plain object every part bumps under the store's lock,
copied out by ``Store.stats()`` (and turned into ``bridge_store_*`` metrics by ``metrics.py``)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class StoreStats:
    series: int = 0
    head_series: int = 0
    head_samples: int = 0
    samples_appended: int = 0
    samples_rejected: int = 0
    samples_duplicate: int = 0
    exemplars_appended: int = 0
    wal_bytes: int = 0
    wal_segments: int = 0
    wal_records_dropped: int = 0
    wal_bytes_dropped: int = 0
    wal_corruptions: int = 0
    blocks: int = 0
    blocks_bytes: int = 0
    block_samples: int = 0
    blocks_corrupt: int = 0
    compactions: int = 0
    compaction_seconds: float = 0.0
    retention_blocks_deleted: int = 0
    wal_segments_deleted: int = 0
    feed_samples_lost: int = 0
    replay_seconds: float = 0.0
    replay_samples: int = 0
