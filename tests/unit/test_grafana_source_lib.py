"""Our grafana_source library, both sides, driven by ops.testing with small test charms."""

from __future__ import annotations

import dataclasses
import json

import ops
import pytest
from ops import testing

from charms.grafana_agent_bridge.v0.grafana_source import (
    GrafanaSourceConsumer,
    GrafanaSourceProvider,
    InvalidRemoteDataError,
    parse_requirer_app_data,
    unit_number,
)

GRAFANA_META = {
    "name": "grafana",
    "requires": {"grafana-source": {"interface": "grafana_datasource"}},
    "peers": {"grafana": {"interface": "grafana_peers"}},
}


class GrafanaCharm(ops.CharmBase):
    def __init__(self, framework: ops.Framework):
        super().__init__(framework)
        self.consumer = GrafanaSourceConsumer(self, grafana_base_url="http://grafana:3000")
        self.seen: list[str] = []
        framework.observe(self.consumer.on.sources_changed, self._on_sources)
        framework.observe(self.consumer.on.sources_to_delete_changed, self._on_delete)

    def _on_sources(self, _: ops.EventBase) -> None:
        self.seen.append("sources")

    def _on_delete(self, _: ops.EventBase) -> None:
        self.seen.append("delete")


@pytest.fixture
def gctx() -> testing.Context[GrafanaCharm]:
    return testing.Context(GrafanaCharm, meta=GRAFANA_META, app_name="grafana", unit_id=2)


def provider_relation(units: dict[int, str], **source) -> testing.Relation:
    data = {"model": "m", "model_uuid": "u-1", "application": "bridge", "type": "prometheus"}
    data.update(source)
    return testing.Relation(
        "grafana-source",
        remote_app_name="bridge",
        remote_app_data={"grafana_source_data": json.dumps(data)},
        remote_units_data={n: {"grafana_source_host": host} for n, host in units.items()},
    )


def run(gctx, event, state):
    with gctx(event, state) as mgr:
        out = mgr.run()
        return out, mgr.charm


def test_unit_number():
    assert unit_number("app/3") == 3
    assert unit_number("remote-abc/12") == 12
    for bad in ("app", "app/", "/3", "app/x", "app/-1"):
        assert unit_number(bad) is None


def test_consumer_names_sources_and_answers_with_uids(gctx):
    rel = provider_relation({0: "http://10.0.0.1:9099", 42: "10.0.0.2:9099", 7: ""})
    state = testing.State(leader=True, relations={rel, testing.PeerRelation("grafana")})
    out, charm = run(gctx, gctx.on.relation_changed(rel, remote_unit=0), state)
    answer = out.get_relation(rel.id).local_app_data
    assert json.loads(answer["datasource_uids"]) == {
        "bridge/0": "juju_m_u-1_bridge_0",
        "bridge/42": "juju_m_u-1_bridge_42",
    }
    assert answer["grafana_uid"] == f"juju_{out.model.name}_{out.model.uuid}_grafana_2"
    assert answer["grafana_base_url"] == "http://grafana:3000"
    assert [s["url"] for s in charm.consumer.sources] == [
        "http://10.0.0.1:9099",
        "http://10.0.0.2:9099",
    ]
    assert charm.seen == ["sources"]


def test_consumer_keeps_extra_fields_for_provisioning(gctx):
    rel = provider_relation({0: "h:1"}, extra_fields={"httpMethod": "POST"})
    state = testing.State(leader=True, relations={rel, testing.PeerRelation("grafana")})
    _, charm = run(gctx, gctx.on.relation_changed(rel, remote_unit=0), state)
    assert charm.consumer.sources[0]["extra_fields"] == {"httpMethod": "POST"}


@pytest.mark.parametrize(
    "remote_app_data",
    [{}, {"foo": "bar"}, {"grafana_source_data": "{"}, {"grafana_source_data": '{"type": 1}'}],
)
def test_consumer_writes_nothing_on_missing_or_invalid_data(gctx, remote_app_data):
    rel = testing.Relation(
        "grafana-source", remote_app_data=remote_app_data, remote_units_data={0: {"baz": "q"}}
    )
    peer = testing.PeerRelation("grafana")
    out, charm = run(
        gctx,
        gctx.on.relation_changed(rel, remote_unit=0),
        testing.State(leader=True, relations={rel, peer}),
    )
    assert dict(out.get_relation(rel.id).local_app_data) == {}
    assert charm.consumer.sources == []


