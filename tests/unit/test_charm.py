"""The charm's datasource lifecycle, end to end through ops.testing."""

from __future__ import annotations

import dataclasses
import json

import pytest
from charm_builders import (
    APP,
    Writes,
    answer,
    databags,
    ds_uid,
    exchange_out,
    grafana,
    peers,
    replace_relation,
    settle,
    source_data,
)
from ops import testing

from charm import GrafanaAgentBridgeCharm


def entries(grafana_app: str, grafana_uid: str, units: list[int]) -> list[dict[str, str]]:
    return [
        {"type": "prometheus", "uid": ds_uid(grafana_app, n), "grafana_uid": grafana_uid}
        for n in units
    ]


def by_uid(items: list[dict[str, str]]) -> list[dict[str, str]]:
    return sorted(items, key=lambda e: e["uid"])


# -- registration ---------------------------------------------------------------------------


def test_each_unit_advertises_its_ingress_address_and_port(ctx):
    source = grafana("grafana", None)
    network = testing.Network("grafana-source", ingress_addresses=["10.1.2.3"])
    state = testing.State(relations={source, peers()}, networks={network}, leader=False)
    out = ctx.run(ctx.on.relation_joined(source, remote_unit=0), state)
    rel = out.get_relation(source.id)
    assert rel.local_unit_data["grafana_source_host"] == "http://10.1.2.3:9099"
    assert "grafana_source_data" not in rel.local_app_data  # non-leader writes no app data


def test_ipv6_ingress_address_is_bracketed(ctx):
    source = grafana("grafana", None)
    network = testing.Network("grafana-source", ingress_addresses=["fd00::7"])
    state = testing.State(relations={source, peers()}, networks={network}, config={"port": 1234})
    out = ctx.run(ctx.on.update_status(), state)
    assert out.get_relation(source.id).local_unit_data["grafana_source_host"] == (
        "http://[fd00::7]:1234"
    )


def test_datasource_url_config_overrides_the_address(ctx):
    source = grafana("grafana", None)
    state = testing.State(
        relations={source, peers()},
        config={"datasource-url": "https://bridge-0.example.com:8443/"},
    )
    out = ctx.run(ctx.on.config_changed(), state)
    host = out.get_relation(source.id).local_unit_data["grafana_source_host"]
    assert host == "https://bridge-0.example.com:8443"


def test_datasource_url_placeholder_keeps_units_distinct():
    ctx1 = testing.Context(GrafanaAgentBridgeCharm, app_name=APP, unit_id=1)
    source = grafana("grafana", None)
    state = testing.State(
        relations={source, peers(0)}, config={"datasource-url": "http://b{unit}.lan:9099"}
    )
    out = ctx1.run(ctx1.on.config_changed(), state)
    host = out.get_relation(source.id).local_unit_data["grafana_source_host"]
    assert host == "http://b1.lan:9099"


def test_leader_describes_the_datasource_with_null_extras_until_grafana_identifies_itself(ctx):
    source = grafana("grafana", None)
    state = testing.State(relations={source, peers()}, leader=True)
    out = ctx.run(ctx.on.relation_joined(source, remote_unit=0), state)
    data = source_data(out, source)
    assert data["type"] == "prometheus"
    assert data["application"] == APP
    assert data["model"] == out.model.name and data["model_uuid"] == out.model.uuid
    # Both keys present and null: the jsonData depends on which Grafana this is.
    assert data["extra_fields"] is None
    assert data["secure_extra_fields"] is None


def test_leader_describes_a_prometheus_datasource_with_the_json_data(ctx):
    source = grafana("grafana", "g-1", [0])
    state = testing.State(relations={source, peers()}, leader=True, config={"query-auth": False})
    out = ctx.run(ctx.on.relation_changed(source, remote_unit=0), state)
    data = source_data(out, source)
    assert data["type"] == "prometheus"
    assert data["extra_fields"] == {
        "httpMethod": "POST",
        "timeInterval": "1m",
        "prometheusType": "Prometheus",
        "prometheusVersion": "2.53.0",
        "manageAlerts": False,
    }
    assert data["secure_extra_fields"] is None


def test_invalid_config_blocks_and_changes_nothing(ctx, writes: Writes):
    source = grafana("grafana", None)
    good = settle(ctx, testing.State(relations={source, peers()}, leader=True))
    writes.clear()
    bad = dataclasses.replace(good, config={"port": 0, "datasource-url": "ftp://x"})
    out = ctx.run(ctx.on.config_changed(), bad)
    assert databags(out) == databags(good)
    assert writes.calls == []
    assert isinstance(out.unit_status, testing.BlockedStatus)
    assert "port" in out.unit_status.message


