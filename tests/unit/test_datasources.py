"""The publication rules as pure functions, including properties over random histories."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

import exchange
from datasources import GrafanaAnswer, UidRecord, next_record, waiting_for


def ans(rel: int, guid: str | None, units: dict[int, str]) -> GrafanaAnswer:
    return GrafanaAnswer(rel, f"grafana-{rel}", guid, units)


def test_complete_set_is_published_sorted_by_uid():
    record = next_record(UidRecord(), [ans(1, "g", {1: "b", 0: "c", 2: "a"})], {0, 1, 2}, 3)
    assert [e["uid"] for e in exchange.entries(record)] == ["a", "b", "c"]
    assert {e["grafana_uid"] for e in exchange.entries(record)} == {"g"}


def test_incomplete_set_publishes_nothing_first():
    record = next_record(UidRecord(), [ans(1, "g", {0: "a"})], {0, 1}, 2)
    assert exchange.entries(record) == []
    assert record.grafanas["g"].uids == {0: "a"}


def test_units_beyond_live_ones_are_ignored():
    record = next_record(UidRecord(), [ans(1, "g", {0: "a", 7: "z"})], {0}, 1)
    assert exchange.entries(record) == [{"type": "prometheus", "uid": "a", "grafana_uid": "g"}]


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
    """Whatever happens, only units with a UID from a complete set are published, and each is
    either live or still listed by Grafana (a lagging peer view must not drop it)."""
    record = UidRecord()
    ever_complete: set[int] = set()
    for live, planned, answered in steps:
        uids = {n: f"uid{n}" for n in answered}
        before = {int(e["uid"][3:]) for e in exchange.entries(record)}
        record = next_record(record, [ans(1, "g", uids)], set(live), planned)
        required = set(live) | (before & set(uids))
        published = {int(e["uid"][3:]) for e in exchange.entries(record)}
        if len(required) >= planned and required <= set(uids):
            ever_complete |= required
            assert published == required
        else:
            assert published == before & (set(live) | set(uids))  # the kept set
        assert published <= ever_complete & (set(live) | set(uids))
        entries = exchange.entries(record)
        assert entries == sorted(entries, key=lambda e: e["uid"])


def test_a_unit_the_leader_has_not_seen_join_stays_published():
    complete = next_record(UidRecord(), [ans(1, "g", {0: "a", 1: "b", 2: "c"})], {0, 1, 2}, 3)
    # A new leader that has not run relation-joined for unit 2 yet: its view is {0, 1}.
    lagging = next_record(complete, [ans(1, "g", {0: "a", 1: "b", 2: "c"})], {0, 1}, 3)
    assert lagging.published == complete.published
    # Same when the departing old leader (0) still counts and makes the view look complete.
    handover = next_record(complete, [ans(1, "g", {0: "a", 1: "b", 2: "c"})], {0, 1}, 2)
    assert handover.published == complete.published


def test_a_departure_seen_once_is_remembered_while_grafana_lists_the_unit():
    uids = {0: "a", 1: "b", 2: "c"}
    complete = next_record(UidRecord(), [ans(1, "g", uids)], {0, 1, 2}, 3)
    departed = next_record(complete, [ans(1, "g", uids)], {0, 1}, 2, departing=[2])
    assert departed.published == {"g": {0: "a", 1: "b"}}
    assert departed.departed == {2}
    assert UidRecord.from_json(departed.to_json()) == departed
    # Another leader still sees unit 2 in its peer view: the departure is not undone.
    other = next_record(departed, [ans(1, "g", uids)], {0, 1, 2}, 2)
    assert other.published == {"g": {0: "a", 1: "b"}}
    # Once Grafana forgets unit 2, so does the record.
    forgotten = next_record(other, [ans(1, "g", {0: "a", 1: "b"})], {0, 1}, 2)
    assert forgotten.departed == frozenset()
    assert forgotten.published == {"g": {0: "a", 1: "b"}}


def test_a_departure_does_not_complete_the_set_of_a_grafana_that_is_not_answering():
    """Found by test_charm_random: Grafana gave UIDs to units 0 and 1 of three, then its data
    went bad; unit 2 departed. What it said before is kept, but only an answer now can make
    a set complete and published (SPEC §5: bad remote data changes nothing)."""
    before = next_record(UidRecord(), [ans(1, "g", {0: "u0", 1: "u1"})], {0, 1, 2}, 3)
    assert exchange.entries(before) == []
    after = next_record(before, [ans(1, None, {})], {0, 1}, 2, departing=[2])
    assert exchange.entries(after) == []
    assert after.grafanas["g"].uids == {0: "u0", 1: "u1"}  # kept for when it answers again
    answered = next_record(after, [ans(1, "g", {0: "u0", 1: "u1"})], {0, 1}, 2)
    assert [e["uid"] for e in exchange.entries(answered)] == ["u0", "u1"]
