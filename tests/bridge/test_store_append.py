"""Append semantics of the embedded store: ordering rules, duplicates, partial writes, restart."""

from __future__ import annotations

import errno
import math
import threading
from pathlib import Path

import numpy as np
import pytest
from store.helpers import as_dict, batch, eq, lbl

from grafana_agent_bridge.storage import STALE_NAN, ShuttingDownError, StorageFullError, stale_mask
from grafana_agent_bridge.store import Store, StoreOptions
from grafana_agent_bridge.store import wal as wal_mod

ALL = (-(2**62), 2**62)


@pytest.fixture
def store(tmp_path: Path):
    s = Store.open(tmp_path / "db", StoreOptions())
    yield s
    s.close()


def test_appended_samples_are_queryable_and_survive_reopen(tmp_path: Path) -> None:
    s = Store.open(tmp_path, StoreOptions())
    res = s.append([batch(lbl(i="1"), [1000, 2000], [1.0, 2.0]), batch(lbl(i="2"), [1000], [5.0])])
    assert res.accepted_samples == 3 and not res.rejections
    s.close()
    s = Store.open(tmp_path, StoreOptions())
    assert as_dict(s.select([eq("__name__", "m")], *ALL)) == {
        lbl(i="1"): [(1000, 1.0), (2000, 2.0)],
        lbl(i="2"): [(1000, 5.0)],
    }
    s.close()


def test_out_of_order_and_conflicting_duplicate_are_rejected_valid_rest_kept(store: Store) -> None:
    store.append([batch(lbl(i="1"), [2000], [2.0])])
    res = store.append(
        [
            batch(lbl(i="1"), [1000], [1.0]),  # older than the newest: out of order
            batch(lbl(i="1"), [2000], [9.0]),  # same time, other value: duplicate conflict
            batch(lbl(i="1"), [3000], [3.0]),  # fine
            batch(lbl(i="2"), [500], [7.0]),  # another series, fine
        ]
    )
    reasons = sorted((r.timestamp, r.reason) for r in res.rejections)
    assert reasons == [(1000, "out of order sample"), (2000, "duplicate sample for timestamp")]
    assert res.accepted_samples == 2
    assert as_dict(store.select([], *ALL)) == {
        lbl(i="1"): [(2000, 2.0), (3000, 3.0)],
        lbl(i="2"): [(500, 7.0)],
    }


def test_rejections_inside_a_multi_sample_series(store: Store) -> None:
    res = store.append([batch(lbl(), [1000, 3000, 2000, 3000, 4000], [1, 3, 2, 3, 4])])
    assert [(r.timestamp, r.reason) for r in res.rejections] == [(2000, "out of order sample")]
    assert res.accepted_samples == 4  # the second 3000 is an exact duplicate: accepted
    assert as_dict(store.select([], *ALL))[lbl()] == [(1000, 1), (3000, 3), (4000, 4)]


def test_exact_duplicate_write_is_accepted_and_stored_once(tmp_path: Path) -> None:
    s = Store.open(tmp_path, StoreOptions())
    write = [batch(lbl(i=str(i)), [1000, 2000], [float(i), math.nan]) for i in range(3)]
    assert s.append(write).accepted_samples == 6
    again = s.append(write)  # a retried request
    assert again.accepted_samples == 6 and not again.rejections
    assert s.stats().samples_appended == 6
    s.close()
    s = Store.open(tmp_path, StoreOptions())
    assert s.stats().replay_samples == 6
    assert all(len(d.timestamps) == 2 for d in s.select([], *ALL))
    assert s.append(write).accepted_samples == 6  # still a duplicate after a restart
    assert s.stats().samples_appended == 0
    s.close()


def test_stale_marker_bits_are_kept_through_wal_and_duplicate_check(tmp_path: Path) -> None:
    s = Store.open(tmp_path, StoreOptions())
    s.append([batch(lbl(), [1000], [STALE_NAN])])
    # A plain NaN at the same timestamp has other bits: a conflict, not a duplicate.
    res = s.append([batch(lbl(), [1000], [math.nan])])
    assert [r.reason for r in res.rejections] == ["duplicate sample for timestamp"]
    s.close()
    s = Store.open(tmp_path, StoreOptions())
    (data,) = s.select([], *ALL)
    assert stale_mask(data.values).tolist() == [True]
    s.close()


