"""Native histogram samples in the store: append rules, WAL replay and repair, blocks,
retention of the head, the change feed, and series that switch between floats and histograms."""

from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path

import numpy as np
from histogram_helpers import fh
from store.helpers import eq, lbl

from grafana_agent_bridge.histogram.model import FloatHistogram, Hint, stale_histogram
from grafana_agent_bridge.storage import SeriesBatch, SeriesData
from grafana_agent_bridge.store import Store, StoreOptions
from grafana_agent_bridge.store import wal as wal_mod
from grafana_agent_bridge.store.histsamples import encode_one

ALL = (-(2**62), 2**62)
MINUTE = 60_000


def hist(k: int, schema: int = 0) -> FloatHistogram:
    return fh(
        schema=schema,
        count=10 + k,
        total=2.5 * k,
        zt=0.001,
        zc=1,
        pos=[(0, 2), (1, 1)],
        pb=[3, 4, 2 + k],
        hint=Hint.NOT_RESET,
    )


def nhcb(k: int) -> FloatHistogram:
    return fh(schema=-53, count=6 + k, total=1.5, pos=[(0, 3)], pb=[1, 2, 3 + k], cv=[0.1, 1, 5])


def hbatch(labels, ts, hists, values=None) -> SeriesBatch:
    n = len(ts)
    vals = np.array(values if values is not None else [math.nan] * n, np.float64)
    return SeriesBatch(labels, np.array(ts, np.int64), vals, histograms=list(hists))


def _content(h: FloatHistogram) -> bytes:
    """The histogram's serialized form without its hint (bit-exact comparisons); the hints
    it reads back with are test_store_histogram_hints.py's subject."""
    return encode_one(replace(h, hint=Hint.UNKNOWN))


def samples(series: SeriesData) -> list[object]:
    """Each sample as a float or the histogram's content."""
    out: list[object] = []
    for i, t in enumerate(series.timestamps.tolist()):
        h = series.histograms[i] if series.histograms is not None else None
        out.append((t, _content(h)) if h is not None else (t, series.values[i].item()))
    return out


def expect(batches: list[tuple[int, float | FloatHistogram]]) -> list[object]:
    return [(t, _content(v)) if isinstance(v, FloatHistogram) else (t, v) for t, v in batches]


def only(store: Store, name: str = "m") -> SeriesData:
    (s,) = store.select([eq("__name__", name)], *ALL)
    return s


def test_histograms_are_stored_replayed_and_mixed_with_floats(tmp_path: Path) -> None:
    s = Store.open(tmp_path, StoreOptions())
    res = s.append(
        [
            hbatch(lbl(), [1000, 2000], [hist(1), hist(2)]),
            hbatch(lbl("c"), [1000], [nhcb(0)]),
            SeriesBatch(lbl("f"), np.array([1000], np.int64), np.array([7.0])),
        ]
    )
    assert res.accepted_samples == 4 and not res.rejections
    # The same series goes on with a float, then a histogram again (Prometheus allows it).
    s.append([hbatch(lbl(), [3000, 4000], [None, hist(4)], [5.0, math.nan])])
    s.append([hbatch(lbl(), [5000], [stale_histogram()])])
    want = expect([(1000, hist(1)), (2000, hist(2)), (3000, 5.0), (4000, hist(4))])
    got = samples(only(s))
    assert got[:4] == want
    assert only(s).histograms[4].is_stale  # type: ignore[index]
    assert only(s, "f").histograms is None
    s.close()
    s = Store.open(tmp_path, StoreOptions())
    assert samples(only(s))[:4] == want
    assert samples(only(s, "c")) == expect([(1000, nhcb(0))])
    s.close()


def test_histogram_duplicates_and_out_of_order_follow_the_float_rules(tmp_path: Path) -> None:
    with Store.open(tmp_path, StoreOptions()) as s:
        s.append([hbatch(lbl(), [1000, 2000], [hist(1), hist(2)])])
        res = s.append([hbatch(lbl(), [2000], [hist(2)])])  # a retried send
        assert res.accepted_samples == 1 and not res.rejections
        res = s.append([hbatch(lbl(), [1000], [hist(1)])])  # an older one, retried
        assert not res.rejections
        res = s.append([hbatch(lbl(), [2000], [hist(3)])])
        assert [r.kind for r in res.rejections] == ["duplicate"]
        res = s.append([hbatch(lbl(), [1500], [hist(3)])])
        assert [r.kind for r in res.rejections] == ["out_of_order"]
        res = s.append([hbatch(lbl(), [2000], [None], [1.0])])  # a float where a histogram is
        assert [r.kind for r in res.rejections] == ["duplicate"]
        assert samples(only(s)) == expect([(1000, hist(1)), (2000, hist(2))])


def test_a_scrape_of_known_histogram_series_and_repeats_within_one_write(
    tmp_path: Path,
) -> None:
    """The usual write (each known series' next histogram) and the same series coming back
    later in that write: a retried copy is a duplicate, a different one at that time or an
    older one is refused, a newer one and a float after it are stored; all replayed alike."""
    with Store.open(tmp_path, StoreOptions()) as s:
        s.append([hbatch(lbl(), [1000], [hist(1)]), hbatch(lbl(i="b"), [1000], [hist(1)])])
        res = s.append(
            [
                hbatch(lbl(), [2000], [hist(2)]),
                hbatch(lbl(i="b"), [2000], [hist(2)]),
                hbatch(lbl(), [2000], [hist(2)]),  # the same again: accepted, stored once
                hbatch(lbl(i="b"), [2000], [hist(5)]),  # another histogram at that time
                hbatch(lbl(i="b"), [1500], [hist(5)]),
                hbatch(lbl(), [3000], [hist(3)]),
                hbatch(lbl(), [4000], [None], [9.0]),
            ]
        )
        assert [r.kind for r in res.rejections] == ["duplicate", "out_of_order"]
        assert res.accepted_samples == 5
    want = expect([(1000, hist(1)), (2000, hist(2)), (3000, hist(3)), (4000, 9.0)])
    with Store.open(tmp_path, StoreOptions()) as s:
        got = {x.labels: samples(x) for x in s.select([eq("__name__", "m")], *ALL)}
    assert got == {lbl(): want, lbl(i="b"): expect([(1000, hist(1)), (2000, hist(2))])}


