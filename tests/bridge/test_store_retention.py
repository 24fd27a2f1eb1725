"""Retention by time and by size, and how it interacts with feed consumers and the WAL."""

from __future__ import annotations

from pathlib import Path

from store.helpers import write_scrapes

from grafana_agent_bridge.storage import FeedPosition
from grafana_agent_bridge.store import Store, StoreOptions

ALL = (-(2**62), 2**62)
MINUTE = 60_000


def _store(path: Path, **kw) -> Store:
    opts = dict(
        block_duration_ms=10 * MINUTE,
        wal_segment_bytes=2 * 1024,
        compact_automatically=False,
        zstd_level=1,
    )
    opts.update(kw)
    return Store.open(path, StoreOptions(**opts))


def _fill(s: Store, minutes: int, n_series: int = 10) -> int:
    """Append ``minutes`` of 15 s scrapes, compacting as a running store would."""
    total = 0
    for m in range(0, minutes, 5):
        total += write_scrapes(s, n_series, range(m * 4, (m + 5) * 4))
        s.compact()
    return total


def _wal_files(path: Path) -> list[int]:
    return sorted(int(p.name) for p in (path / "wal").iterdir() if p.name.isdigit())


def _oldest_sample(s: Store) -> int:
    return min(int(d.timestamps[0]) for d in s.select([], *ALL))


def test_time_retention_deletes_whole_old_blocks_and_their_wal(tmp_path: Path) -> None:
    s = _store(tmp_path, retention_time_ms=30 * MINUTE)
    _fill(s, 120)
    st = s.stats()
    assert st.retention_blocks_deleted > 0 and st.wal_segments_deleted > 0
    # The newest sample is at ~120 min; blocks ending at or before ~90 min are gone.
    oldest = _oldest_sample(s)
    assert 80 * MINUTE <= oldest <= 90 * MINUTE
    assert oldest % (10 * MINUTE) == 0  # whole blocks went, not single samples
    assert min(_wal_files(tmp_path)) > 1
    s.close()
    s = _store(tmp_path, retention_time_ms=30 * MINUTE)
    assert _oldest_sample(s) == oldest
    s.close()


def test_unacknowledged_consumer_keeps_the_wal_until_it_acknowledges(tmp_path: Path) -> None:
    s = _store(tmp_path)
    pos = s.register("upstream")
    total = _fill(s, 60)
    assert s.stats().blocks > 0
    assert min(_wal_files(tmp_path)) == pos.segment  # nothing deleted under the consumer
    got = 0
    while True:
        b = s.read(pos, 5000)
        if not b.series:
            break
        got += sum(len(x.timestamps) for x in b.series)
        assert b.skipped_samples == 0
        pos = b.next_position
    assert got == total
    s.acknowledge("upstream", pos)
    s.compact()
    assert min(_wal_files(tmp_path)) > 1
    s.close()


def test_size_retention_forces_wal_out_and_the_consumer_learns_what_it_lost(
    tmp_path: Path,
) -> None:
    s = _store(tmp_path)
    pos = s.register("upstream")
    total = _fill(s, 60)
    st = s.stats()
    s.close()
    limit = (st.blocks_bytes + st.wal_bytes) // 2
    s = _store(tmp_path, retention_size_bytes=limit)
    s.compact()
    st = s.stats()
    assert st.blocks_bytes + st.wal_bytes <= limit or st.blocks == 0
    assert st.retention_blocks_deleted > 0 and st.feed_samples_lost > 0
    got = skipped = 0
    for _ in range(1000):
        b = s.read(pos, 5000)
        skipped += b.skipped_samples
        if not b.series and not b.skipped_samples:
            break
        got += sum(len(x.timestamps) for x in b.series)
        pos = b.next_position
    assert skipped > 0 and got + skipped == total
    s.close()
    # The loss record survives a restart for a consumer that has not read yet.
    s = _store(tmp_path)
    assert s.read(s.register("upstream"), 10).skipped_samples == skipped
    s.close()


def test_a_consumer_registered_later_starts_at_the_oldest_retained_segment(tmp_path: Path) -> None:
    s = _store(tmp_path, retention_time_ms=20 * MINUTE)
    _fill(s, 60)
    pos = s.register("late")
    assert pos == FeedPosition(min(_wal_files(tmp_path)), 0)
    assert s.read(pos, 10).skipped_samples == 0
    s.close()


def test_acknowledged_wal_is_reclaimed_in_the_background_without_new_blocks(
    tmp_path: Path,
) -> None:
    import time

    s = _store(tmp_path, compact_automatically=True, housekeeping_interval_s=0.1)
    pos = s.register("upstream")
    _fill(s, 40)
    segments = len(_wal_files(tmp_path))
    while True:
        b = s.read(pos, 100_000)
        if not b.series:
            break
        pos = b.next_position
    s.acknowledge("upstream", pos)
    deadline = time.monotonic() + 10
    while len(_wal_files(tmp_path)) >= segments and time.monotonic() < deadline:
        time.sleep(0.05)
    assert len(_wal_files(tmp_path)) < segments
    s.close()