def test_port_change_updates_the_advertised_url(ctx):
    source = grafana("grafana", None)
    good = settle(ctx, testing.State(relations={source, peers()}, leader=True))
    out = ctx.run(ctx.on.config_changed(), dataclasses.replace(good, config={"port": 9100}))
    host = out.get_relation(source.id).local_unit_data["grafana_source_host"]
    assert host.endswith(":9100")


# -- UID record and bulk publication ----------------------------------------------------------


def test_the_acceptance_scenario_two_grafanas_three_units(ctx, writes: Writes):
    a = grafana("grafana-a", "gA", [0, 1, 2])
    b = grafana("grafana-b", "gB", [0, 2])
    ex = testing.Relation("send-datasource", remote_app_name="tempo")
    state = testing.State(relations={a, b, ex, peers(1, 2)}, leader=True, planned_units=3)
    out = settle(ctx, state)
    assert exchange_out(out, ex) == by_uid(entries("grafana-a", "gA", [0, 1, 2]))
    assert isinstance(out.unit_status, testing.WaitingStatus)
    assert "grafana-b for unit 1" in out.unit_status.message

    writes.clear()
    b_answered = answer(out.get_relation(b.id), "gB", [0, 1, 2])
    final = ctx.run(
        ctx.on.relation_changed(b_answered, remote_unit=0), replace_relation(out, b, b_answered)
    )
    expected = by_uid(
        entries("grafana-a", "gA", [0, 1, 2]) + entries("grafana-b", "gB", [0, 1, 2])
    )
    assert exchange_out(final, ex) == expected
    # A single change: one relation-set on the exchange relation, holding all six entries.
    assert writes.to(ex) == [
        {"datasources": final.get_relation(ex.id).local_app_data["datasources"]}
    ]
    assert final.unit_status == testing.ActiveStatus("6 datasource(s) published for 2 Grafana(s)")


def test_the_exchange_databag_is_cosl_compact_json_sorted_by_uid(ctx):
    a = grafana("grafana-a", "gA", [2, 0, 1])
    ex = testing.Relation("receive-datasource", remote_app_name="mimir")
    out = settle(ctx, testing.State(relations={a, ex, peers(1, 2)}, leader=True, planned_units=3))
    raw = out.get_relation(ex.id).local_app_data["datasources"]
    assert raw.startswith('[{"type":"prometheus","uid":"juju_m_grafana-a_grafana-agent-bridge_0"')
    assert [e["uid"] for e in json.loads(raw)] == sorted(e["uid"] for e in json.loads(raw))
    assert set(out.get_relation(ex.id).local_app_data) == {"datasources"}


def test_empty_list_until_a_grafana_knows_every_unit(ctx):
    a = grafana("grafana-a", "gA", [0, 2])
    ex = testing.Relation("send-datasource")
    out = settle(ctx, testing.State(relations={a, ex, peers(1, 2)}, leader=True, planned_units=3))
    assert exchange_out(out, ex) == []
    assert out.unit_status == testing.WaitingStatus(
        "waiting for UIDs from grafana grafana-a for unit 1"
    )


def test_a_grafana_that_has_not_answered_is_named_in_the_status(ctx):
    a = grafana("grafana-a", None)
    out = settle(ctx, testing.State(relations={a, peers(1)}, leader=False, planned_units=2))
    assert out.unit_status == testing.WaitingStatus(
        "waiting for UIDs from grafana grafana-a for units 0, 1"
    )


def test_planned_units_not_yet_in_the_peer_relation_hold_publication(ctx):
    a = grafana("grafana-a", "gA", [0, 1])
    ex = testing.Relation("send-datasource")
    out = settle(ctx, testing.State(relations={a, ex, peers(1)}, leader=True, planned_units=3))
    assert exchange_out(out, ex) == []
    assert out.unit_status == testing.WaitingStatus("waiting for 1 planned unit(s) to join")


