"""ChangeFeed: everything appended, in append order, from a durable, acknowledged position."""

from __future__ import annotations

from pathlib import Path

import pytest
from store.helpers import batch, lbl, write_scrapes

from grafana_agent_bridge.labels import make_labels
from grafana_agent_bridge.storage import Exemplar, FeedBatch, FeedPosition
from grafana_agent_bridge.store import Store, StoreOptions


def _drain(
    s: Store, pos: FeedPosition, max_samples: int = 1000
) -> tuple[list[FeedBatch], FeedPosition]:
    batches = []
    for _ in range(10_000):
        b = s.read(pos, max_samples)
        if not b.series and not b.exemplars:
            assert b.next_position == pos or not (pos < b.next_position and pos < s.end())
            return batches, b.next_position
        assert pos < b.next_position
        batches.append(b)
        pos = b.next_position
    raise AssertionError("feed did not converge")


def _samples(batches: list[FeedBatch]) -> dict:
    out: dict = {}
    for b in batches:
        for s in b.series:
            out.setdefault(s.labels, []).extend(zip(s.timestamps.tolist(), s.values.tolist()))
    return out


@pytest.mark.parametrize("segment_bytes", [1 << 30, 400])
def test_feed_returns_everything_in_per_series_order(tmp_path: Path, segment_bytes: int) -> None:
    s = Store.open(tmp_path, StoreOptions(wal_segment_bytes=segment_bytes))
    write_scrapes(s, 7, range(40))
    if segment_bytes < 1000:
        assert s.stats().wal_segments > 3  # the feed crosses segment boundaries
    pos = s.register("up")
    batches, end = _drain(s, pos, max_samples=25)
    assert end == s.end()
    got = _samples(batches)
    assert len(got) == 7
    for labels, samples in got.items():
        ts = [t for t, _ in samples]
        assert ts == [k * 15_000 for k in range(40)], labels
    assert all(sum(len(x.timestamps) for x in b.series) <= 25 + 7 for b in batches)
    s.close()


def test_exact_duplicates_and_rejections_are_not_fed(tmp_path: Path) -> None:
    s = Store.open(tmp_path, StoreOptions())
    s.append([batch(lbl(), [1000], [1.0])])
    s.append([batch(lbl(), [1000], [1.0]), batch(lbl(), [500], [2.0])])
    batches, _ = _drain(s, s.register("up"))
    assert _samples(batches) == {lbl(): [(1000, 1.0)]}
    s.close()


def test_acknowledged_position_survives_restart_and_new_data_follows(tmp_path: Path) -> None:
    s = Store.open(tmp_path, StoreOptions(wal_segment_bytes=400))
    write_scrapes(s, 5, range(20))
    pos = s.register("up")
    first = s.read(pos, 30)
    s.acknowledge("up", first.next_position)
    s.close()
    s = Store.open(tmp_path, StoreOptions(wal_segment_bytes=400))
    pos = s.register("up")
    assert pos == first.next_position
    write_scrapes(s, 5, range(20, 25))
    rest, _ = _drain(s, pos)
    got = _samples([first, *rest])
    assert all([t for t, _ in v] == [k * 15_000 for k in range(25)] for v in got.values())
    assert s.samples_after(pos) == 125 - sum(len(x.timestamps) for x in first.series)
    s.close()


def test_new_consumer_starts_at_the_oldest_retained_data(tmp_path: Path) -> None:
    s = Store.open(tmp_path, StoreOptions())
    write_scrapes(s, 3, range(5))
    late = s.register("late")
    batches, _ = _drain(s, late)
    assert sum(len(x.timestamps) for b in batches for x in b.series) == 15
    s.close()


def test_reading_at_the_end_is_empty_and_sees_later_appends(tmp_path: Path) -> None:
    s = Store.open(tmp_path, StoreOptions())
    end = s.end()
    b = s.read(end, 100)
    assert b.series == [] and b.next_position == end
    s.append([batch(lbl(), [1], [1.0])])
    b = s.read(end, 100)
    assert [x.labels for x in b.series] == [lbl()] and b.next_position == s.end()
    s.close()