def test_same_series_twice_in_one_write_is_ordered_across_entries(store: Store) -> None:
    res = store.append(
        [batch(lbl(), [1000], [1]), batch(lbl(), [2000], [2]), batch(lbl(), [1500], [3])]
    )
    assert [(r.timestamp, r.reason) for r in res.rejections] == [(1500, "out of order sample")]
    assert as_dict(store.select([], *ALL))[lbl()] == [(1000, 1), (2000, 2)]


def test_invalid_series_do_not_reach_the_store(store: Store) -> None:
    bad = batch((), [1000], [1.0])
    mismatched = batch(lbl(), [1000, 2000], [1.0])
    res = store.append([bad, mismatched, batch(lbl(i="ok"), [1], [1])])
    assert len(res.rejections) == 2 and res.accepted_samples == 1
    assert [d.labels for d in store.select([], *ALL)] == [lbl(i="ok")]


def test_window_is_inclusive_and_series_without_samples_in_it_are_omitted(store: Store) -> None:
    store.append(
        [batch(lbl(i="a"), [1000, 2000, 3000], [1, 2, 3]), batch(lbl(i="b"), [9000], [9])]
    )
    got = as_dict(store.select([], 2000, 3000))
    assert got == {lbl(i="a"): [(2000, 2), (3000, 3)]}
    assert store.series([], 2000, 3000) == [lbl(i="a")]
    assert store.label_values("i", [], 0, 10_000) == ["a", "b"]
    assert store.label_names([eq("i", "b")], 0, 10_000) == ["__name__", "i"]


def test_disk_error_keeps_nothing_of_the_write_and_the_store_recovers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    s = Store.open(tmp_path, StoreOptions())
    s.append([batch(lbl(i="1"), [1000], [1.0])])
    real_write = wal_mod.os.write

    def full(fd: int, data) -> int:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(wal_mod.os, "write", full)
    with pytest.raises(StorageFullError):
        s.append([batch(lbl(i="1"), [2000], [2.0]), batch(lbl(i="new"), [2000], [2.0])])
    monkeypatch.setattr(wal_mod.os, "write", real_write)
    assert as_dict(s.select([], *ALL)) == {lbl(i="1"): [(1000, 1.0)]}
    assert s.series([], *ALL) == [lbl(i="1")]
    # Space is back: the same write now succeeds, and survives a restart.
    assert s.append([batch(lbl(i="1"), [2000], [2.0])]).accepted_samples == 1
    s.close()
    s = Store.open(tmp_path, StoreOptions())
    assert as_dict(s.select([], *ALL)) == {lbl(i="1"): [(1000, 1.0), (2000, 2.0)]}
    s.close()


def test_append_after_close_is_a_shutdown_error(tmp_path: Path) -> None:
    s = Store.open(tmp_path, StoreOptions())
    s.close()
    with pytest.raises(ShuttingDownError):
        s.append([batch(lbl(), [1], [1])])


def test_queries_run_concurrently_with_appends(store: Store) -> None:
    stop = threading.Event()
    errors: list[BaseException] = []

    def reader() -> None:
        try:
            while not stop.is_set():
                for d in store.select([eq("__name__", "m")], *ALL):
                    ts = d.timestamps
                    assert len(ts) == len(d.values)
                    assert bool(np.all(ts[1:] > ts[:-1]))
        except BaseException as e:  # surfaced below
            errors.append(e)

    threads = [threading.Thread(target=reader) for _ in range(2)]
    for th in threads:
        th.start()
    for k in range(300):
        store.append([batch(lbl(i=str(i)), [k * 1000], [float(k)]) for i in range(20)])
    stop.set()
    for th in threads:
        th.join(5)
    assert not errors
    assert all(len(d.timestamps) == 300 for d in store.select([], *ALL))


def test_metadata_and_exemplars_are_kept_across_restart(tmp_path: Path) -> None:
    from grafana_agent_bridge.storage import Exemplar, MetricMetadata

    s = Store.open(tmp_path, StoreOptions())
    b = batch(lbl("req_total"), [1000], [1.0])
    b.exemplars.append(Exemplar((("trace_id", "abc"),), 1.0, 1000))
    meta = MetricMetadata("req_total", "counter", "Requests.", "")
    res = s.append([b], [meta])
    assert res.accepted_exemplars == 1
    s.close()
    s = Store.open(tmp_path, StoreOptions())
    assert s.metadata() == {"req_total": [meta]}
    ((labels, exs),) = s.exemplars([eq("__name__", "req_total")], 0, 2000)
    assert labels == lbl("req_total") and exs[0].labels == (("trace_id", "abc"),)
    assert s.exemplars([eq("__name__", "req_total")], 2000, 3000) == []
    s.close()


