"""The counter-reset hint a histogram sample reads back with from the store: Prometheus's TSDB
answers from its chunk layout (``unknown`` where a chunk opens, ``not_reset`` inside one,
``gauge`` in a gauge chunk), not the hint written, and PromQL's results (and the corpus's
expected hints) depend on it. It must hold in the head, after WAL replay and in blocks, while
the change feed (forwarding) keeps the hint as written."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
from histogram_helpers import fh
from store.helpers import eq, lbl

from grafana_agent_bridge.histogram import readback
from grafana_agent_bridge.histogram.model import FloatHistogram, Hint, stale_histogram
from grafana_agent_bridge.histogram.ops import detect_reset
from grafana_agent_bridge.promql.promqltest.memquerier import MemoryStore
from grafana_agent_bridge.storage import SeriesBatch, SeriesData
from grafana_agent_bridge.store import Store, StoreOptions

ALL = (-(2**62), 2**62)
MINUTE = 60_000
U, R, N, G = Hint.UNKNOWN, Hint.RESET, Hint.NOT_RESET, Hint.GAUGE


def h(count: float, hint: Hint = U, *, schema: int = 0, zt: float = 0.001) -> FloatHistogram:
    pb = [count - 1]
    return fh(schema=schema, count=count, total=count, zt=zt, zc=1, pos=[(0, 1)], pb=pb, hint=hint)


# (written sample, the hint it reads back with, why): one series, one minute apart. A float
# sample is written as a number.
SEQUENCE: list[tuple[FloatHistogram | float, Hint | None, str]] = [
    (h(5, N), U, "the series' first sample opens a chunk, whatever its written hint"),
    (h(6), N, "a continuing counter histogram reads not_reset though written unknown"),
    (h(7, N), N, "and so does one written not_reset"),
    (h(8, R), U, "a written reset opens a chunk, whose first sample reads unknown"),
    (h(9), N, "the next one continues it"),
    (h(3, N), U, "a detected reset (count went down) opens a chunk, even if written not_reset"),
    (h(4, schema=1), U, "a schema change opens a chunk"),
    (h(5, schema=1, zt=0.01), U, "so does a zero threshold change"),
    (h(6, schema=1, zt=0.01), N, "then it goes on"),
    (2.0, None, "a float sample between histograms"),
    (h(7), U, "the histogram after a float opens a chunk"),
    (h(2, G), G, "a gauge histogram opens a gauge chunk"),
    (h(1, G), G, "a gauge's decrease is no reset: it stays a gauge"),
    (h(3), U, "a counter after a gauge opens a chunk"),
    (stale_histogram(), None, "a stale marker stays in the chunk"),
    (h(4), U, "the histogram after a stale marker opens a chunk"),
    (h(5), N, "and the next continues it"),
]


def _batch(i: int, v: FloatHistogram | float, t0: int = 0) -> SeriesBatch:
    t = np.array([t0 + i * MINUTE], np.int64)
    if isinstance(v, FloatHistogram):
        return SeriesBatch(lbl(), t, np.array([math.nan]), histograms=[v])
    return SeriesBatch(lbl(), t, np.array([v]))


def _write_one_by_one(s: Store | MemoryStore, t0: int = 0) -> None:
    for i, (v, _, _) in enumerate(SEQUENCE):
        res = s.append([_batch(i, v, t0)])
        assert res.accepted_samples == 1, res


def _write_at_once(s: Store) -> None:
    """The whole sequence in one write: the rule works inside a write too."""
    ts = np.array([i * MINUTE for i in range(len(SEQUENCE))], np.int64)
    vals = np.array([v if isinstance(v, float) else math.nan for v, _, _ in SEQUENCE])
    hists = [v if isinstance(v, FloatHistogram) else None for v, _, _ in SEQUENCE]
    assert s.append([SeriesBatch(lbl(), ts, vals, histograms=hists)]).accepted_samples == len(ts)


def _only(s: Store | MemoryStore) -> SeriesData:
    (series,) = s.select([eq("__name__", "m")], *ALL)
    return series


def _assert_read_back(series: SeriesData) -> None:
    assert series.histograms is not None
    assert len(series.histograms) == len(SEQUENCE)
    for (written, want, why), got in zip(SEQUENCE, series.histograms):
        if want is None:
            continue
        assert got is not None, why
        assert got.hint == want, why
        assert got.count == written.count  # type: ignore[union-attr]


def test_hints_read_back_from_the_chunk_layout_in_the_head(tmp_path: Path) -> None:
    with Store.open(tmp_path / "a", StoreOptions()) as s:
        _write_one_by_one(s)
        _assert_read_back(_only(s))
    with Store.open(tmp_path / "b", StoreOptions()) as s:
        _write_at_once(s)
        _assert_read_back(_only(s))


def test_hints_are_the_same_after_wal_replay(tmp_path: Path) -> None:
    with Store.open(tmp_path, StoreOptions()) as s:
        _write_one_by_one(s)
    with Store.open(tmp_path, StoreOptions()) as s:
        _assert_read_back(_only(s))
        # The series goes on after the restart as it would have before.
        s.append([_batch(len(SEQUENCE), h(6, R))])
        s.append([_batch(len(SEQUENCE) + 1, h(7))])
        assert [x.hint for x in _only(s).histograms[-2:]] == [U, N]  # type: ignore[index]


def test_hints_are_kept_in_blocks_and_across_a_reopen(tmp_path: Path) -> None:
    opts = StoreOptions(block_duration_ms=2 * 60 * MINUTE, compact_automatically=False)
    with Store.open(tmp_path, opts) as s:
        _write_one_by_one(s)
        # More samples hours later, so that the first range goes into a block.
        for k in range(3):
            s.append([_batch(k, h(20 + k), t0=5 * 60 * MINUTE)])
        assert s.compact(force=True) >= 1
        assert list((tmp_path / "blocks").glob("*/histograms"))
        _assert_read_back(_window(s, 0, 60 * MINUTE))
        late = _window(s, 5 * 60 * MINUTE, 6 * 60 * MINUTE).histograms
        assert [x.hint for x in late] == [U, N, N]  # type: ignore[union-attr]
    with Store.open(tmp_path, opts) as s:
        _assert_read_back(_window(s, 0, 60 * MINUTE))


def _window(s: Store, mint: int, maxt: int) -> SeriesData:
    (series,) = s.select([eq("__name__", "m")], mint, maxt)
    return series


def test_a_chunk_range_boundary_opens_a_chunk(tmp_path: Path) -> None:
    """Prometheus's head chunks never straddle a multiple of the block duration."""
    opts = StoreOptions(block_duration_ms=10 * MINUTE, compact_automatically=False)
    with Store.open(tmp_path, opts) as s:
        for k, t in enumerate(range(8 * MINUTE, 13 * MINUTE, MINUTE)):
            t_ = np.array([t], np.int64)
            s.append([SeriesBatch(lbl(), t_, np.array([math.nan]), histograms=[h(5 + k)])])
        hints = [x.hint for x in _only(s).histograms]  # type: ignore[union-attr]
        assert hints == [U, N, U, N, N]


