"""A WAL segment opens with a checkpoint of the head's series; when the head is large that
checkpoint can be bigger than ``wal_segment_bytes``. It must not count against the segment's
budget, or every append opens a new segment and the WAL (and its replay) grows with
series x appends."""

from __future__ import annotations

import time
from pathlib import Path

from grafana_agent_bridge.store import Store, StoreOptions
from store.helpers import batch, eq, lbl


def test_a_checkpoint_larger_than_a_segment_does_not_roll_a_segment_per_append(
    tmp_path: Path,
) -> None:
    opts = StoreOptions(compact_automatically=False, wal_segment_bytes=64 << 10)
    store = Store.open(tmp_path, opts)
    try:
        # 4,000 series of ~60-byte labels: a checkpoint of ~250 KB, four segments' worth.
        store.append([batch(lbl(i=f"{i:05d}" + "x" * 40), [1000], [1.0]) for i in range(4000)])
        first = store.stats().wal_segments
        for k in range(40):  # 40 appends of 20 samples each: ~1 KB of data apiece
            store.append(
                [batch(lbl(i=f"{i:05d}" + "x" * 40), [2000 + k], [1.0]) for i in range(20)]
            )
        assert store.stats().wal_segments <= first + 1
    finally:
        store.close()
    t0 = time.monotonic()
    store = Store.open(tmp_path, opts)
    try:
        assert len(store.series([eq("__name__", "m")], 0, 10**6)) == 4000
        assert time.monotonic() - t0 < 10
    finally:
        store.close()