def test_stats_are_exposed_as_metrics(tmp_path: Path) -> None:
    from grafana_agent_bridge.metrics import Registry
    from grafana_agent_bridge.store.metrics import register_store_metrics

    registry = Registry()
    s = Store.open(tmp_path / "a", StoreOptions())
    register_store_metrics(s, registry)
    s.append([batch(lbl(i=str(i)), [1000], [1.0]) for i in range(3)])
    s.append([batch(lbl(i="0"), [500], [1.0])])
    text = registry.expose()
    assert "# TYPE bridge_store_samples_appended_total counter" in text
    assert "bridge_store_samples_appended_total 3\n" in text
    assert "bridge_store_samples_rejected_total 1\n" in text
    assert "bridge_store_series 3\n" in text
    s.close()
    # A reopened store takes over the same metrics.
    s2 = Store.open(tmp_path / "b", StoreOptions())
    register_store_metrics(s2, registry)
    assert "bridge_store_series 0\n" in registry.expose()
    s2.close()


def test_a_second_open_of_the_same_directory_is_refused(tmp_path: Path) -> None:
    from grafana_agent_bridge.store import StoreLockedError

    s = Store.open(tmp_path, StoreOptions())
    with pytest.raises(StoreLockedError, match="in use"):
        Store.open(tmp_path, StoreOptions())
    s.close()
    Store.open(tmp_path, StoreOptions()).close()  # free again once closed


def test_disk_full_at_segment_rotation_recovers_without_losing_series_refs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    opts = StoreOptions(wal_segment_bytes=400, compact_automatically=False)
    s = Store.open(tmp_path, opts)
    acked = 0
    real_write = wal_mod.os.write
    for k in range(60):
        if 20 <= k < 28 or k == 40:  # the disk is full for a while, across rotations
            monkeypatch.setattr(wal_mod.os, "write", _enospc)
        else:
            monkeypatch.setattr(wal_mod.os, "write", real_write)
        try:
            s.append([batch(lbl(i=str(i)), [k * 1000], [float(k)]) for i in range(5)])
            acked += 5
        except StorageFullError:
            assert 20 <= k < 28 or k == 40
    monkeypatch.setattr(wal_mod.os, "write", real_write)
    assert acked == 51 * 5
    assert s.stats().wal_segments > 3
    s.close()
    s = Store.open(tmp_path, opts)
    assert s.stats().replay_samples == acked
    assert sum(len(d.timestamps) for d in s.select([], *ALL)) == acked
    s.close()


def _enospc(fd: int, data) -> int:
    raise OSError(errno.ENOSPC, "No space left on device")


def test_samples_too_far_in_the_future_are_rejected(tmp_path: Path) -> None:
    import time

    now = int(time.time() * 1000)
    s = Store.open(tmp_path / "a", StoreOptions(max_future_ms=60_000))
    res = s.append(
        [
            batch(lbl(i="us"), [now * 1000], [1.0]),  # microseconds by mistake
            batch(lbl(i="ok"), [now, now + 30_000], [1.0, 2.0]),
            batch(lbl(i="mixed"), [now, now + 3_600_000], [1.0, 2.0]),
        ]
    )
    assert sorted((r.labels, r.reason) for r in res.rejections) == [
        (lbl(i="mixed"), "too far in the future"),
        (lbl(i="us"), "too far in the future"),
    ]
    assert res.accepted_samples == 3
    s.close()
    s = Store.open(tmp_path / "b", StoreOptions(max_future_ms=0))
    assert not s.append([batch(lbl(), [now * 1000], [1.0])]).rejections
    s.close()


def test_selected_samples_stay_as_read_while_the_series_grows_and_is_cut(store: Store) -> None:
    """The query path reads the head's arrays without copying them per series; what a query
    got must not change under it when later appends grow the series or a cut drops the old
    samples."""
    store.append([batch(lbl(i="1"), [1000, 2000, 3000], [1.0, 2.0, 3.0])])
    (got,) = store.select([eq("__name__", "m")], *ALL)
    before = (got.timestamps.tolist(), got.values.tolist())
    for k in range(4, 400):
        store.append([batch(lbl(i="1"), [k * 1000], [float(k)])])
    store.compact(force=True)
    store.append([batch(lbl(i="1"), [500_000], [9.0])])
    assert (got.timestamps.tolist(), got.values.tolist()) == before