def test_consumer_keeps_good_sources_when_data_turns_to_garbage(gctx):
    rel = provider_relation({0: "h:1"})
    state = testing.State(leader=True, relations={rel, testing.PeerRelation("grafana")})
    out, _ = run(gctx, gctx.on.relation_changed(rel, remote_unit=0), state)
    bad = out.get_relation(rel.id)
    bad = dataclasses.replace(bad, remote_app_data={"grafana_source_data": "garbage"})
    state2 = dataclasses.replace(
        out,
        relations={
            bad,
            out.get_relation(next(r.id for r in out.relations if r.endpoint == "grafana")),
        },
    )
    out2, charm = run(gctx, gctx.on.relation_changed(bad, remote_unit=0), state2)
    assert [s["source_name"] for s in charm.consumer.sources] == ["juju_m_u-1_bridge_0"]
    assert out2.get_relation(rel.id).local_app_data == out.get_relation(rel.id).local_app_data


def test_consumer_departure_moves_the_source_to_delete(gctx):
    rel = provider_relation({0: "h:1", 1: "h:2"})
    state = testing.State(leader=True, relations={rel, testing.PeerRelation("grafana")})
    out, _ = run(gctx, gctx.on.relation_changed(rel, remote_unit=0), state)
    out2, charm = run(
        gctx,
        gctx.on.relation_departed(out.get_relation(rel.id), remote_unit=1, departing_unit=1),
        out,
    )
    assert charm.consumer.sources_to_delete == ["juju_m_u-1_bridge_1"]
    assert json.loads(out2.get_relation(rel.id).local_app_data["datasource_uids"]) == {
        "bridge/0": "juju_m_u-1_bridge_0"
    }
    assert charm.seen == ["sources", "delete"]
    # The unit comes back (same number): it is no longer to be deleted.
    back = dataclasses.replace(
        out2.get_relation(rel.id),
        remote_units_data={0: {"grafana_source_host": "h:1"}, 1: {"grafana_source_host": "h:2"}},
    )
    relations = {back} | {r for r in out2.relations if r.id != rel.id}
    _, charm = run(
        gctx,
        gctx.on.relation_changed(back, remote_unit=1),
        dataclasses.replace(out2, relations=relations),
    )
    assert charm.consumer.sources_to_delete == []


def test_consumer_broken_relation_deletes_all_its_sources(gctx):
    rel = provider_relation({0: "h:1", 1: "h:2"})
    state = testing.State(leader=True, relations={rel, testing.PeerRelation("grafana")})
    out, _ = run(gctx, gctx.on.relation_changed(rel, remote_unit=0), state)
    _, charm = run(gctx, gctx.on.relation_broken(out.get_relation(rel.id)), out)
    assert charm.consumer.sources == []
    assert charm.consumer.sources_to_delete == ["juju_m_u-1_bridge_0", "juju_m_u-1_bridge_1"]


def test_consumer_settled_state_writes_nothing(gctx):
    rel = provider_relation({0: "h:1"})
    state = testing.State(leader=True, relations={rel, testing.PeerRelation("grafana")})
    out, _ = run(gctx, gctx.on.relation_changed(rel, remote_unit=0), state)
    again, charm = run(
        gctx, gctx.on.relation_changed(out.get_relation(rel.id), remote_unit=0), out
    )
    assert again.relations == out.relations
    assert charm.seen == []


def test_consumer_non_leader_only_reads(gctx):
    rel = provider_relation({0: "h:1"})
    peer = testing.PeerRelation(
        "grafana",
        local_app_data={"sources": json.dumps({"1": [{"source_name": "x", "unit": "b/0"}]})},
    )
    out, charm = run(
        gctx, gctx.on.relation_changed(peer, remote_unit=0), testing.State(relations={rel, peer})
    )
    assert dict(out.get_relation(rel.id).local_app_data) == {}
    assert [s["source_name"] for s in charm.consumer.sources] == ["x"]
    assert charm.seen == ["sources"]