def test_scale_up_keeps_the_last_complete_set_until_the_new_one_is_complete(ctx):
    a = grafana("grafana-a", "gA", [0, 1, 2])
    ex = testing.Relation("send-datasource")
    settled = settle(
        ctx, testing.State(relations={a, ex, peers(1, 2)}, leader=True, planned_units=3)
    )
    grown_peers = dataclasses.replace(settled.get_relation(settled_peer_id(settled)))
    grown_peers = dataclasses.replace(grown_peers, peers_data={1: {}, 2: {}, 3: {}})
    grown = dataclasses.replace(
        replace_relation(settled, grown_peers, grown_peers), planned_units=4
    )
    out = ctx.run(ctx.on.relation_joined(grown_peers, remote_unit=3), grown)
    assert exchange_out(out, ex) == by_uid(entries("grafana-a", "gA", [0, 1, 2]))
    assert "for unit 3" in out.unit_status.message

    a_all = answer(out.get_relation(a.id), "gA", [0, 1, 2, 3])
    final = ctx.run(ctx.on.relation_changed(a_all, remote_unit=0), replace_relation(out, a, a_all))
    assert exchange_out(final, ex) == by_uid(entries("grafana-a", "gA", [0, 1, 2, 3]))


def settled_peer_id(state: testing.State) -> int:
    return next(r.id for r in state.relations if r.endpoint == "peers")


def test_scale_down_drops_the_departed_unit_even_if_grafana_still_lists_it(ctx):
    a = grafana("grafana-a", "gA", [0, 1, 2])
    ex = testing.Relation("send-datasource")
    settled = settle(
        ctx, testing.State(relations={a, ex, peers(1, 2)}, leader=True, planned_units=3)
    )
    peer = settled.get_relation(settled_peer_id(settled))
    shrinking = dataclasses.replace(settled, planned_units=2)
    # Juju still lists unit 2 while its relation-departed runs; Grafana still lists it too.
    out = ctx.run(ctx.on.relation_departed(peer, remote_unit=2, departing_unit=2), shrinking)
    assert exchange_out(out, ex) == by_uid(entries("grafana-a", "gA", [0, 1]))
    record = json.loads(out.get_relation(peer.id).local_app_data["datasource-uids"])
    assert record["grafanas"]["gA"]["uids"] == {
        "0": ds_uid("grafana-a", 0),
        "1": ds_uid("grafana-a", 1),
    }

    # Unit 2 is gone from the peer relation; Grafana may still list it for a while.
    recorded = out.get_relation(peer.id)
    gone = dataclasses.replace(recorded, peers_data={1: {}})
    after = settle(ctx, replace_relation(out, recorded, gone))
    assert exchange_out(after, ex) == by_uid(entries("grafana-a", "gA", [0, 1]))
    assert isinstance(after.unit_status, testing.ActiveStatus)


def test_grafana_leader_change_republishes_under_the_new_grafana_uid(ctx):
    a = grafana("grafana-a", "gA-0", [0, 1])
    ex = testing.Relation("send-datasource")
    settled = settle(ctx, testing.State(relations={a, ex, peers(1)}, leader=True, planned_units=2))
    new_leader = answer(settled.get_relation(a.id), "gA-1", [0, 1])
    out = ctx.run(
        ctx.on.relation_changed(new_leader, remote_unit=1),
        replace_relation(settled, a, new_leader),
    )
    assert exchange_out(out, ex) == by_uid(entries("grafana-a", "gA-1", [0, 1]))
    record = json.loads(out.get_relation(settled_peer_id(out)).local_app_data["datasource-uids"])
    assert set(record["grafanas"]) == {"gA-1"}


def test_cross_model_unit_names_are_matched_by_number(ctx):
    a = grafana("grafana-a", "gA", [0, 1], unit_app="remote-3f2a9c1d0e")
    ex = testing.Relation("send-datasource")
    out = settle(ctx, testing.State(relations={a, ex, peers(1)}, leader=True, planned_units=2))
    assert exchange_out(out, ex) == by_uid(entries("grafana-a", "gA", [0, 1]))


def test_grafana_relation_broken_removes_its_entries(ctx):
    a = grafana("grafana-a", "gA", [0])
    b = grafana("grafana-b", "gB", [0])
    ex = testing.Relation("send-datasource")
    settled = settle(ctx, testing.State(relations={a, b, ex, peers()}, leader=True))
    assert len(exchange_out(settled, ex)) == 2
    out = ctx.run(ctx.on.relation_broken(settled.get_relation(b.id)), settled)
    assert exchange_out(out, ex) == entries("grafana-a", "gA", [0])


