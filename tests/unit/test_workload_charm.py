"""The charm driving the bridge: install, settings, remote-write, tracing, query auth, status.

The machine is ``FakeWorkload`` (conftest's ``machine``): it lives for the whole test like a
real machine outlives each hook, and counts restarts as the snap's configure hook causes them.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import ops
import pytest
from charm_builders import APP, grafana, peers, replace_relation, settle, source_data
from ops import testing

from charm import QUERY_TOKEN_LABEL, QUERY_TOKEN_SECRET_KEY
from tests.fake_workload import FakeWorkload
from workload import QueryError

RECEIVERS = {
    "receivers": json.dumps(
        [{"protocol": {"name": "otlp_http", "type": "http"}, "url": "http://tempo:4318"}]
    )
}


def token_secret(content: str, latest: str | None = None) -> testing.Secret:
    return testing.Secret(
        {"token": content},
        latest_content={"token": latest} if latest else None,
        owner="app",
        label=QUERY_TOKEN_LABEL,
    )


def peer_with_secret(secret: testing.Secret, *others: int) -> testing.PeerRelation:
    return testing.PeerRelation(
        "peers",
        local_app_data={QUERY_TOKEN_SECRET_KEY: secret.id},
        peers_data={n: {} for n in others},
    )


# -- install ----------------------------------------------------------------------------------


def test_installs_from_the_store_channel_once_and_opens_the_port(ctx, machine: FakeWorkload):
    state = testing.State(leader=True, relations={peers()})
    out = ctx.run(ctx.on.install(), state)
    assert machine.installs == ["store:latest/stable"]
    assert out.opened_ports == {testing.TCPPort(9099)}
    assert machine.settings["listen-address"] == "0.0.0.0:9099"
    settle(ctx, out)
    assert machine.installs == ["store:latest/stable"]  # held: no re-install on later events


def test_a_new_channel_reinstalls_from_it(ctx, machine: FakeWorkload):
    out = settle(ctx, testing.State(leader=True, relations={peers()}))
    changed = dataclasses.replace(out, config={"snap-channel": "latest/edge"})
    ctx.run(ctx.on.config_changed(), changed)
    assert machine.installs == ["store:latest/stable", "store:latest/edge"]


def test_an_attached_snap_file_is_installed_instead_of_the_store(
    ctx, machine: FakeWorkload, tmp_path: Path
):
    snap_file = tmp_path / "grafana-agent-bridge.snap"
    snap_file.write_text("build 1")
    resource = testing.Resource(name="bridge-snap", path=snap_file)
    state = testing.State(leader=True, relations={peers()}, resources={resource})
    out = settle(ctx, state, ctx.on.install)
    assert machine.installs == ["file:build 1"]
    snap_file.write_text("build 2")  # juju attach-resource: upgrade-charm, new content
    ctx.run(ctx.on.upgrade_charm(), out)
    assert machine.installs == ["file:build 1", "file:build 2"]


def test_an_empty_resource_means_the_store(ctx, machine: FakeWorkload, tmp_path: Path):
    empty = tmp_path / "empty.snap"
    empty.write_bytes(b"")
    state = testing.State(
        relations={peers()}, resources={testing.Resource(name="bridge-snap", path=empty)}
    )
    ctx.run(ctx.on.install(), state)
    assert machine.installs == ["store:latest/stable"]


def test_snap_failure_blocks_with_the_reason_and_is_retried(ctx, machine: FakeWorkload):
    machine.install_error = "snap not found in the store"
    out = ctx.run(ctx.on.install(), testing.State(leader=True, relations={peers()}))
    assert out.unit_status == testing.BlockedStatus(
        "snap install failed: snap not found in the store"
    )
    machine.install_error = None
    out = ctx.run(ctx.on.update_status(), out)
    assert machine.installs == ["store:latest/stable"]
    assert out.unit_status == testing.ActiveStatus("no Grafana related")


def test_remove_removes_the_snap(ctx, machine: FakeWorkload):
    out = settle(ctx, testing.State(leader=True, relations={peers()}))
    ctx.run(ctx.on.remove(), out)
    assert machine.removed and machine.snap is None


# -- settings and restarts --------------------------------------------------------------------


def test_config_change_restarts_the_bridge_exactly_once(ctx, machine: FakeWorkload):
    out = settle(ctx, testing.State(leader=True, relations={peers()}))
    assert machine.restarts == 1  # the first settings
    out = ctx.run(ctx.on.config_changed(), dataclasses.replace(out, config={"port": 9100}))
    assert machine.restarts == 2
    assert machine.settings["listen-address"] == "0.0.0.0:9100"
    assert out.opened_ports == {testing.TCPPort(9100)}
    for event in (ctx.on.config_changed(), ctx.on.update_status(), ctx.on.leader_elected()):
        out = ctx.run(event, out)
    assert machine.restarts == 2  # nothing changed: no snap set, no hook, no restart
    assert machine.hook_runs == 2


def test_retention_config_reaches_the_snap(ctx, machine: FakeWorkload):
    config = {"retention-time": "30d", "retention-size": "10GB"}
    ctx.run(ctx.on.config_changed(), testing.State(relations={peers()}, config=config))
    assert machine.settings["retention-time"] == "30d"
    assert machine.settings["retention-size"] == "10GB"


def test_invalid_retention_blocks_before_reaching_the_snap(ctx, machine: FakeWorkload):
    state = testing.State(relations={peers()}, config={"retention-time": "15x"})
    out = ctx.run(ctx.on.config_changed(), state)
    assert machine.hook_runs == 0
    assert out.unit_status == testing.BlockedStatus(
        "invalid config: retention-time: '15x' is not a duration like 15d"
    )


def test_settings_the_hook_rejects_block_with_its_message_then_recover(ctx, machine: FakeWorkload):
    machine.reject = {("retention-size", "0.5B"): 'retention-size: invalid size "0.5B"'}
    state = testing.State(leader=True, relations={peers()}, config={"retention-size": "0.5B"})
    out = ctx.run(ctx.on.config_changed(), state)
    assert out.unit_status == testing.BlockedStatus(
        'bridge config invalid: retention-size: invalid size "0.5B"'
    )
    assert "retention-size" not in machine.settings  # the change was rejected as a whole,
    assert machine.settings["query-auth-token"]  # then the security keys applied alone
    out = ctx.run(ctx.on.config_changed(), dataclasses.replace(out, config={}))
    assert machine.settings["retention-size"] == "0"
    assert machine.settings["listen-address"] == "0.0.0.0:9099"
    assert not isinstance(out.unit_status, testing.BlockedStatus)


# -- status -----------------------------------------------------------------------------------


def test_snap_missing_is_reported_when_nothing_installed_it(ctx, machine: FakeWorkload):
    out = ctx.run(ctx.on.stop(), testing.State(relations={peers()}))  # stop does not reconcile
    assert out.unit_status == testing.BlockedStatus(
        "snap missing: grafana-agent-bridge is not installed"
    )


def test_service_down_and_not_ready_are_reported(ctx, machine: FakeWorkload):
    out = settle(ctx, testing.State(leader=True, relations={peers()}))
    machine.active = False
    out = ctx.run(ctx.on.update_status(), out)
    assert out.unit_status == testing.BlockedStatus(
        "service down: grafana-agent-bridge.daemon is not active"
    )
    machine.active = True
    machine.not_ready = "http://127.0.0.1:9099/-/ready answered HTTP 503"
    out = ctx.run(ctx.on.update_status(), out)
    assert out.unit_status == testing.WaitingStatus(
        "bridge not ready: http://127.0.0.1:9099/-/ready answered HTTP 503"
    )
    machine.not_ready = None
    out = ctx.run(ctx.on.update_status(), out)
    assert out.unit_status == testing.ActiveStatus("no Grafana related")


# -- remote write -----------------------------------------------------------------------------


def sender(app: str, units: dict[int, dict[str, str]], rules: object = None) -> testing.Relation:
    app_data = {"alert_rules": json.dumps(rules)} if rules is not None else {}
    return testing.Relation(
        "receive-remote-write",
        remote_app_name=app,
        remote_app_data=app_data,
        remote_units_data=units,
    )


def test_each_unit_publishes_its_write_url_and_senders_become_the_allow_list(
    ctx, machine: FakeWorkload
):
    agent = sender(
        "agent",
        {
            0: {"ingress-address": "10.0.0.5", "egress-subnets": "10.0.0.5/32"},
            1: {"ingress-address": "juju-host-1", "egress-subnets": "192.168.7.0/24"},
            2: {"ingress-address": "not an address"},
        },
    )
    network = testing.Network("receive-remote-write", ingress_addresses=["10.1.2.3"])
    state = testing.State(relations={agent, peers()}, networks={network}, config={"port": 9101})
    out = ctx.run(ctx.on.relation_changed(agent, remote_unit=0), state)
    bag = out.get_relation(agent.id).local_unit_data
    assert json.loads(bag["remote_write"]) == {"url": "http://10.1.2.3:9101/api/v1/write"}
    assert machine.settings["allowed-clients"] == "127.0.0.1,::1,10.0.0.5,192.168.7.0/24"


def test_without_senders_only_this_machine_may_write(ctx, machine: FakeWorkload):
    ctx.run(ctx.on.install(), testing.State(relations={peers()}))
    assert machine.settings["allowed-clients"] == "127.0.0.1,::1"


def upstream(units: dict[int, dict[str, str]], app: str = "mimir") -> testing.Relation:
    return testing.Relation("send-remote-write", remote_app_name=app, remote_units_data=units)


def test_every_upstream_unit_url_becomes_a_forwarding_target(ctx, machine: FakeWorkload):
    prom = upstream(
        {
            0: {"remote_write": json.dumps({"url": "http://10.9.0.2:9090/api/v1/write"})},
            1: {"remote_write": json.dumps({"url": "http://10.9.0.1:9090/api/v1/write"})},
            2: {"remote_write": "{not json"},
            3: {"remote_write": json.dumps({"url": "ftp://x/y"})},
            4: {},
        },
        app="prometheus",
    )
    mimir = upstream({0: {"remote_write": json.dumps({"url": "https://mimir/api/v1/push"})}})
    state = testing.State(relations={prom, mimir, peers()})
    ctx.run(ctx.on.relation_changed(prom, remote_unit=0), state)
    assert machine.settings["forward-urls"] == (
        "http://10.9.0.1:9090/api/v1/write,http://10.9.0.2:9090/api/v1/write,"
        "https://mimir/api/v1/push"
    )


def test_upstream_departing_removes_its_target(ctx, machine: FakeWorkload):
    url = json.dumps({"url": "http://10.9.0.2:9090/api/v1/write"})
    prom = upstream({0: {"remote_write": url}})
    out = settle(ctx, testing.State(relations={prom, peers()}))
    assert machine.settings["forward-urls"] == "http://10.9.0.2:9090/api/v1/write"
    ctx.run(ctx.on.relation_broken(out.get_relation(prom.id)), out)
    assert machine.settings["forward-urls"] == ""


RULES_A = {"groups": [{"name": "a_alerts", "rules": [{"alert": "Down", "expr": "up == 0"}]}]}
RULES_B = {"groups": [{"name": "b_alerts", "rules": [{"alert": "Hot", "expr": "temp > 90"}]}]}


def test_leader_passes_the_senders_alert_rules_upstream_unchanged(ctx):
    a = sender("agent-a", {0: {}}, RULES_A)
    b = sender("agent-b", {0: {}}, RULES_B)
    junk = testing.Relation(
        "receive-remote-write", remote_app_name="junk", remote_app_data={"alert_rules": "{x"}
    )
    up = upstream({})
    state = testing.State(leader=True, relations={a, b, junk, up, peers()})
    out = ctx.run(ctx.on.relation_changed(a, remote_unit=0), state)
    sent = json.loads(out.get_relation(up.id).local_app_data["alert_rules"])
    assert sent == {"groups": RULES_A["groups"] + RULES_B["groups"]}

    out = ctx.run(ctx.on.relation_broken(out.get_relation(a.id)), out)
    assert json.loads(out.get_relation(up.id).local_app_data["alert_rules"]) == RULES_B
    out = dataclasses.replace(out, relations={r for r in out.relations if r.id != a.id})
    b_now = out.get_relation(b.id)
    assert isinstance(b_now, testing.Relation)
    no_rules = dataclasses.replace(b_now, remote_app_data={})
    out = ctx.run(
        ctx.on.relation_changed(no_rules, remote_unit=0), replace_relation(out, b_now, no_rules)
    )
    assert "alert_rules" not in out.get_relation(up.id).local_app_data


def test_non_leader_does_not_touch_the_upstream_app_databag(ctx):
    a = sender("agent-a", {0: {}}, RULES_A)
    up = upstream({})
    out = ctx.run(ctx.on.update_status(), testing.State(relations={a, up, peers()}))
    assert dict(out.get_relation(up.id).local_app_data) == {}


# -- tracing ----------------------------------------------------------------------------------


def test_workload_tracing_requests_otlp_http_and_configures_the_endpoint(
    ctx, machine: FakeWorkload
):
    tracing = testing.Relation("workload-tracing", remote_app_data=RECEIVERS)
    out = ctx.run(
        ctx.on.relation_changed(tracing), testing.State(leader=True, relations={tracing, peers()})
    )
    assert json.loads(out.get_relation(tracing.id).local_app_data["receivers"]) == ["otlp_http"]
    assert machine.settings["tracing-endpoint"] == "http://tempo:4318"


def test_non_leader_waits_for_the_tracing_provider_without_error(ctx, machine: FakeWorkload):
    tracing = testing.Relation("workload-tracing")  # provider has not answered yet
    ctx.run(ctx.on.relation_joined(tracing), testing.State(relations={tracing, peers()}))
    assert machine.settings["tracing-endpoint"] == ""
    answered = dataclasses.replace(tracing, remote_app_data=RECEIVERS)
    ctx.run(ctx.on.relation_changed(answered), testing.State(relations={answered, peers()}))
    assert machine.settings["tracing-endpoint"] == "http://tempo:4318"


@pytest.mark.parametrize("leader", [True, False])
def test_a_tracing_provider_without_otlp_http_means_no_tracing(ctx, machine, leader):
    zipkin_only = {
        "receivers": json.dumps(
            [{"protocol": {"name": "zipkin", "type": "http"}, "url": "http://tempo:9411"}]
        )
    }
    tracing = testing.Relation("workload-tracing", remote_app_data=zipkin_only)
    state = testing.State(leader=leader, relations={tracing, peers()})
    ctx.run(ctx.on.relation_changed(tracing), state)
    assert machine.settings["tracing-endpoint"] == ""


def test_changes_arriving_together_restart_the_bridge_once(ctx, machine: FakeWorkload):
    out = settle(ctx, testing.State(leader=True, relations={peers()}))
    assert machine.restarts == 1
    config = {"port": 9200, "retention-time": "30d", "query-auth": False}
    ctx.run(ctx.on.config_changed(), dataclasses.replace(out, config=config))
    assert machine.restarts == 2


def test_both_tracing_endpoints_at_once(ctx, machine: FakeWorkload):
    charm_tracing = testing.Relation("charm-tracing", remote_app_data=RECEIVERS)
    workload = testing.Relation(
        "workload-tracing",
        remote_app_data={
            "receivers": json.dumps(
                [{"protocol": {"name": "otlp_http", "type": "http"}, "url": "http://t2:4318"}]
            )
        },
    )
    state = testing.State(leader=True, relations={charm_tracing, workload, peers()})
    out = ctx.run(ctx.on.update_status(), state)
    for rel in (charm_tracing, workload):
        assert json.loads(out.get_relation(rel.id).local_app_data["receivers"]) == ["otlp_http"]
    assert machine.settings["tracing-endpoint"] == "http://t2:4318"


# -- query authentication -----------------------------------------------------------------------


def test_leader_creates_the_token_secret_and_shares_it(ctx, machine: FakeWorkload):
    source = grafana("grafana", "g-1", [0])
    out = ctx.run(ctx.on.leader_elected(), testing.State(leader=True, relations={source, peers()}))
    (secret,) = [s for s in out.secrets if s.label == QUERY_TOKEN_LABEL]
    token = secret.tracked_content["token"]
    assert len(token) >= 32
    peer = next(r for r in out.relations if r.endpoint == "peers")
    assert peer.local_app_data[QUERY_TOKEN_SECRET_KEY] == secret.id
    assert machine.settings["query-auth-token"] == token
    data = source_data(out, source)
    assert data["extra_fields"]["httpHeaderName1"] == "Authorization"
    assert data["secure_extra_fields"] == {"httpHeaderValue1": f"Bearer {token}"}
    settle(ctx, out)
    assert machine.restarts == 1  # the token is created once, not per event


def test_rotation_policy_from_config(ctx):
    secret = token_secret("old")
    state = testing.State(
        leader=True,
        relations={peer_with_secret(secret)},
        secrets={secret},
        config={"query-auth-rotation": "weekly"},
    )
    out = ctx.run(ctx.on.config_changed(), state)
    assert out.get_secret(id=secret.id).rotate == ops.SecretRotate.WEEKLY
    bad = dataclasses.replace(out, config={"query-auth-rotation": "fortnightly"})
    out = ctx.run(ctx.on.config_changed(), bad)
    assert out.get_secret(id=secret.id).rotate == ops.SecretRotate.WEEKLY  # changes nothing
    assert out.unit_status == testing.BlockedStatus(
        "invalid config: query-auth-rotation: 'fortnightly' is not one of never, hourly, daily,"
        " weekly, monthly, quarterly, yearly"
    )


def test_non_leader_uses_the_shared_token(ctx, machine: FakeWorkload):
    secret = token_secret("s3cret")
    state = testing.State(relations={peer_with_secret(secret, 1)}, secrets={secret})
    ctx.run(ctx.on.update_status(), state)
    assert machine.settings["query-auth-token"] == "s3cret"


def test_non_leader_without_the_token_waits_and_keeps_the_bridge_setting(
    ctx, machine: FakeWorkload
):
    out = ctx.run(ctx.on.install(), testing.State(relations={peers(1)}))
    assert "query-auth-token" not in machine.settings
    assert out.unit_status == testing.WaitingStatus(
        "waiting for the leader to share the query token"
    )


def test_rotation_updates_the_bridge_and_the_grafana_registration(ctx, machine: FakeWorkload):
    source = grafana("grafana", "g-1", [0])
    secret = token_secret("old")
    state = testing.State(
        leader=True, relations={source, peer_with_secret(secret)}, secrets={secret}
    )
    out = settle(ctx, state)
    assert machine.settings["query-auth-token"] == "old"
    out = ctx.run(ctx.on.secret_rotate(out.get_secret(id=secret.id)), out)
    new = out.get_secret(id=secret.id).latest_content
    assert new is not None and new["token"] != "old"
    assert machine.settings["query-auth-token"] == new["token"]
    assert source_data(out, source)["secure_extra_fields"] == {
        "httpHeaderValue1": f"Bearer {new['token']}"
    }


def test_leader_announces_a_new_token_to_the_peers(ctx):
    secret = token_secret("old")
    state = testing.State(leader=True, relations={peer_with_secret(secret)}, secrets={secret})
    out = settle(ctx, state)
    before = dict(out.get_relation(next(iter(out.relations)).id).local_app_data)
    out = ctx.run(ctx.on.secret_rotate(out.get_secret(id=secret.id)), out)
    after = dict(out.get_relation(next(iter(out.relations)).id).local_app_data)
    changed = {k for k in after if after[k] != before.get(k)}
    assert changed == {"query-auth-token-sha256"}  # a digest that changes, never the token
    assert "old" not in json.dumps(after)


def test_non_leader_follows_a_new_revision_on_peer_changed(ctx, machine: FakeWorkload):
    # An app's own units get no secret-changed: the leader's peer-data digest wakes them up.
    secret = token_secret("old", latest="new")
    peer = peer_with_secret(secret, 1)
    state = testing.State(relations={peer}, secrets={secret})
    ctx.run(ctx.on.relation_changed(peer, remote_unit=1), state)
    assert machine.settings["query-auth-token"] == "new"


def test_query_auth_off_clears_the_token_and_the_header(ctx, machine: FakeWorkload):
    source = grafana("grafana", "g-1", [0])
    out = settle(ctx, testing.State(leader=True, relations={source, peers()}))
    off = dataclasses.replace(out, config={"query-auth": False})
    out = ctx.run(ctx.on.config_changed(), off)
    assert machine.settings["query-auth-token"] == ""
    data = source_data(out, source)
    assert "httpHeaderName1" not in data["extra_fields"]
    assert data["secure_extra_fields"] is None


# -- the query action ---------------------------------------------------------------------------


def test_query_action_returns_the_result_as_json(ctx, machine: FakeWorkload):
    secret = token_secret("s3cret")
    state = testing.State(relations={peer_with_secret(secret, 1)}, secrets={secret})
    sample = [{"metric": {"job": "node"}, "value": [1700000000, "1"]}]
    machine.query_answer = {"resultType": "vector", "result": sample}
    ctx.run(ctx.on.action("query", params={"query": "up", "time": "1700000000"}), state)
    assert ctx.action_results == {
        "result-type": "vector",
        "result": json.dumps(sample, separators=(",", ":")),
    }
    assert machine.queries == [(9099, "s3cret", "up", "1700000000")]


def test_query_action_reports_the_bridge_error(ctx, machine: FakeWorkload):
    machine.query_answer = QueryError("query failed (HTTP 400): bad_data: parse error")
    state = testing.State(leader=True, relations={peers()}, config={"query-auth": False})
    with pytest.raises(testing.ActionFailed, match="bad_data: parse error"):
        ctx.run(ctx.on.action("query", params={"query": "up{"}), state)
    assert machine.queries == [(9099, "", "up{", None)]


def test_query_action_fails_clearly_without_the_token(ctx, machine: FakeWorkload):
    with pytest.raises(testing.ActionFailed, match="query token is not known yet"):
        ctx.run(ctx.on.action("query", params={"query": "up"}), testing.State())
    assert machine.queries == []


def test_grafana_rejoining_keeps_the_registration_consistent(ctx):
    # Scale-out of the Grafana relation does not change the token it gets.
    source = grafana("grafana", "g-1", [0])
    out = settle(ctx, testing.State(leader=True, relations={source, peers()}))
    first = source_data(out, source)["secure_extra_fields"]
    again = replace_relation(out, source, dataclasses.replace(out.get_relation(source.id)))
    assert source_data(settle(ctx, again), source)["secure_extra_fields"] == first
    assert APP in source_data(out, source)["application"]


GARBAGE = ["", "null", "[]", '"text"', "{", '{"url": 5}', '{"groups": "x"}', '{"groups": [1]}']


@pytest.mark.parametrize("junk", GARBAGE)
@pytest.mark.parametrize("leader", [True, False])
def test_garbage_in_remote_write_and_tracing_databags_never_raises(ctx, machine, junk, leader):
    good = json.dumps({"url": "http://10.9.0.1:9090/api/v1/write"})
    up = upstream({0: {"remote_write": junk}, 1: {"remote_write": good}})
    senders = sender("agent", {0: {"egress-subnets": junk, "ingress-address": junk}}, rules=None)
    senders = dataclasses.replace(senders, remote_app_data={"alert_rules": junk})
    tracing = testing.Relation("workload-tracing", remote_app_data={"receivers": junk})
    state = testing.State(leader=leader, relations={up, senders, tracing, peers()})
    out = ctx.run(ctx.on.relation_changed(up, remote_unit=0), state)
    assert machine.settings["forward-urls"] == "http://10.9.0.1:9090/api/v1/write"
    assert machine.settings["allowed-clients"] == "127.0.0.1,::1"
    assert machine.settings["tracing-endpoint"] == ""
    assert "alert_rules" not in out.get_relation(up.id).local_app_data
