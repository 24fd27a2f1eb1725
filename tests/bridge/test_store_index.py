"""Label index: postings for all four matcher types, absent labels, and use by the store."""

from __future__ import annotations

from pathlib import Path

import pytest
from store.helpers import batch, lbl

from grafana_agent_bridge.labels import Matcher, MatchType
from grafana_agent_bridge.store import Store, StoreOptions
from grafana_agent_bridge.store.index import SeriesIndex

SERIES = {
    "a": lbl("up", job="node", instance="h1"),
    "b": lbl("up", job="node", instance="h2"),
    "c": lbl("up", job="api", instance="h1", env="prod"),
    "d": lbl("other", job="api"),
}


@pytest.fixture
def index() -> tuple[SeriesIndex, dict[int, str]]:
    idx = SeriesIndex()
    names = {idx.add(labels): key for key, labels in SERIES.items()}
    return idx, names


def _sel(index, *matchers: tuple[str, str, str]) -> set[str]:
    idx, names = index
    ms = [Matcher(n, MatchType(op), v) for n, op, v in matchers]
    return {names[sid] for sid in idx.select(ms)}


@pytest.mark.parametrize(
    ("matchers", "expected"),
    [
        ([("job", "=", "node")], {"a", "b"}),
        ([("job", "!=", "node")], {"c", "d"}),
        ([("instance", "=~", "h.")], {"a", "b", "c"}),
        ([("instance", "!~", "h1")], {"b", "d"}),  # no instance label: "" does not match h1
        ([("env", "=", "")], {"a", "b", "d"}),  # absent label matches the empty string
        ([("env", "!=", "")], {"c"}),
        ([("env", "=~", "prod|")], {"a", "b", "c", "d"}),
        ([("env", "=~", ".+")], {"c"}),
        ([("__name__", "=", "up"), ("instance", "=~", "h1|h3")], {"a", "c"}),
        ([("__name__", "=", "up"), ("job", "!~", "no.*")], {"c"}),
        ([("job", "=~", "nod")], set()),  # regexes are fully anchored
        ([("missing", "=", "x")], set()),
        ([], {"a", "b", "c", "d"}),
    ],
)
def test_select(index, matchers, expected) -> None:
    assert _sel(index, *matchers) == expected


def test_remove_cleans_postings(index) -> None:
    idx, names = index
    sid_c = next(s for s, k in names.items() if k == "c")
    idx.remove_all([sid_c])
    assert "env" not in idx.label_names()
    assert _sel(index, ("job", "=", "api")) == {"d"}
    assert idx.get(SERIES["c"]) is None


def test_ids_pinned_out_of_order_select_and_remove_like_new_ones() -> None:
    """WAL replay pins ids in whatever order the records hold them; appends then add higher
    ones. Selection and removal must not depend on that order."""
    idx = SeriesIndex()
    pinned = {40: lbl("up", job="node", i="a"), 7: lbl("up", job="node", i="b")}
    for sid, labels in pinned.items():
        assert idx.add(labels, sid) == sid
    new = idx.add_new(lbl("up", job="node", i="c"))
    assert new == 41
    assert idx.add(lbl("up", job="node", i="d"), 3) == 3
    node = [Matcher("job", MatchType.EQUAL, "node")]
    assert idx.select(node) == [3, 7, 40, 41]
    for sid in (40, 3):
        idx.remove_all([sid])
        idx.remove_all([sid])  # twice: no-op
    assert idx.select(node) == [7, 41]
    assert idx.select([Matcher("i", MatchType.REGEX, "a|d")]) == []
    assert idx.label_values("i") == ["b", "c"]
    assert idx.add(lbl("up", job="node", i="a")) == 42


def test_ids_are_stable_across_restart_and_new_ones_never_collide(tmp_path: Path) -> None:
    s = Store.open(tmp_path, StoreOptions())
    s.append([batch(labels, [1000], [1.0]) for labels in SERIES.values()])
    before = {labels: s._head.index.get(labels) for labels in SERIES.values()}
    s.close()
    s = Store.open(tmp_path, StoreOptions())
    assert {labels: s._head.index.get(labels) for labels in SERIES.values()} == before
    s.append([batch(lbl("new"), [1000], [1.0])])
    assert s._head.index.get(lbl("new")) not in before.values()
    s.close()


def test_store_selects_through_the_index(tmp_path: Path) -> None:
    s = Store.open(tmp_path, StoreOptions())
    s.append([batch(labels, [1000], [1.0]) for labels in SERIES.values()])
    got = [d.labels for d in s.select([Matcher("instance", MatchType.NOT_REGEX, "h1")], 0, 2000)]
    assert got == sorted([SERIES["b"], SERIES["d"]])
    s.close()


def test_removing_many_series_rebuilds_each_posting_list_to_exactly_the_rest() -> None:
    """Enough ids leave the shared lists (``job``, ``__name__``) that each is rebuilt once;
    the lists of one series go whole; pinned out-of-order ids and repeats change nothing."""
    idx = SeriesIndex()
    sids = [idx.add_new(lbl("up", job="node", i=str(n))) for n in range(100)]
    pinned = idx.add(lbl("up", job="node", i="pinned"), 1_000)
    doomed = [*sids[::3], pinned, sids[0], 99_999]
    idx.remove_all(doomed)
    kept = [s for s in sids if s not in set(doomed)]
    node = [Matcher("job", MatchType.EQUAL, "node")]
    assert idx.select(node) == kept
    assert idx.select([Matcher("__name__", MatchType.EQUAL, "up")]) == kept
    assert idx.label_values("i") == sorted(str(n) for n in range(100) if sids[n] in kept)
    assert idx.get(lbl("up", job="node", i="0")) is None
    idx.remove_all(kept)
    assert idx.label_names() == []
    assert idx.select(node) == []


def test_selection_from_the_shortest_list_matches_every_matcher_on_each_series() -> None:
    """Selection starts from the shortest posting list and checks few candidates on their own
    labels: for every mix of list lengths and matcher types it must still pick exactly the
    series whose labels match all matchers (checked here series by series)."""
    idx = SeriesIndex()
    all_labels = {}
    for host in range(40):
        for metric in range(30):
            labels = lbl(
                f"m{metric}",
                job="node" if host < 36 else "api",
                instance=f"h{host}",
                mode=f"x{metric % 3}",
                **({"env": "prod"} if host % 5 == 0 else {}),
            )
            all_labels[idx.add(labels)] = labels
    selectors = [
        [("__name__", "=", "m4"), ("instance", "=", "h3")],  # 40 and 30 long: intersected
        [("job", "=", "node"), ("instance", "=", "h7")],  # 30 against 1080: checked
        [("job", "=", "node"), ("instance", "=", "h39")],  # no series has both
        [("job", "=", "node"), ("instance", "=", "h7"), ("mode", "=~", "x[12]")],
        [("instance", "=", "h5"), ("env", "!=", "prod")],  # h5 has env=prod: none
        [("instance", "=", "h6"), ("env", "=", "")],  # no env label: all 30
        [("instance", "=", "h6"), ("env", "!~", "p.*"), ("__name__", "!=", "m1")],
        [("job", "=~", "node|api"), ("mode", "=", "x1"), ("instance", "=~", "h1.")],
        [("__name__", "=", "m4"), ("nolabel", "=", "y")],
        [("job", "=", "")],
    ]
    for sel in selectors:
        ms = [Matcher(n, MatchType(op), v) for n, op, v in sel]
        expected = sorted(
            sid
            for sid, labels in all_labels.items()
            if all(m.matches(dict(labels).get(m.name, "")) for m in ms)
        )
        assert idx.select(ms) == expected, sel
