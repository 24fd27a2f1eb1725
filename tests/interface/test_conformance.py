"""Every databag we write, in every state the charm goes through, against the v0 schemas.

The interface tester checks one state per test case; these tests drive the real charm (and our
consumer library) through the lifecycle, including garbage from the remote side, and validate
each local databag after each step.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import json
from pathlib import Path
from types import ModuleType

import pytest
from grafana_like import GRAFANA_META, GrafanaLikeCharm
from ops import testing
from pydantic import ValidationError

from charm import GrafanaAgentBridgeCharm

INTERFACES = Path(__file__).parent / "definitions" / "interfaces"
APP = "grafana-agent-bridge"


def _schema(interface: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        f"{interface}_v0_schema", INTERFACES / interface / "v0" / "schema.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


SOURCE = _schema("grafana_datasource")
EXCHANGE = _schema("grafana_datasource_exchange")


def check_source_data(app: dict[str, str], unit: dict[str, str], grafana_known: bool) -> None:
    """The published schema while Grafana is unknown; objects for the extras once it is.

    The published model types both extra fields ``Optional[Json[Any]]`` (a JSON string under
    pydantic v2), while grafana-k8s reads JSON objects: so they are null until the Grafana has
    identified itself, and then validated with only those two fields read as objects.
    """
    data = json.loads(app["grafana_source_data"])
    assert "extra_fields" in data and "secure_extra_fields" in data
    if not grafana_known:
        assert data["extra_fields"] is None and data["secure_extra_fields"] is None
        SOURCE.ProviderSchema.model_validate({"app": app, "unit": unit})
        return
    assert isinstance(data["extra_fields"], dict)
    assert data["secure_extra_fields"] is None or isinstance(data["secure_extra_fields"], dict)
    as_strings = {
        **data,
        "extra_fields": json.dumps(data["extra_fields"]),
        "secure_extra_fields": None
        if data["secure_extra_fields"] is None
        else json.dumps(data["secure_extra_fields"]),
    }
    SOURCE.ProviderSchema.model_validate(
        {"app": {"grafana_source_data": json.dumps(as_strings)}, "unit": unit}
    )


def check_bridge_databags(state: testing.State, leader: bool) -> None:
    for relation in state.relations:
        app, unit = dict(relation.local_app_data), dict(relation.local_unit_data)
        if relation.endpoint == "grafana-source":
            SOURCE.ProviderUnitData.model_validate(unit)
            if leader:
                assert isinstance(relation, testing.Relation)
                remote = dict(relation.remote_app_data)
                check_source_data(app, unit, grafana_known=_grafana_answered(remote))
            else:
                assert app == {}
        elif relation.endpoint in ("send-datasource", "receive-datasource"):
            if not leader:
                assert app == {}
                continue
            parsed = EXCHANGE.ProviderSchema.model_validate({"app": app})
            EXCHANGE.RequirerSchema.model_validate({"app": app})
            assert set(app) == {"datasources"}  # nothing else: cosl's publish() clears the bag
            uids = [ds.uid for ds in parsed.app.datasources]
            assert uids == sorted(uids)


def _grafana_answered(remote: dict[str, str]) -> bool:
    """Whether Grafana identified itself with a valid answer (these states start afresh)."""
    if not remote.get("grafana_uid"):
        return False
    try:
        uids = json.loads(remote.get("datasource_uids", "{}"))
    except ValueError:
        return False
    return isinstance(uids, dict)


def grafana(app: str, grafana_uid: str | None, units: list[int]) -> testing.Relation:
    data = {}
    if grafana_uid:
        data = {
            "grafana_uid": grafana_uid,
            "datasource_uids": json.dumps({f"{APP}/{n}": f"{app}-ds-{n}" for n in units}),
        }
    return testing.Relation("grafana-source", remote_app_name=app, remote_app_data=data)


STATES = {
    "fresh": [grafana("grafana-a", None, [])],
    "partial": [grafana("grafana-a", "gA", [0])],
    "complete": [grafana("grafana-a", "gA", [0, 1])],
    "two grafanas": [grafana("grafana-a", "gA", [0, 1]), grafana("grafana-b", "gB", [1])],
    "garbage": [
        testing.Relation(
            "grafana-source",
            remote_app_data={"grafana_uid": "g", "datasource_uids": "{{"},
            remote_units_data={0: {"grafana_source_host": "\x00{"}},
        )
    ],
}


def exchange_relations() -> list[testing.Relation]:
    tempo = [{"type": "tempo", "uid": "t", "grafana_uid": "gA"}]
    return [
        testing.Relation("send-datasource", remote_app_name="mimir"),
        testing.Relation(
            "receive-datasource",
            remote_app_name="tempo",
            remote_app_data={"datasources": json.dumps(tempo)},
        ),
        testing.Relation("receive-datasource", remote_app_data={"datasources": "nonsense"}),
    ]


@pytest.mark.parametrize("leader", [True, False])
@pytest.mark.parametrize("name", sorted(STATES))
def test_bridge_databags_are_valid_in_every_state(name: str, leader: bool):
    ctx = testing.Context(GrafanaAgentBridgeCharm, app_name=APP)
    relations = [
        *STATES[name],
        *exchange_relations(),
        testing.PeerRelation("peers", peers_data={1: {}}),
    ]
    state = testing.State(leader=leader, relations=relations, planned_units=2)
    for event in (ctx.on.install(), ctx.on.config_changed(), ctx.on.update_status()):
        state = ctx.run(event, state)
        check_bridge_databags(state, leader)


def test_exchange_databag_is_valid_before_the_peer_relation_exists():
    ctx = testing.Context(GrafanaAgentBridgeCharm, app_name=APP)
    state = testing.State(leader=True, relations=exchange_relations())
    check_bridge_databags(ctx.run(ctx.on.install(), state), leader=True)


def test_the_schemas_reject_what_the_interface_forbids():
    with pytest.raises(ValidationError):  # `datasources` must be present
        EXCHANGE.ProviderSchema.model_validate({"app": {}})
    with pytest.raises(ValidationError):  # datasources must be fully specified
        EXCHANGE.ProviderSchema.model_validate({"app": {"datasources": '[{"type": "tempo"}]'}})
    source = {"model": "m", "model_uuid": "u", "application": "a", "type": "t"}
    with pytest.raises(ValidationError):  # the published quirk: an object is not Json[Any]
        SOURCE.ProviderAppData.model_validate(
            {
                "grafana_source_data": json.dumps(
                    {**source, "extra_fields": {"a": 1}, "secure_extra_fields": None}
                )
            }
        )
    with pytest.raises(ValidationError):  # both extra keys are always written
        SOURCE.ProviderAppData.model_validate(
            {
                "grafana_source_data": json.dumps(
                    {"model": "m", "model_uuid": "u", "application": "a", "type": "t"}
                )
            }
        )


# -- the requirer role, with our consumer library ----------------------------------------------


def provider(units: dict[int, str], app_data: dict[str, str] | None = None) -> testing.Relation:
    source = {"model": "m", "model_uuid": "0042", "application": "myapp", "type": "prometheus"}
    return testing.Relation(
        "grafana-source",
        remote_app_name="foo",
        remote_app_data=app_data
        if app_data is not None
        else {"grafana_source_data": json.dumps(source)},
        remote_units_data={n: {"grafana_source_host": h} for n, h in units.items()},
    )


def test_consumer_answer_is_valid_and_keyed_by_remote_unit_names():
    ctx = testing.Context(GrafanaLikeCharm, meta=GRAFANA_META, app_name="grafana")
    rel = provider({0: "somehost:80", 42: "otherhost:80"})
    state = testing.State(leader=True, relations={rel, testing.PeerRelation("grafana")})
    out = ctx.run(ctx.on.relation_changed(rel, remote_unit=0), state)
    app = dict(out.get_relation(rel.id).local_app_data)
    parsed = SOURCE.RequirerSchema.model_validate({"app": app})
    assert parsed.app.datasource_uids == {
        "foo/0": "juju_m_0042_myapp_0",
        "foo/42": "juju_m_0042_myapp_42",
    }


@pytest.mark.parametrize(
    "app_data", [{}, {"foo": "bar"}, {"grafana_source_data": "[]"}, {"grafana_source_data": "{"}]
)
def test_consumer_writes_nothing_for_missing_or_junk_data(app_data):
    ctx = testing.Context(GrafanaLikeCharm, meta=GRAFANA_META, app_name="grafana")
    rel = provider({0: "h:1"}, app_data=app_data)
    state = testing.State(leader=True, relations={rel, testing.PeerRelation("grafana")})
    out = ctx.run(ctx.on.relation_changed(rel, remote_unit=0), state)
    assert dict(out.get_relation(rel.id).local_app_data) == {}


def test_bridge_and_consumer_talk_to_each_other():
    """Wire our provider to our consumer by hand: each side's output is the other's input."""
    bridge = testing.Context(GrafanaAgentBridgeCharm, app_name=APP)
    grafana_ctx = testing.Context(GrafanaLikeCharm, meta=GRAFANA_META, app_name="grafana")
    b_rel = testing.Relation("grafana-source", remote_app_name="grafana")
    b_state = testing.State(leader=True, relations={b_rel, testing.PeerRelation("peers")})
    b_out = bridge.run(bridge.on.relation_joined(b_rel, remote_unit=0), b_state)
    sent = b_out.get_relation(b_rel.id)

    g_rel = testing.Relation(
        "grafana-source",
        remote_app_name=APP,
        remote_app_data=dict(sent.local_app_data),
        remote_units_data={0: dict(sent.local_unit_data)},
    )
    g_state = testing.State(leader=True, relations={g_rel, testing.PeerRelation("grafana")})
    g_out = grafana_ctx.run(grafana_ctx.on.relation_changed(g_rel, remote_unit=0), g_state)
    answer = dict(g_out.get_relation(g_rel.id).local_app_data)

    back = dataclasses.replace(sent, remote_app_data=answer)
    final = bridge.run(
        bridge.on.relation_changed(back, remote_unit=0),
        dataclasses.replace(
            b_out, relations={back} | {r for r in b_out.relations if r.id != back.id}
        ),
    )
    record = json.loads(
        next(r for r in final.relations if r.endpoint == "peers").local_app_data["datasource-uids"]
    )
    (grafana_uid,) = record["published"]
    assert grafana_uid == answer["grafana_uid"]
    assert record["published"][grafana_uid] == {
        "0": f"juju_{b_out.model.name}_{b_out.model.uuid}_{APP}_0"
    }


# -- prometheus_remote_write and tracing, both of our sides ------------------------------------


def _remote_write_world() -> testing.State:
    sender = testing.Relation(
        "receive-remote-write",
        remote_app_name="agent",
        remote_app_data={
            "alert_rules": json.dumps({"groups": [{"name": "g", "rules": [{"alert": "A"}]}]})
        },
        remote_units_data={0: {"ingress-address": "10.0.0.9"}},
    )
    upstream = testing.Relation(
        "send-remote-write",
        remote_app_name="prometheus",
        remote_units_data={0: {"remote_write": json.dumps({"url": "http://p:9090/api/v1/write"})}},
    )
    tracing = testing.Relation("workload-tracing", remote_app_name="tempo")
    return testing.State(
        leader=True, relations={sender, upstream, tracing, testing.PeerRelation("peers")}
    )


@pytest.mark.parametrize("leader", [True, False])
def test_remote_write_and_tracing_databags_follow_the_interfaces(leader: bool):
    from charmlibs.interfaces.tracing import TracingRequirerAppData

    ctx = testing.Context(GrafanaAgentBridgeCharm, app_name=APP)
    state = dataclasses.replace(_remote_write_world(), leader=leader)
    for event in (ctx.on.install(), ctx.on.config_changed(), ctx.on.update_status()):
        state = ctx.run(event, state)
    for relation in state.relations:
        app, unit = dict(relation.local_app_data), dict(relation.local_unit_data)
        mine = {k: v for k, v in unit.items() if k not in testing.Relation("x").local_unit_data}
        if relation.endpoint == "receive-remote-write":
            # provider: each unit's {"url": ...} under `remote_write`; no app data.
            assert set(mine) == {"remote_write"}
            url = json.loads(mine["remote_write"])["url"]
            assert url.startswith("http://") and url.endswith(":9099/api/v1/write")
            assert app == {}
        elif relation.endpoint == "send-remote-write":
            # requirer: the senders' rule groups on the leader; nothing in the unit databag.
            assert mine == {}
            if leader:
                assert set(json.loads(app["alert_rules"])) == {"groups"}
            else:
                assert app == {}
        elif relation.endpoint == "workload-tracing":
            # requirer v2: the leader asks for otlp_http with an empty remote side.
            if leader:
                parsed = TracingRequirerAppData.load(app)
                assert [str(p) for p in parsed.receivers] == ["otlp_http"]
            else:
                assert app == {}