def test_the_record_survives_a_leader_change(ctx, writes: Writes):
    a = grafana("grafana-a", "gA", [0, 1])
    ex = testing.Relation("send-datasource")
    settled = settle(ctx, testing.State(relations={a, ex, peers(1)}, leader=True, planned_units=2))
    # Unit 1 becomes leader: it sees the same peer record (app data is shared).
    ctx1 = testing.Context(GrafanaAgentBridgeCharm, app_name=APP, unit_id=1)
    peer = settled.get_relation(settled_peer_id(settled))
    as_unit1 = replace_relation(
        settled,
        peer,
        dataclasses.replace(peer, peers_data={0: {}}, local_unit_data={}),
    )
    writes.clear()
    out = ctx1.run(ctx1.on.leader_elected(), as_unit1)
    assert exchange_out(out, ex) == by_uid(entries("grafana-a", "gA", [0, 1]))
    app_writes = [w for w in writes.calls if w[2]]
    assert app_writes == []  # the new leader has nothing to change


def test_non_leader_reports_status_from_the_record_and_writes_no_app_data(ctx, writes: Writes):
    a = grafana("grafana-a", "gA", [0, 1])
    ex = testing.Relation("send-datasource")
    leader_view = settle(
        ctx, testing.State(relations={a, ex, peers(1)}, leader=True, planned_units=2)
    )
    writes.clear()
    follower = dataclasses.replace(leader_view, leader=False)
    out = ctx.run(ctx.on.update_status(), follower)
    assert [w for w in writes.calls if w[2]] == []
    assert out.unit_status == testing.ActiveStatus("2 datasource(s) published for 1 Grafana(s)")


def test_without_peer_relation_the_exchange_gets_an_empty_list_but_nothing_is_overwritten(ctx):
    fresh = testing.Relation("send-datasource")
    published = testing.Relation(
        "receive-datasource",
        local_app_data={"datasources": json.dumps(entries("g", "gA", [0]))},
    )
    out = ctx.run(ctx.on.install(), testing.State(relations={fresh, published}, leader=True))
    assert exchange_out(out, fresh) == []
    assert exchange_out(out, published) == entries("g", "gA", [0])
    assert out.unit_status == testing.WaitingStatus("waiting for the peer relation")


# -- correlation ------------------------------------------------------------------------------


def tempo(grafana_uids: dict[str, str]) -> testing.Relation:
    items = [{"type": "tempo", "uid": uid, "grafana_uid": g} for g, uid in grafana_uids.items()]
    items.append({"type": "prometheus", "uid": "mimir-ds", "grafana_uid": "gA"})
    return testing.Relation(
        "send-datasource",
        remote_app_name="tempo",
        remote_app_data={"datasources": json.dumps(items)},
    )


def test_exemplars_link_to_the_tempo_of_the_same_grafana_only(ctx):
    a = grafana("grafana-a", "gA", [0])
    b = grafana("grafana-b", "gB", [0])
    t = tempo({"gA": "tempo-in-a", "gOther": "tempo-elsewhere"})
    out = settle(
        ctx,
        testing.State(
            relations={a, b, t, peers()},
            leader=True,
            config={"exemplar-trace-id-label": "traceID"},
        ),
    )
    assert source_data(out, a)["extra_fields"]["exemplarTraceIdDestinations"] == [
        {"datasourceUid": "tempo-in-a", "name": "traceID"}
    ]
    assert "exemplarTraceIdDestinations" not in source_data(out, b)["extra_fields"]


def test_a_tempo_known_before_grafana_answers_is_linked_once_it_does(ctx):
    a = grafana("grafana-a", None)
    t = testing.Relation(
        "receive-datasource",
        remote_app_name="tempo",
        remote_app_data={
            "datasources": json.dumps([{"type": "tempo", "uid": "t", "grafana_uid": "gA"}])
        },
    )
    out = settle(ctx, testing.State(relations={a, t, peers()}, leader=True))
    assert source_data(out, a)["extra_fields"] is None  # which Grafana is it? not known yet
    a2 = answer(out.get_relation(a.id), "gA", [0])
    out = ctx.run(ctx.on.relation_changed(a2, remote_unit=0), replace_relation(out, a, a2))
    assert source_data(out, a)["extra_fields"]["exemplarTraceIdDestinations"] == [
        {"datasourceUid": "t", "name": "trace_id"}
    ]


RECEIVERS = {
    "receivers": json.dumps(
        [{"protocol": {"name": "otlp_http", "type": "http"}, "url": "http://tempo:4318"}]
    )
}


# -- settled state: no writes -----------------------------------------------------------------