def test_histograms_logged_as_they_arrived_replay_as_decoded(tmp_path: Path) -> None:
    """An integer histogram goes into the WAL as the bytes it came in (no second encoding);
    replaying those bytes must give what the write decoded, including a schema above 8 that
    decoding reduces, and a float histogram (logged by encoding it) must be unchanged too."""
    from grafana_agent_bridge.histogram.codec import (
        HistogramSample,
        decode_histogram,
        encode_histogram,
    )
    from grafana_agent_bridge.remote_write import with_histograms

    fine = fh(
        schema=10, count=7, total=3.0, zc=1, zt=0.001, pos=[(-3, 2), (2, 2)], pb=[1, 2, 1, 2]
    )
    halves = fh(count=2.5, total=1.0, pos=[(0, 2)], pb=[1.5, 1.0])
    sent = [
        HistogramSample(1000, hist(1), True),
        HistogramSample(2000, fine, True),
        HistogramSample(3000, halves, False),
    ]
    decoded = [decode_histogram(encode_histogram(x)) for x in sent]
    assert [d.wire is not None for d in decoded] == [True, True, False]
    assert decoded[1].histogram.schema == 8  # reduced on the way in
    batch = with_histograms(lbl(), np.empty(0, np.int64), np.empty(0, np.float64), decoded, [])
    assert batch.histogram_wire is not None
    with Store.open(tmp_path, StoreOptions()) as s:
        assert s.append([batch]).accepted_samples == 3
        live = samples(only(s))
    with Store.open(tmp_path, StoreOptions()) as s:
        replayed = samples(only(s))
    assert live == replayed == expect([(d.timestamp, d.histogram) for d in decoded])


def test_a_float_carrying_the_marker_bits_stays_a_float(tmp_path: Path) -> None:
    from grafana_agent_bridge.store.histsamples import HIST_MARK

    with Store.open(tmp_path, StoreOptions()) as s:
        s.append([hbatch(lbl(), [1000, 2000], [None, hist(1)], [HIST_MARK, math.nan])])
        got = only(s)
        assert got.histograms is not None and got.histograms[0] is None
        assert math.isnan(got.values[0])


def test_histograms_survive_compaction_into_blocks_and_reopen(tmp_path: Path) -> None:
    opts = StoreOptions(block_duration_ms=10 * MINUTE, compact_automatically=False)
    s = Store.open(tmp_path, opts)
    ts = list(range(0, 30 * MINUTE, 15_000))
    for k, t in enumerate(ts):
        s.append([hbatch(lbl(), [t], [hist(k)]), hbatch(lbl("c"), [t], [None], [float(k)])])
    assert s.compact(force=True) >= 1
    want = expect([(t, hist(k)) for k, t in enumerate(ts)])
    assert samples(only(s)) == want
    s.close()
    s = Store.open(tmp_path, opts)
    assert samples(only(s)) == want
    assert only(s, "c").histograms is None
    s.close()
    hist_files = list((tmp_path / "blocks").glob("*/histograms"))
    assert hist_files
    per_sample = sum(f.stat().st_size for f in hist_files) / len(ts)
    assert per_sample < 40  # serialized deltas, zstd'd together: a few bytes a sample


def test_torn_histogram_record_is_repaired_and_earlier_ones_kept(tmp_path: Path) -> None:
    s = Store.open(tmp_path, StoreOptions())
    s.append([hbatch(lbl(), [1000], [hist(1)])])
    s.append([hbatch(lbl(), [2000], [hist(2)])])
    s.close()
    seg = sorted((tmp_path / "wal").iterdir())[-1]
    data = seg.read_bytes()
    seg.write_bytes(data[:-5])  # the last record torn
    s = Store.open(tmp_path, StoreOptions())
    assert samples(only(s)) == expect([(1000, hist(1))])
    s.close()


def test_the_feed_carries_histograms_in_append_order(tmp_path: Path) -> None:
    with Store.open(tmp_path, StoreOptions()) as s:
        pos = s.register("fwd")
        s.append([hbatch(lbl(), [1000], [hist(1)])])
        s.append([hbatch(lbl(), [2000, 3000], [None, nhcb(1)], [4.0, math.nan])])
        batch = s.read(pos, 1000)
        (series,) = batch.series
        assert samples(series) == expect([(1000, hist(1)), (2000, 4.0), (3000, nhcb(1))])


def test_wal_record_holds_histograms_beside_the_columns() -> None:
    refs = np.array([1, 2], np.uint64)
    ts = np.array([10, 20], np.int64)
    from grafana_agent_bridge.store.histsamples import HIST_MARK

    vals = np.array([HIST_MARK, 3.0])
    data = wal_mod.encode_samples_record(refs, ts, vals, [hist(1)])
    res = wal_mod.scan(wal_mod.MAGIC + data)
    (rec,) = res.records
    r, t, v = wal_mod.decode_sample_record(rec)
    assert r.tolist() == [1, 2] and t.tolist() == [10, 20]
    assert [encode_one(h) for h in wal_mod.decode_record_histograms(rec, v)] == [
        encode_one(hist(1))
    ]
