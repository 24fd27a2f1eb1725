"""The step windows of selectors (``Flat.windows``): every (series, step) gets exactly the
samples in ``(end - width, end]``, whichever way the ends are spaced. Every range query and
every ``rate`` reads its samples through these indices, so they are checked against a plain
per-window search on random data."""

from __future__ import annotations

import numpy as np
import pytest

from grafana_agent_bridge.labels import make_labels
from grafana_agent_bridge.promql.aggregations import group_key_fn
from grafana_agent_bridge.promql.selection import FEW_SERIES, Flat
from grafana_agent_bridge.promql.values import (
    DELAYED_NAME_REMOVAL,
    DROPPED,
    drop_name,
    drop_names,
)
from grafana_agent_bridge.storage import SeriesData


def _flat(rng: np.random.Generator, nser: int) -> Flat:
    series = []
    for i in range(nser):
        n = int(rng.integers(0, 40))
        ts = np.unique(rng.integers(0, 600_000, n)).astype(np.int64)
        series.append(SeriesData((("s", f"{i:03d}"),), ts, rng.random(len(ts))))
    return Flat(series)


def _expected(flat: Flat, ends: np.ndarray, width: int) -> tuple[np.ndarray, np.ndarray]:
    lo = np.empty((len(flat), len(ends)), dtype=np.int64)
    hi = np.empty_like(lo)
    for i in range(len(flat)):
        a, b = int(flat.offsets[i]), int(flat.offsets[i + 1])
        for j, end in enumerate(ends.tolist()):
            inside = [k for k in range(a, b) if end - width < flat.ts[k] <= end]
            first = inside[0] if inside else a + int(np.sum(flat.ts[a:b] <= end))
            lo[i, j] = first
            hi[i, j] = first + len(inside)
    return lo, hi


ENDS = {
    "even steps": np.arange(0, 700_000, 15_000, dtype=np.int64),
    "one step": np.array([300_000], dtype=np.int64),
    "uneven steps": np.array([5, 14_000, 14_001, 200_000, 450_123, 700_000], dtype=np.int64),
    "pinned by @": np.full(7, 250_000, dtype=np.int64),
    "unordered": np.array([400_000, 100_000, 650_000, 0], dtype=np.int64),
    "before all samples": np.arange(-90_000, -10_000, 20_000, dtype=np.int64),
}


@pytest.mark.parametrize("name", list(ENDS))
@pytest.mark.parametrize("width", [1, 15_000, 60_000, 61_000, 300_000, 10**7])
@pytest.mark.parametrize("nser", [1, FEW_SERIES, 25])  # few series are searched, more counted
def test_windows_hold_exactly_the_samples_in_each_left_open_window(
    name: str, width: int, nser: int
) -> None:
    rng = np.random.default_rng(len(name) * 1_000_003 + width + nser)
    flat = _flat(rng, nser)
    ends = ENDS[name]
    lo, hi = flat.windows(ends, width)
    want_lo, want_hi = _expected(flat, ends, width)
    assert (hi == want_hi).all()
    assert (lo == want_lo).all()


def test_samples_on_a_window_edge_belong_to_the_window_that_ends_there() -> None:
    ts = np.array([15_000, 30_000, 45_000], dtype=np.int64)
    flat = Flat([SeriesData((("s", "a"),), ts, np.ones(3))])
    lo, hi = flat.windows(np.array([15_000, 30_000, 45_000, 60_000], dtype=np.int64), 15_000)
    assert (hi - lo).tolist() == [[1, 1, 1, 0]]
    assert hi.tolist() == [[1, 2, 3, 3]]


@pytest.mark.parametrize(
    "names",
    [["instance"], ["instance", "mode"], ["absent"], ["__name__"], ["a", "b", "c", "mode"]],
)
@pytest.mark.parametrize("without", [False, True])
def test_group_keys_hold_exactly_the_grouping_labels(names: list[str], without: bool) -> None:
    """``by``/``without`` keys (found by bisection for a few names): the labels named, or all
    but those named and the name, in label order; never the delayed-name mark (a group
    of ``by (__name__)`` loses its name afterwards if a member's was to go)."""
    series = [
        make_labels({"__name__": "up", "instance": "h:1", "job": "n", "mode": "idle", "a": "1"}),
        make_labels({"instance": "h:2", "mode": "user"}),
        make_labels({"zz": "last"}),
        ((DROPPED, ""), *make_labels({"__name__": "up", "instance": "h:3"})),
    ]
    key = group_key_fn(without, names)
    for lb in series:
        if without:
            gone = {*names, DROPPED, "__name__", "__type__", "__unit__"}
            want = tuple(p for p in lb if p[0] not in gone)
        else:
            want = tuple(p for p in lb if p[0] in names)
        assert key(lb) == want


@pytest.mark.parametrize("delayed", [False, True])
def test_names_dropped_in_bulk_as_one_by_one(delayed: bool) -> None:
    """``drop_names`` (range functions over many series) is ``drop_name`` of each."""
    series = [
        make_labels({"__name__": "up", "instance": "h:1"}),
        make_labels({"__name__": "up"}),
        make_labels({"__name__": "x", "__type__": "counter", "__unit__": "s", "a": "1"}),
        make_labels({"Zone": "A", "__name__": "up", "b": "2"}),  # sorts before __name__
        make_labels({"instance": "h:2"}),
        (),
        ((DROPPED, ""), *make_labels({"__name__": "up", "instance": "h:3"})),
    ]
    token = DELAYED_NAME_REMOVAL.set(delayed)
    try:
        assert drop_names(series) == [drop_name(lb) for lb in series]
    finally:
        DELAYED_NAME_REMOVAL.reset(token)
