"""The store's limits: head series, labels of a new series, exemplar labels, and the bounded
list of rejections one append returns. Each limit refuses before the cost is paid (nothing
is indexed or kept for what it refuses) and keeps the valid rest of the same write."""

from __future__ import annotations

from pathlib import Path

import pytest

from grafana_agent_bridge.labels import LabelLimits, make_labels
from grafana_agent_bridge.storage import Exemplar, SeriesBatch
from grafana_agent_bridge.store import Store, StoreOptions
from grafana_agent_bridge.store.db import DETAILED_REJECTIONS
from store.helpers import batch, eq, lbl

ALL = (-(2**62), 2**62)


def _open(path: Path, **options: object) -> Store:
    return Store.open(path, StoreOptions(compact_automatically=False, **options))  # type: ignore[arg-type]


def _names(store: Store) -> list[str]:
    return [dict(lb)["i"] for lb in store.series([eq("__name__", "m")], *ALL)]


def test_the_head_series_limit_refuses_new_series_and_keeps_existing_ones(tmp_path: Path) -> None:
    store = _open(tmp_path, max_head_series=3)
    try:
        res = store.append([batch(lbl(i=str(i)), [1000], [1.0]) for i in range(5)])
        assert res.accepted_samples == 3
        assert [r.kind for r in res.rejections] == ["head_series", "head_series"]
        assert "storage.max_head_series" in res.rejections[0].reason
        assert "3" in res.rejections[0].reason
        assert _names(store) == ["0", "1", "2"]  # nothing indexed for the refused ones
        # A full head still takes samples of the series it holds, in the same write as
        # refused new ones.
        res = store.append([batch(lbl(i="0"), [2000], [2.0]), batch(lbl(i="9"), [2000], [1.0])])
        assert res.accepted_samples == 1 and [r.kind for r in res.rejections] == ["head_series"]
        assert store.stats().head_series == 3
        # Cutting blocks empties the head; that frees room for new series.
        store.compact(force=True)
        res = store.append([batch(lbl(i="7"), [9_000_000], [1.0])])
        assert res.accepted_samples == 1 and not res.rejections
    finally:
        store.close()


def test_a_lowered_head_limit_never_drops_acknowledged_series_on_replay(tmp_path: Path) -> None:
    store = _open(tmp_path)
    store.append([batch(lbl(i=str(i)), [1000], [1.0]) for i in range(10)])
    store.close()
    store = _open(tmp_path, max_head_series=4)
    try:
        assert len(_names(store)) == 10
        res = store.append([batch(lbl(i="new"), [2000], [1.0])])
        assert [r.kind for r in res.rejections] == ["head_series"]
    finally:
        store.close()


def test_zero_means_no_head_limit(tmp_path: Path) -> None:
    store = _open(tmp_path, max_head_series=0)
    try:
        res = store.append([batch(lbl(i=str(i)), [1000], [1.0]) for i in range(50)])
        assert res.accepted_samples == 50 and not res.rejections
    finally:
        store.close()


@pytest.mark.parametrize(
    ("labels", "kind", "key"),
    [
        (
            {"__name__": "m", "i": "x", **{f"l{k}": "v" for k in range(70)}},
            "labels_per_series",
            "storage.max_labels_per_series",
        ),
        (
            {"__name__": "m", "i": "x", "n" * 1025: "v"},
            "label_name_length",
            "max_label_name_length",
        ),
        ({"__name__": "m", "i": "v" * 2049}, "label_value_length", "max_label_value_length"),
        # Bytes, not characters, as Prometheus counts: 1,100 two-byte characters are too long.
        ({"__name__": "m", "i": "é" * 1100}, "label_value_length", "max_label_value_length"),
    ],
)
def test_labels_over_a_limit_refuse_the_series_and_index_nothing(
    tmp_path: Path, labels: dict[str, str], kind: str, key: str
) -> None:
    store = _open(tmp_path)
    try:
        res = store.append(
            [batch(make_labels(labels), [1000], [1.0]), batch(lbl(i="ok"), [1000], [1.0])]
        )
        assert res.accepted_samples == 1
        (rejected,) = res.rejections
        assert rejected.kind == kind and key in rejected.reason
        assert len(rejected.reason) < 200  # the offending name is clipped, not repeated
        assert _names(store) == ["ok"]
        assert store.stats().series == 1
    finally:
        store.close()


def test_labels_at_the_limits_are_accepted(tmp_path: Path) -> None:
    store = _open(tmp_path)
    try:
        labels = {"__name__": "m", "i": "é" * 1024, "n" * 1024: "x"}  # 2,048 bytes; 1,024
        labels.update({f"l{k}": "v" for k in range(64 - len(labels))})
        res = store.append([batch(make_labels(labels), [1000], [1.0])])
        assert res.accepted_samples == 1 and not res.rejections
    finally:
        store.close()


def test_label_limits_are_configurable_and_zero_switches_them_off(tmp_path: Path) -> None:
    limits = LabelLimits(
        max_labels_per_series=0, max_label_name_length=0, max_label_value_length=4
    )
    store = _open(tmp_path, label_limits=limits)
    try:
        wide = make_labels({"__name__": "m", "i": "1", **{f"l{k}": "v" for k in range(100)}})
        res = store.append([batch(wide, [1000], [1.0]), batch(lbl(i="12345"), [1000], [1.0])])
        assert res.accepted_samples == 1
        assert [r.kind for r in res.rejections] == ["label_value_length"]
    finally:
        store.close()


def _with_exemplar(trace: str, t: int) -> SeriesBatch:
    b = batch(lbl(i="x"), [t], [1.0])
    b.exemplars.append(Exemplar(make_labels({"trace_id": trace}), 0.5, t))
    return b


def test_exemplar_labels_over_128_characters_are_refused_and_the_sample_kept(
    tmp_path: Path,
) -> None:
    store = _open(tmp_path)
    try:
        # 8 + 120 = 128 characters (240 bytes): fits, since characters are counted.
        res = store.append([_with_exemplar("é" * 120, 1000)])
        assert res.accepted_exemplars == 1 and not res.rejections
        res = store.append([_with_exemplar("a" * 121, 2000)])
        assert res.accepted_samples == 1 and res.accepted_exemplars == 0
        (rejected,) = res.rejections
        assert rejected.kind == "exemplar_labels_length"
        assert "storage.max_exemplar_labels_length" in rejected.reason
        assert rejected.timestamp == 2000
        kept = store.exemplars([eq("__name__", "m")], *ALL)
        assert [e.timestamp for _, exs in kept for e in exs] == [1000]
    finally:
        store.close()


def test_one_append_returns_a_bounded_list_of_rejections(tmp_path: Path) -> None:
    store = _open(tmp_path)
    try:
        store.append([batch(lbl(i=str(i)), [10_000], [1.0]) for i in range(1000)])
        res = store.append([batch(lbl(i=str(i)), [5_000], [1.0]) for i in range(1000)])
        assert len(res.rejections) == DETAILED_REJECTIONS + 1
        summary = res.rejections[-1]
        assert summary.kind == "out_of_order" and summary.count == 1000 - DETAILED_REJECTIONS
        assert sum(r.count for r in res.rejections) == 1000
        assert store.stats().samples_rejected == 1000
    finally:
        store.close()