def test_the_feed_keeps_the_hints_as_written(tmp_path: Path) -> None:
    """Forwarding sends what was written, as Prometheus's remote-write reads its WAL."""
    with Store.open(tmp_path, StoreOptions()) as s:
        pos = s.register("fwd")
        _write_one_by_one(s)
        (series,) = s.read(pos, 1000).series
        assert series.histograms is not None
        for (written, _, _), got in zip(SEQUENCE, series.histograms):
            if isinstance(written, FloatHistogram) and not written.is_stale:
                assert got is not None and got.hint == written.hint


def test_a_retried_histogram_is_a_duplicate_whatever_hint_it_reads_back_with(
    tmp_path: Path,
) -> None:
    with Store.open(tmp_path, StoreOptions()) as s:
        _write_one_by_one(s)
        res = s.append([_batch(1, h(6))])  # stored, reads back not_reset
        assert res.accepted_samples == 1 and not res.rejections


def test_the_test_querier_reads_back_as_the_store_does(tmp_path: Path) -> None:
    """One rule for both: the corpus runs on either."""
    mem = MemoryStore()
    _write_one_by_one(mem)
    with Store.open(tmp_path, StoreOptions()) as s:
        _write_one_by_one(s)
        want = [x.hint if x is not None else None for x in _only(s).histograms or []]
    assert [x.hint if x is not None else None for x in _only(mem).histograms or []] == want


def test_a_reset_inside_an_unchanged_layout_opens_a_chunk() -> None:
    """Most samples keep the previous sample's layout, and ``opens_chunk`` decides those
    without ``detect_reset``'s bucket walk: a decrease anywhere (a bucket on either side, the
    zero bucket, the count) must still open a chunk, and the answer must be the full
    comparison's whatever the counts (NaN included)."""
    prev = fh(count=20, zc=2, zt=0.5, pos=[(-1, 3)], pb=[3, 4, 5], neg=[(0, 2)], nb=[3, 3])
    same = fh(count=24, zc=2, zt=0.5, pos=[(-1, 3)], pb=[4, 4, 6], neg=[(0, 2)], nb=[3, 5])
    t = MINUTE
    assert not readback.opens_chunk(same, 2 * t, prev, t, 0)
    rng = np.random.default_rng(7)
    for _ in range(300):
        pick = rng.integers(-1, 2, size=8).astype(float)
        values = (pick + np.array([24, 2, 4, 4, 6, 3, 5, 0])).tolist()
        if rng.random() < 0.1:
            values[int(rng.integers(0, 7))] = math.nan
        count, zc, p0, p1, p2, n0, n1, _ = values
        cur = fh(
            count=count, zc=zc, zt=0.5, pos=[(-1, 3)], pb=[p0, p1, p2], neg=[(0, 2)], nb=[n0, n1]
        )
        want = detect_reset(cur, prev)
        assert readback.opens_chunk(cur, 2 * t, prev, t, 0) == want, cur
    down = fh(count=24, zc=2, zt=0.5, pos=[(-1, 3)], pb=[4, 3, 6], neg=[(0, 2)], nb=[3, 5])
    assert readback.opens_chunk(down, 2 * t, prev, t, 0)
    # Bucket -1 ends at 0.5, inside the zero bucket: Prometheus does not compare it.
    inside_zero = fh(count=24, zc=2, zt=0.5, pos=[(-1, 3)], pb=[2, 4, 6], neg=[(0, 2)], nb=[3, 5])
    assert not readback.opens_chunk(inside_zero, 2 * t, prev, t, 0)
