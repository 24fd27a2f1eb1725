"""One series several times in one write: later entries are checked against the samples the
same write accepted before them, whether the series is new, known, or came by the fast path."""

from __future__ import annotations

from pathlib import Path

import pytest

from grafana_agent_bridge.store import Store, StoreOptions
from store.helpers import as_dict, batch, lbl

ALL = (-(2**62), 2**62)


@pytest.fixture
def store(tmp_path: Path):
    s = Store.open(tmp_path / "db", StoreOptions(compact_automatically=False))
    yield s
    s.close()


@pytest.mark.parametrize("known", [False, True], ids=["new series", "known series"])
def test_repeated_one_sample_entries_see_each_other(store: Store, known: bool) -> None:
    if known:
        store.append([batch(lbl(), [500], [0])])
    res = store.append(
        [
            batch(lbl(), [1000], [1]),
            batch(lbl(), [1000], [1]),  # the same sample again: an accepted duplicate
            batch(lbl(), [1000], [9]),  # same time, other value
            batch(lbl(), [900], [2]),  # older than what this write accepted
            batch(lbl(), [2000, 3000], [3, 4]),
        ]
    )
    assert [(r.timestamp, r.kind) for r in res.rejections] == [
        (1000, "duplicate"),
        (900, "out_of_order"),
    ]
    assert res.accepted_samples == 4
    expected = [(1000, 1.0), (2000, 3.0), (3000, 4.0)]
    if known:
        expected.insert(0, (500, 0.0))
    assert as_dict(store.select([], *ALL))[lbl()] == expected


def test_new_series_written_twice_in_one_write_survives_a_restart(tmp_path: Path) -> None:
    with Store.open(tmp_path, StoreOptions(compact_automatically=False)) as s:
        s.append([batch(lbl(i="1"), [1000], [1]), batch(lbl(i="1"), [2000], [2])])
        s.append([batch(lbl(i="2"), [1000], [1])])
    with Store.open(tmp_path, StoreOptions(compact_automatically=False)) as s:
        got = as_dict(s.select([], *ALL))
        assert got == {lbl(i="1"): [(1000, 1.0), (2000, 2.0)], lbl(i="2"): [(1000, 1.0)]}
        assert s.stats().head_series == 2
