"""A head series reads back exactly what was appended, bit for bit, whatever its encoding:
timestamps on a fixed interval or not (jitter, gaps wider than int32 offsets), values that
repeat or change (NaN payloads such as stale markers, -0.0 next to 0.0), one sample at a
time or in runs, and after old samples are dropped (``memseries``: the columns are formulas
until the samples leave them). Checked against plain lists, on random histories."""

from __future__ import annotations

import struct

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from grafana_agent_bridge.labels import Labels
from grafana_agent_bridge.store.memseries import NO_TIMESTAMP, TAIL, HeadSeries


def _f(bits: int) -> float:
    return struct.unpack("<d", struct.pack("<Q", bits))[0]


STALE = _f(0x7FF0000000000002)
VALUES = [1.5, 0.0, -0.0, float("nan"), STALE, _f(0x7FF8000000000001), 1e300, 3.0]
T0 = 1_700_000_000_000
STEP = 15_000


def _bits(values: list[float]) -> list[int]:
    return [struct.unpack("<Q", struct.pack("<d", v))[0] for v in values]


def _arr_bits(values: np.ndarray) -> list[int]:
    return np.ascontiguousarray(values, dtype=np.float64).view(np.uint64).tolist()


gap = st.one_of(
    st.just(STEP),
    st.just(STEP),
    st.integers(1, 40_000),  # jitter, odd intervals
    st.integers(2**31, 2**33),  # wider than int32 offsets
)
value = st.one_of(st.just(1.5), st.sampled_from(VALUES))
op = st.one_of(
    st.tuples(st.just("one"), st.lists(st.tuples(gap, value), min_size=1, max_size=40)),
    st.tuples(st.just("many"), st.lists(st.tuples(gap, value), min_size=1, max_size=40)),
    st.tuples(st.just("drop"), st.integers(0, 100)),
    st.tuples(st.just("read"), st.integers(0, 100), st.integers(0, 100)),
)