def test_invalid_consumer_name_is_refused(tmp_path: Path) -> None:
    s = Store.open(tmp_path, StoreOptions())
    with pytest.raises(ValueError, match="consumer"):
        s.register("../../etc")
    s.close()


def test_large_segments_are_read_a_window_at_a_time(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from grafana_agent_bridge.store import wlog

    monkeypatch.setattr(wlog, "_FEED_READ_BYTES", 64)  # smaller than one record: must widen
    s = Store.open(tmp_path, StoreOptions())
    write_scrapes(s, 4, range(30))
    batches, end = _drain(s, s.register("up"), max_samples=10)
    assert end == s.end()
    assert sum(len(x.timestamps) for b in batches for x in b.series) == 120
    s.close()


def test_a_position_past_the_end_is_treated_as_caught_up(tmp_path: Path) -> None:
    s = Store.open(tmp_path, StoreOptions())
    write_scrapes(s, 2, range(3))
    end = s.end()
    b = s.read(FeedPosition(end.segment + 5, 0), 100)
    assert b.series == [] and b.next_position == end
    s.close()


def _write_with_exemplars(s: Store, scrapes: range) -> list:
    """One sample per series per scrape; every scrape one series also gets an exemplar (a
    trace id); every fifth scrape another series gets one in a write without samples."""
    appended = []
    for k in scrapes:
        t = k * 15_000
        writes = [batch(lbl("req", i=str(i)), [t], [float(k)]) for i in range(3)]
        ex = Exemplar(make_labels({"trace_id": f"{k:032x}"}), float(k), t)
        writes[k % 3].exemplars.append(ex)
        appended.append((lbl("req", i=str(k % 3)), ex))
        res = s.append(writes)
        assert res.accepted_exemplars == 1
        if k % 5 == 0:
            only = Exemplar(make_labels({"trace_id": f"e{k:031x}"}), 0.5, t + 1)
            write = batch(lbl("req", i=str((k + 1) % 3)), [], [])
            write.exemplars.append(only)
            appended.append((write.labels, only))
            assert s.append([write]).accepted_exemplars == 1
    return appended


def test_exemplars_are_fed_in_append_order_with_their_labels_across_restart(
    tmp_path: Path,
) -> None:
    opts = StoreOptions(wal_segment_bytes=600)
    s = Store.open(tmp_path, opts)
    appended = _write_with_exemplars(s, range(30))
    assert s.stats().wal_segments > 3  # the exemplars cross segment boundaries too
    pos = s.register("up")
    first = s.read(pos, 10)
    assert first.exemplars  # they come with the samples of the same writes
    s.acknowledge("up", first.next_position)
    s.close()

    s = Store.open(tmp_path, opts)
    pos = s.register("up")
    assert pos == first.next_position
    appended += _write_with_exemplars(s, range(30, 40))
    rest, end = _drain(s, pos, max_samples=10)
    assert end == s.end()
    batches = [first, *rest]
    assert [e for b in batches for e in b.exemplars] == appended
    # Exemplars count towards the limit like samples (whole records: one write may pass it).
    assert all(
        sum(len(x.timestamps) for x in b.series) + len(b.exemplars) <= 10 + 5 for b in batches
    )
    got = _samples(batches)
    assert all([t for t, _ in v] == [k * 15_000 for k in range(40)] for v in got.values())
    # The same position and limit give the same batch (what an exact resume relies on).
    again = s.read(rest[2].next_position, 10)
    assert again.exemplars == rest[3].exemplars and again.next_position == rest[3].next_position
    s.close()


def test_exemplars_not_newer_than_the_series_last_one_are_not_fed(tmp_path: Path) -> None:
    s = Store.open(tmp_path, StoreOptions())
    ex = Exemplar(make_labels({"trace_id": "a"}), 1.0, 1000)
    first = batch(lbl(), [1000], [1.0])
    first.exemplars.append(ex)
    s.append([first])
    retry = batch(lbl(), [1000], [1.0])  # a retried write: exact duplicates
    retry.exemplars.append(ex)
    s.append([retry])
    batches, _ = _drain(s, s.register("up"))
    assert [e for b in batches for e in b.exemplars] == [(lbl(), ex)]
    s.close()
