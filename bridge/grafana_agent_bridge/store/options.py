"""Tuning knobs of the embedded store, with defaults that suit one machine's telemetry."""

from __future__ import annotations

from dataclasses import dataclass, field

from ..labels import LabelLimits

HOUR_MS = 3_600_000


@dataclass(frozen=True)
class StoreOptions:
    retention_time_ms: int = 15 * 24 * HOUR_MS
    """Blocks whose newest sample is older than this (relative to the newest data) are deleted."""
    retention_size_bytes: int = 0
    """Cap on blocks + WAL bytes; 0 = unlimited. The oldest blocks go first, then old WAL
    segments even if a feed consumer still needs them (it is told via ``skipped_samples``)."""
    max_future_ms: int = 10 * 60_000
    """Samples stamped later than now + this are rejected ("too far in the future"; 0 = no
    limit). One sample in milliseconds-times-1000 would otherwise stretch the head, cut
    blocks early and turn hours of real samples into "out of bounds" (as in Mimir's
    creation grace period)."""
    block_duration_ms: int = 2 * HOUR_MS
    """Width of the immutable blocks cut from the head (aligned to multiples of it)."""
    wal_segment_bytes: int = 128 * 1024 * 1024
    """A WAL segment is closed (fsynced) and a new one started once it reaches this size."""
    head_chunk_span: float = 1.5
    """A block is cut once the head spans this many block durations (as Prometheus does),
    so late-but-ordered samples near the boundary still have room in the head."""
    block_group_samples: int = 65_536
    """Samples per compressed group inside a block: larger groups compress better, smaller
    ones make a single-series read decompress less."""
    zstd_level: int = 9
    """Compression level of block groups (cut in the background of an append, rarely)."""
    block_cache_bytes: int = 32 * 1024 * 1024
    """Memory for recently decoded block groups (repeated dashboard queries skip decoding)."""
    max_head_series: int = 250_000
    """Series the in-memory head may hold (0 = no limit). A sample that would create one
    more is refused ("head series limit"); series already in the head keep being written.
    The head shrinks as blocks are cut, which frees room again. Each head series costs
    ~1.8 KB of memory once settled, ~3 KB of peak RSS with the WAL replay, and its share of
    the replay time at startup."""
    label_limits: LabelLimits = field(default_factory=LabelLimits)
    """Bounds on a new series' labels and on exemplar labels, checked before the series is
    created or the exemplar kept."""
    max_exemplars: int = 100_000
    """Exemplars kept in memory, newest first out (Prometheus's default circular buffer size)."""
    compact_automatically: bool = True
    """Cut blocks and apply retention in a background thread (tests may switch this off and
    call ``Store.compact()`` themselves)."""
    housekeeping_interval_s: float = 60.0
    """How often the background thread applies retention and WAL truncation when idle."""