def _settled_world(ctx, leader: bool):
    a = grafana("grafana-a", "gA", [0, 1, 2])
    b = grafana("grafana-b", "gB", [0, 2])
    t = tempo({"gA": "tempo-a"})
    r = testing.Relation("receive-datasource", remote_app_name="mimir")
    tracing = testing.Relation("charm-tracing", remote_app_name="tempo", remote_app_data=RECEIVERS)
    state = testing.State(
        relations={a, b, t, r, tracing, peers(1, 2)}, leader=True, planned_units=3
    )
    settled = settle(ctx, state)
    return dataclasses.replace(settled, leader=leader)


@pytest.mark.parametrize("leader", [True, False])
def test_rerunning_any_event_on_a_settled_state_writes_nothing(ctx, writes: Writes, leader):
    settled = _settled_world(ctx, leader)
    relations = sorted(settled.relations, key=lambda r: r.id)
    events = [
        ctx.on.update_status(),
        ctx.on.config_changed(),
        ctx.on.start(),
        ctx.on.upgrade_charm(),
        ctx.on.leader_elected() if leader else ctx.on.update_status(),
    ]
    for rel in relations:
        if isinstance(rel, testing.PeerRelation):
            events += [ctx.on.relation_changed(rel, remote_unit=1)]
        else:
            events += [
                ctx.on.relation_created(rel),
                ctx.on.relation_joined(rel, remote_unit=0),
                ctx.on.relation_changed(rel, remote_unit=0),
            ]
    tracing_id = next(r.id for r in relations if r.endpoint == "charm-tracing")
    for event in events:
        writes.clear()
        out = ctx.run(event, settled)
        # ops.tracing re-sets its (unchanged) request on every leader hook; Juju drops an
        # identical value without waking the remote side. Everything of ours: not even a call.
        assert [w for w in writes.calls if w[0] != tracing_id] == [], event
        assert databags(out) == databags(settled), event


# -- garbage ----------------------------------------------------------------------------------

GARBAGE = [
    {"grafana_uid": "gA", "datasource_uids": "{not json"},
    {"grafana_uid": "gA", "datasource_uids": "[1, 2]"},
    {"grafana_uid": "gA", "datasource_uids": json.dumps({"grafana-agent-bridge/0": 7})},
    {"grafana_uid": "gA", "datasource_uids": json.dumps({"nonsense": "x"})},
    {"datasource_uids": json.dumps({"grafana-agent-bridge/0": "x"})},
    {"grafana_uid": "", "datasource_uids": "null"},
    {},
    {"\x00": "\udcff"[:0] + "garbage"},
]


@pytest.mark.parametrize("garbage", GARBAGE)
def test_garbage_from_grafana_never_raises_nor_clears_published_data(ctx, garbage):
    settled = _settled_world(ctx, True)
    a = next(r for r in settled.relations if getattr(r, "remote_app_name", "") == "grafana-a")
    ex_before = {
        r.id: dict(r.local_app_data) for r in settled.relations if r.endpoint != "grafana-source"
    }
    junk = dataclasses.replace(a, remote_app_data=garbage, remote_units_data={0: {"x": "{"}})
    out = ctx.run(ctx.on.relation_changed(junk, remote_unit=0), replace_relation(settled, a, junk))
    ex_after = {
        r.id: dict(r.local_app_data) for r in out.relations if r.endpoint != "grafana-source"
    }
    assert ex_after == ex_before
    assert databags(out) == databags(settled)


@pytest.mark.parametrize(
    "garbage",
    [
        {"datasources": "{oops"},
        {"datasources": json.dumps([{"type": "tempo"}])},
        {"datasources": json.dumps({"type": "tempo", "uid": "u", "grafana_uid": "gA"})},
        {"something": "else"},
    ],
)
def test_garbage_on_the_exchange_is_ignored(ctx, garbage):
    settled = _settled_world(ctx, True)
    t = next(r for r in settled.relations if getattr(r, "remote_app_name", "") == "tempo")
    junk = dataclasses.replace(t, remote_app_data=garbage)
    out = ctx.run(ctx.on.relation_changed(junk, remote_unit=0), replace_relation(settled, t, junk))
    # Not even the exemplar link that came from that databag goes away.
    assert databags(out) == databags(settled)