def _check_reads(hs: HeadSeries, ts: list[int], vs: list[float], a: int, b: int) -> None:
    assert len(hs) == len(ts)
    if not ts:
        assert hs.first_t == NO_TIMESTAMP
        return
    assert hs.first_t == ts[0]
    # Before anything flushes the tail (it asks the tail first, then the columns).
    for probe in (ts[-1], ts[-1] + 1, ts[len(ts) // 2], ts[0], ts[0] + 1):
        _check_sample_before(hs, ts, vs, probe)
    t_all, v_all = hs.columns()
    assert t_all.dtype == np.int64 and v_all.dtype == np.float64
    assert t_all.tolist() == ts
    assert _arr_bits(v_all) == _bits(vs)
    # A window between two stored samples (or just off them), both ways of reading it.
    lo_i, hi_i = sorted((a * (len(ts) - 1) // 100, b * (len(ts) - 1) // 100))
    mint, maxt = ts[lo_i] + (a % 3) - 1, ts[hi_i] + (b % 3) - 1
    want = [(t, bits) for t, bits in zip(ts, _bits(vs)) if mint <= t <= maxt]
    shared: dict = {}
    for t_w, v_w in (
        hs.window(mint, maxt),
        hs.window_views(mint, maxt),
        hs.window_views(mint, maxt, shared),
        hs.window_views(mint, maxt, shared),  # (from the cache, if a formula)
    ):
        assert t_w.tolist() == [t for t, _ in want]
        assert _arr_bits(v_w) == [bits for _, bits in want]
    # Point reads.
    for probe in (ts[lo_i], ts[lo_i] + 1, ts[hi_i] - 1, ts[0] - 1):
        got = hs.value_at(probe)
        if probe in ts:
            assert got is not None and _bits([got]) == _bits([vs[ts.index(probe)]])
        else:
            assert got is None
        _check_sample_before(hs, ts, vs, probe)


def _check_sample_before(hs: HeadSeries, ts: list[int], vs: list[float], probe: int) -> None:
    before = [i for i, t in enumerate(ts) if t < probe]
    sb = hs.sample_before(probe)
    if before:
        assert sb is not None and sb[0] == ts[before[-1]]
        assert _bits([sb[1]]) == _bits([vs[before[-1]]])
    else:
        assert sb is None


@settings(max_examples=300, deadline=None)
@given(st.lists(op, max_size=12))
def test_reads_back_what_was_appended(ops: list[tuple]) -> None:
    hs = HeadSeries(1, Labels((("__name__", "x"),)))
    ts: list[int] = []
    vs: list[float] = []
    last = T0
    for o in ops:
        if o[0] in ("one", "many"):
            new_t, new_v = [], []
            for g, v in o[1]:
                last += g
                new_t.append(last)
                new_v.append(v)
            if o[0] == "one":
                for t, v in zip(new_t, new_v):
                    hs.append_one(t, v)
            else:
                hs.append_many(np.array(new_t, np.int64), np.array(new_v, np.float64))
            ts += new_t
            vs += new_v
            assert hs.last_t == last
        elif o[0] == "drop":
            cut = ts[o[1] * (len(ts) - 1) // 100] + (o[1] % 2) if ts else T0
            hs.drop_before(cut)
            keep = [i for i, t in enumerate(ts) if t >= cut]
            ts, vs = [ts[i] for i in keep], [vs[i] for i in keep]
        else:
            _check_reads(hs, ts, vs, o[1], o[2])
    _check_reads(hs, ts, vs, 10, 90)


def test_a_scraped_series_holds_no_arrays() -> None:
    """The common case the encoding is for: samples on the scrape interval with a constant
    value cost no per-sample memory; a changing value costs 8 bytes a sample, jitter 4."""
    const = HeadSeries(1, Labels((("__name__", "a"),)))
    changing = HeadSeries(2, Labels((("__name__", "b"),)))
    jittered = HeadSeries(3, Labels((("__name__", "c"),)))
    n = 30 * TAIL
    for i in range(n):
        const.append_one(T0 + i * STEP, 4.0)
        changing.append_one(T0 + i * STEP, float(i))
        jittered.append_one(T0 + i * STEP + (i % 3), 4.0)
    for s in (const, changing, jittered):
        s.flush()
    assert const.nbytes() < 64
    assert 8 * n <= changing.nbytes() < 8 * n + 8 * 128 + 64
    assert 4 * n <= jittered.nbytes() < 4 * n + 4 * 128 + 64
    # After a block cut the rest is encoded afresh: a series back on its interval drops its
    # offsets array.
    jittered.drop_before(T0 + (n - 5) * STEP)
    jittered.append_one(T0 + n * STEP + 10, 4.0)
    jittered.flush()
    assert jittered.toff is not None
    jittered.drop_before(T0 + n * STEP + 1)
    assert jittered.toff is None and len(jittered) == 1


def _formula_series(sid: int, t0: int, n: int, value: float | None = None) -> HeadSeries:
    hs = HeadSeries(sid, Labels((("__name__", f"x{sid}"),)))
    ts = np.arange(t0, t0 + n * STEP, STEP, dtype=np.int64)
    vs = np.full(n, value) if value is not None else np.arange(n, dtype=np.float64)
    hs.append_many(ts, vs)
    for i in range(3):  # a tail not yet flushed
        hs.append_one(t0 + (n + i) * STEP, 7.0)
    return hs


def test_shared_formula_timestamps_are_one_read_only_array() -> None:
    """Series on the same formula window share one timestamps array within a query (the
    cache); it is read-only, while ``window`` still hands out a writable copy."""
    a, b = _formula_series(1, T0, 40, 2.0), _formula_series(2, T0, 40)
    other = _formula_series(3, T0 + 1, 40)  # another scrape phase: its own array
    shared: dict = {}
    mint, maxt = T0 + 10 * STEP - 1, T0 + 42 * STEP
    ta, va = a.window_views(mint, maxt, shared)
    tb, vb = b.window_views(mint, maxt, shared)
    tc, _ = other.window_views(mint, maxt, shared)
    assert ta is tb and not ta.flags.writeable
    assert tc is not ta and tc.tolist() == [t + 1 for t in ta.tolist()][: len(tc)]
    assert ta.tolist() == list(range(T0 + 10 * STEP, T0 + 43 * STEP, STEP))
    assert va.tolist() == [2.0] * 30 + [7.0] * 3
    assert vb.tolist() == [float(i) for i in range(10, 40)] + [7.0] * 3
    t_copy, _ = a.window(mint, maxt)
    assert t_copy.flags.writeable and t_copy.tolist() == ta.tolist()
    # Empty windows, before and after the samples, from the cache or not.
    for lo, hi in ((T0 - 10 * STEP, T0 - 1), (T0 + 50 * STEP, T0 + 60 * STEP)):
        t_e, v_e = a.window_views(lo, hi, shared)
        assert len(t_e) == 0 and len(v_e) == 0


def test_window_boundaries_with_jitter_and_wide_offsets() -> None:
    """Offsets arrays (int32, and int64 past 24 days), windows ending on, just before and
    just after a jittered sample."""
    for gap in (0, 2**31 + 5):
        hs = HeadSeries(1, Labels((("__name__", "x"),)))
        ts = [T0 + i * STEP + (i % 7) - 3 for i in range(30)]
        ts += [ts[-1] + gap + STEP * (i + 1) + (i % 3) for i in range(10)]
        for i, t in enumerate(ts):
            hs.append_one(t, float(i))
        hs.flush()
        assert hs.toff is not None and hs.toff.itemsize == (8 if gap else 4)
        far = ts[-1] + 2**32  # past int32 offsets: the general path
        for mint, maxt in ((ts[0], far), (ts[3] + 1, far), (far, far + 2**33), (ts[0], ts[0])):
            got_t, got_v = hs.window_views(mint, maxt, {})
            assert got_t.tolist() == [t for t in ts if mint <= t <= maxt]
        for i in (0, 5, 29, 30, 39):
            for d in (-1, 0, 1):
                for mint, maxt in (
                    (ts[i] + d, ts[-1]),
                    (ts[0], ts[i] + d),
                    (ts[i] + d, ts[i] + d),
                ):
                    got_t, got_v = hs.window_views(mint, maxt, {})
                    want = [(t, float(k)) for k, t in enumerate(ts) if mint <= t <= maxt]
                    assert got_t.tolist() == [t for t, _ in want]
                    assert got_v.tolist() == [v for _, v in want]