# -- provider ---------------------------------------------------------------------------------


class SourceCharm(ops.CharmBase):
    def __init__(self, framework: ops.Framework):
        super().__init__(framework)
        self.provider = GrafanaSourceProvider(self, "prometheus")
        framework.observe(self.on.update_status, self._on_update)

    def _on_update(self, _: ops.EventBase) -> None:
        for relation in self.provider.relations:
            url = self.provider.ingress_url(relation, 9099)
            assert url is not None
            self.provider.update_source(relation, url=url, extra_fields={"a": 1})


SOURCE_META = {"name": "src", "provides": {"grafana-source": {"interface": "grafana_datasource"}}}


def test_provider_reads_grafana_answers():
    ctx = testing.Context(SourceCharm, meta=SOURCE_META)
    rel = testing.Relation(
        "grafana-source",
        remote_app_data={
            "grafana_uid": "g1",
            "datasource_uids": json.dumps({"src/0": "ds0", "remote-x/3": "ds3"}),
            "grafana_base_url": "http://g:3000",
        },
    )
    with ctx(ctx.on.update_status(), testing.State(leader=True, relations={rel})) as mgr:
        out = mgr.run()
        data = mgr.charm.provider.get_source_data()["g1"]
        assert data.uids_by_unit_number == {0: "ds0", 3: "ds3"}
        assert data.external_url == "http://g:3000"
        assert mgr.charm.provider.get_source_uids() == {
            "g1": {"src/0": "ds0", "remote-x/3": "ds3"}
        }
    written = json.loads(out.get_relation(rel.id).local_app_data["grafana_source_data"])
    assert written["extra_fields"] == {"a": 1}
    assert set(written) == {
        "model",
        "model_uuid",
        "application",
        "type",
        "extra_fields",
        "secure_extra_fields",
    }


@pytest.mark.parametrize(
    "bag",
    [
        {"datasource_uids": "{}"},
        {"grafana_uid": "g", "datasource_uids": "{x"},
        {"grafana_uid": "g", "datasource_uids": '{"a/0": 1}'},
        {"grafana_uid": "g", "datasource_uids": '{"nounit": "x"}'},
        {"grafana_uid": "g", "datasource_uids": '["a/0"]'},
    ],
)
def test_invalid_answers_are_rejected(bag):
    with pytest.raises(InvalidRemoteDataError):
        parse_requirer_app_data(bag)


def test_no_answer_is_none():
    assert parse_requirer_app_data({}) is None
    assert parse_requirer_app_data({"grafana_uid": "g"}).datasource_uids == {}


def test_provider_rejects_a_wrong_endpoint():
    class Wrong(ops.CharmBase):
        def __init__(self, framework: ops.Framework):
            super().__init__(framework)
            GrafanaSourceProvider(self, "prometheus", relation_name="nope")

    ctx = testing.Context(Wrong, meta=SOURCE_META)
    with pytest.raises(testing.errors.UncaughtCharmError):
        ctx.run(ctx.on.update_status(), testing.State())


def test_consumer_new_leader_answers_under_its_own_grafana_uid():
    rel = provider_relation({0: "h:1"})
    state = testing.State(leader=True, relations={rel, testing.PeerRelation("grafana")})
    ctx2 = testing.Context(GrafanaCharm, meta=GRAFANA_META, app_name="grafana", unit_id=2)
    out, _ = run(ctx2, ctx2.on.relation_changed(rel, remote_unit=0), state)
    assert out.get_relation(rel.id).local_app_data["grafana_uid"].endswith("_grafana_2")

    ctx5 = testing.Context(GrafanaCharm, meta=GRAFANA_META, app_name="grafana", unit_id=5)
    out5, charm = run(ctx5, ctx5.on.leader_elected(), out)
    answer = out5.get_relation(rel.id).local_app_data
    assert answer["grafana_uid"].endswith("_grafana_5")
    assert answer["datasource_uids"] == out.get_relation(rel.id).local_app_data["datasource_uids"]
    assert charm.seen == []  # the sources themselves did not change