def test_tempo_withdrawing_its_datasource_removes_the_link(ctx):
    settled = _settled_world(ctx, True)
    a = next(r for r in settled.relations if getattr(r, "remote_app_name", "") == "grafana-a")
    assert "exemplarTraceIdDestinations" in source_data(settled, a)["extra_fields"]
    t = next(r for r in settled.relations if getattr(r, "remote_app_name", "") == "tempo")
    empty = dataclasses.replace(t, remote_app_data={"datasources": "[]"})
    out = ctx.run(
        ctx.on.relation_changed(empty, remote_unit=0), replace_relation(settled, t, empty)
    )
    assert "exemplarTraceIdDestinations" not in source_data(out, a)["extra_fields"]
    gone = ctx.run(ctx.on.relation_broken(t), settled)
    assert "exemplarTraceIdDestinations" not in source_data(gone, a)["extra_fields"]


def test_garbage_in_peer_data_never_raises(ctx):
    settled = _settled_world(ctx, True)
    peer = settled.get_relation(settled_peer_id(settled))
    junk = dataclasses.replace(
        peer, local_app_data={"datasource-uids": "{]"}, peers_data={1: {"a": "{"}, 2: {}}
    )
    out = ctx.run(
        ctx.on.relation_changed(junk, remote_unit=1), replace_relation(settled, peer, junk)
    )
    # The record is rebuilt from what Grafana says; everything complete is published again.
    ex = next(r for r in out.relations if r.endpoint == "receive-datasource")
    assert exchange_out(out, ex) == exchange_out(settled, ex)


# -- actions ----------------------------------------------------------------------------------


def test_list_datasources_shows_each_units_uid_and_publication(ctx):
    settled = _settled_world(ctx, False)
    ctx.run(ctx.on.action("list-datasources"), settled)
    results = ctx.action_results
    assert results is not None
    rows = json.loads(results["datasources"])
    assert {(r["grafana"], r["unit"], r["uid"], r["published"]) for r in rows} == {
        ("grafana-a", f"{APP}/0", ds_uid("grafana-a", 0), True),
        ("grafana-a", f"{APP}/1", ds_uid("grafana-a", 1), True),
        ("grafana-a", f"{APP}/2", ds_uid("grafana-a", 2), True),
        ("grafana-b", f"{APP}/0", ds_uid("grafana-b", 0), False),
        ("grafana-b", f"{APP}/1", "", False),
        ("grafana-b", f"{APP}/2", ds_uid("grafana-b", 2), False),
    }
    assert results["published"] == 3


# -- charm tracing ----------------------------------------------------------------------------


def test_charm_tracing_requests_otlp_http_and_traces_the_reconcile(ctx):
    tracing = testing.Relation("charm-tracing", remote_app_data=RECEIVERS)
    out = ctx.run(
        ctx.on.relation_changed(tracing), testing.State(leader=True, relations={tracing})
    )
    assert json.loads(out.get_relation(tracing.id).local_app_data["receivers"]) == ["otlp_http"]
    assert any(span.name == "ops.main" for span in ctx.trace_data)


def test_a_departure_seen_before_becoming_leader_still_counts(ctx):
    # Unit 0 leads and published {0, 1, 2}; unit 2 is removed. Unit 1 (this one, unit_id=1)
    # runs relation-departed for 2 as a non-leader, then becomes leader before the old leader
    # recorded the departure, while Grafana still lists unit 2.
    ctx1 = testing.Context(GrafanaAgentBridgeCharm, app_name=APP, unit_id=1)
    a = grafana("grafana-a", "gA", [0, 1, 2])
    ex = testing.Relation("send-datasource")
    leader_view = settle(
        ctx, testing.State(relations={a, ex, peers(1, 2)}, leader=True, planned_units=3)
    )
    record = leader_view.get_relation(settled_peer_id(leader_view)).local_app_data
    peer = testing.PeerRelation("peers", local_app_data=dict(record), peers_data={0: {}, 2: {}})
    state = testing.State(relations={a, ex, peer}, leader=False, planned_units=2)
    out = ctx1.run(ctx1.on.relation_departed(peer, remote_unit=2, departing_unit=2), state)
    noted = out.get_relation(peer.id).local_unit_data["departed-units"]
    assert json.loads(noted) == [2]

    after = out.get_relation(peer.id)
    gone = dataclasses.replace(after, peers_data={0: {}})
    promoted = dataclasses.replace(replace_relation(out, after, gone), leader=True)
    elected = ctx1.run(ctx1.on.leader_elected(), promoted)
    assert exchange_out(elected, ex) == by_uid(entries("grafana-a", "gA", [0, 1]))
