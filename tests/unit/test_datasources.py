"""The publication rules as pure functions, including properties over random histories."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from datasources import GrafanaAnswer, UidRecord, is_complete, next_record, waiting_for


def ans(rel: int, guid: str | None, units: dict[int, str]) -> GrafanaAnswer:
    return GrafanaAnswer(rel, f"grafana-{rel}", guid, units)


def test_complete_set_is_published_sorted_by_uid():
    record = next_record(UidRecord(), [ans(1, "g", {1: "b", 0: "c", 2: "a"})], {0, 1, 2}, 3)
    assert [e["uid"] for e in record.entries()] == ["a", "b", "c"]
    assert {e["grafana_uid"] for e in record.entries()} == {"g"}


def test_incomplete_set_publishes_nothing_first():
    record = next_record(UidRecord(), [ans(1, "g", {0: "a"})], {0, 1}, 2)
    assert record.entries() == []
    assert record.grafanas["g"].uids == {0: "a"}


def test_units_beyond_live_ones_are_ignored():
    record = next_record(UidRecord(), [ans(1, "g", {0: "a", 7: "z"})], {0}, 1)
    assert record.entries() == [{"type": "prometheus", "uid": "a", "grafana_uid": "g"}]


def test_no_answer_keeps_the_previous_record_of_that_relation_only():
    before = next_record(UidRecord(), [ans(1, "g", {0: "a"}), ans(2, "h", {0: "b"})], {0}, 1)
    after = next_record(before, [ans(1, None, {}), ans(2, "h", {0: "b"})], {0}, 1)
    assert after == before
    dropped = next_record(before, [ans(2, "h", {0: "b"})], {0}, 1)  # relation 1 broken
    assert set(dropped.published) == {"h"}


def test_record_round_trips_through_json():
    record = next_record(UidRecord(), [ans(3, "g", {0: "a", 1: "b"})], {0, 1}, 2)
    assert UidRecord.from_json(record.to_json()) == record


def test_unreadable_record_is_empty():
    assert UidRecord.from_json('{"grafanas": 1}') == UidRecord()
    assert UidRecord.from_json("nope") == UidRecord()


def test_waiting_lists_missing_units_per_relation():
    answers = [ans(1, "g", {0: "a"}), ans(2, None, {})]
    record = next_record(UidRecord(), answers, {0, 1}, 2)
    assert [(w.app, w.missing_units) for w in waiting_for(record, answers, {0, 1})] == [
        ("grafana-1", [1]),
        ("grafana-2", [0, 1]),
    ]


units = st.frozensets(st.integers(0, 5), min_size=1)


@settings(max_examples=150, deadline=None)
@given(
    steps=st.lists(
        st.tuples(units, st.integers(1, 6), st.dictionaries(st.integers(0, 6), st.just(1))),
        min_size=1,
        max_size=8,
    )
)
def test_published_entries_are_always_a_subset_of_a_once_complete_set(steps):
    """Whatever happens, only live units with a UID from a complete set are published."""
    record = UidRecord()
    ever_complete: set[int] = set()
    for live, planned, answered in steps:
        uids = {n: f"uid{n}" for n in answered}
        record = next_record(record, [ans(1, "g", uids)], set(live), planned)
        if is_complete({n: u for n, u in uids.items() if n in live}, set(live), planned):
            ever_complete |= set(live)
            assert {e["uid"] for e in record.entries()} == {f"uid{n}" for n in live}
        published = {int(e["uid"][3:]) for e in record.entries()}
        assert published <= set(live) & ever_complete
        entries = record.entries()
        assert entries == sorted(entries, key=lambda e: e["uid"])
