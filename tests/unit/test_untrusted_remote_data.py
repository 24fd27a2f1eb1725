"""Remote relation data is untrusted: the charm drops what it cannot use and says so.

Under cross-model relations the other side of every relation may publish anything. These
tests cover the hardening issue's charm items: values that used to raise and fail every hook
(12), a bad tracing URL that made the whole ``snap set`` fail (13), a bridge that served an
unauthenticated query API on all interfaces before it knew the token (14) and a sender that
opened the write allow-list to everyone (15). The machine's ``snap set`` goes through the
bridge's real settings validator (``fake_workload``), so "the hook rejects it" is real.
"""

from __future__ import annotations

import base64
import dataclasses
import json
import lzma
from pathlib import Path
from typing import Any

import pytest
import yaml
from charm_builders import APP, databags, grafana, peers, replace_relation, settle, source_data
from ops import testing

import charm
from charm import QUERY_TOKEN_LABEL, QUERY_TOKEN_SECRET_KEY, GrafanaAgentBridgeCharm
from charms.grafana_agent_bridge.v0.grafana_source import unit_number
from tests.fake_workload import FakeWorkload

ROOT = Path(__file__).resolve().parents[2]
DEEP_ARRAY = "[" * 5000 + "]" * 5000
DEEP_OBJECT = '{"a":' * 5000 + "1" + "}" * 5000
OTLP = {"name": "otlp_http", "type": "http"}


def receivers(url: object) -> dict[str, str]:
    return {"receivers": json.dumps([{"protocol": OTLP, "url": url}])}


GOOD_TRACING = receivers("http://tempo:4318")
RULES = {"groups": [{"name": "a", "rules": [{"alert": "Down", "expr": "up == 0"}]}]}
OTLP_GROUP = {"name": "otel", "rules": [{"alert": "Slow", "expr": "lag > 1"}]}


def otlp_rules(promql: object) -> str:
    """A ``rules`` value as the otlp library's requirer writes it: a JSON string of base64 of
    LZMA of JSON."""
    raw = json.dumps({"promql": promql, "logql": {}}).encode()
    return json.dumps(base64.b64encode(lzma.compress(raw)).decode())


def write_url(url: str) -> dict[str, str]:
    return {"remote_write": json.dumps({"url": url})}


def token_secret(content: str) -> testing.Secret:
    return testing.Secret({"token": content}, owner="app", label=QUERY_TOKEN_LABEL)


def status_text(state: testing.State) -> str:
    return state.unit_status.message


# -- item 12: values that used to raise in every hook -------------------------------------------


@pytest.mark.parametrize("name", [f"{APP}/²", f"{APP}/٣", f"{APP}/" + "9" * 5000, f"{APP}/0 "])
def test_a_unit_number_is_ascii_digits_only(name: str):
    # "²".isdigit() is true but int("²") raises; int("٣") is 3; int() refuses 5000 digits.
    assert unit_number(name) is None
    assert unit_number(f"{APP}/12") == 12


@pytest.mark.parametrize("leader", [True, False])
def test_a_superscript_unit_key_from_grafana_is_ignored_and_named(ctx, leader: bool):
    world = testing.State(leader=True, relations={grafana("grafana-a", "gA", [0]), peers()})
    good = settle(ctx, world)
    source = next(r for r in good.relations if r.endpoint == "grafana-source")
    assert isinstance(source, testing.Relation)
    uids = {f"{APP}/0": "u0", f"{APP}/²": "u2"}
    bad = dataclasses.replace(
        source, remote_app_data={"grafana_uid": "gA", "datasource_uids": json.dumps(uids)}
    )
    state = dataclasses.replace(replace_relation(good, source, bad), leader=leader)
    out = ctx.run(ctx.on.relation_changed(bad, remote_unit=0), state)
    assert "ignored bad datasource_uids from grafana-a" in status_text(out)
    assert databags(out) == databags(state)  # what was published stays published


def _one_relation_world(endpoint: str, deep: str) -> testing.RelationBase:
    if endpoint == "grafana-source":
        return testing.Relation(
            endpoint,
            remote_app_name="grafana",
            remote_app_data={"grafana_uid": "g", "datasource_uids": deep},
        )
    if endpoint == "send-remote-write":
        return testing.Relation(
            endpoint, remote_app_name="mimir", remote_units_data={0: {"remote_write": deep}}
        )
    if endpoint == "receive-remote-write":
        return testing.Relation(
            endpoint, remote_app_name="agent", remote_app_data={"alert_rules": deep}
        )
    if endpoint == "receive-otlp":
        return testing.Relation(
            endpoint, remote_app_name="otelcol", remote_app_data={"rules": deep}
        )
    if endpoint in ("send-datasource", "receive-datasource"):
        return testing.Relation(
            endpoint, remote_app_name="tempo", remote_app_data={"datasources": deep}
        )
    return testing.Relation(endpoint, remote_app_name="tempo", remote_app_data={"receivers": deep})


DEEP_CASES = [
    ("grafana-source", "bad datasource_uids from grafana"),
    ("send-remote-write", "bad remote_write from mimir/0"),
    ("receive-remote-write", "bad alert_rules from agent"),
    ("receive-otlp", "bad otlp rules from otelcol"),
    ("send-datasource", "bad datasources from tempo"),
    ("receive-datasource", "bad datasources from tempo"),
    ("workload-tracing", "bad tracing endpoint from tempo"),
    ("charm-tracing", "bad charm-tracing endpoint from tempo"),
]


@pytest.mark.parametrize("deep", [DEEP_ARRAY, DEEP_OBJECT], ids=["array", "object"])
@pytest.mark.parametrize(("endpoint", "named"), DEEP_CASES)
@pytest.mark.parametrize("leader", [True, False])
def test_deeply_nested_json_is_ignored_and_named(ctx, machine, endpoint, named, deep, leader):
    if endpoint in ("receive-remote-write", "receive-otlp") and not leader:
        pytest.skip("only the leader reads the senders' alert_rules (to pass them upstream)")
    relation = _one_relation_world(endpoint, deep)
    state = testing.State(leader=leader, relations={relation, peers()})
    out = ctx.run(ctx.on.relation_changed(relation, remote_unit=0), state)
    assert named in status_text(out)
    assert machine.settings["listen-address"].endswith(":9099")


def test_deeply_nested_peer_data_is_ignored_and_named(ctx):
    peer = testing.PeerRelation("peers", peers_data={1: {"departed-units": DEEP_ARRAY}})
    out = ctx.run(ctx.on.relation_changed(peer, remote_unit=1), testing.State(relations={peer}))
    assert f"bad departed-units from {APP}/1" in status_text(out)


@pytest.mark.parametrize("leader", [True, False])
def test_an_unparsable_ipv6_write_url_is_ignored_and_the_others_kept(ctx, machine, leader):
    up = testing.Relation(
        "send-remote-write",
        remote_app_name="mimir",
        remote_units_data={
            0: {"remote_write": json.dumps({"url": "http://[::1/api/v1/write"})},
            1: write_url("http://[fd00::1]:9009/api/v1/push"),
        },
    )
    out = ctx.run(
        ctx.on.relation_changed(up, remote_unit=0),
        testing.State(leader=leader, relations={up, peers()}),
    )
    assert machine.settings["forward-urls"] == "http://[fd00::1]:9009/api/v1/push"
    assert "ignored bad remote_write from mimir/0" in status_text(out)


def test_write_urls_the_bridge_would_name_alike_are_not_all_forwarded(ctx, machine):
    # The bridge derives a target name from host:port/path; two that collide would make the
    # configure hook refuse forward-urls (and with it the whole snap set).
    up = testing.Relation(
        "send-remote-write",
        remote_app_name="mimir",
        remote_units_data={
            0: write_url("http://h:1/api/v1/push"),
            1: write_url("http://h_1/api/v1/push"),
        },
    )
    out = ctx.run(ctx.on.relation_changed(up, remote_unit=0), testing.State(relations={up}))
    assert machine.settings["forward-urls"] == "http://h:1/api/v1/push"
    assert "ignored bad remote_write from mimir/1" in status_text(out)


# -- item 13: one bad tracing URL must not stop the security settings --------------------------


@pytest.mark.parametrize("url", ["tempo:4318", "file:///etc/passwd", "http://", 4318])
def test_a_bad_tracing_url_on_a_new_unit_still_applies_token_and_allow_list(ctx, machine, url):
    tracing = testing.Relation(
        "workload-tracing", remote_app_name="tempo", remote_app_data=receivers(url)
    )
    agent = testing.Relation(
        "receive-remote-write",
        remote_app_name="agent",
        remote_units_data={0: {"egress-subnets": "10.0.0.5/32"}},
    )
    state = testing.State(leader=True, relations={tracing, agent, peers()})
    out = ctx.run(ctx.on.relation_changed(tracing), state)
    (secret,) = [s for s in out.secrets if s.label == QUERY_TOKEN_LABEL]
    assert machine.settings["query-auth-token"] == secret.tracked_content["token"]
    assert machine.settings["listen-address"] == "0.0.0.0:9099"
    assert machine.settings["allowed-clients"] == "127.0.0.1,::1,10.0.0.5"
    assert machine.settings["tracing-endpoint"] == ""
    assert isinstance(out.unit_status, testing.ActiveStatus), out.unit_status
    assert "ignored bad tracing endpoint from tempo" in status_text(out)


def test_a_bad_tracing_url_on_a_configured_unit_still_rotates_the_token(ctx, machine):
    secret = token_secret("old")
    peer = testing.PeerRelation("peers", local_app_data={QUERY_TOKEN_SECRET_KEY: secret.id})
    tracing = testing.Relation(
        "workload-tracing", remote_app_name="tempo", remote_app_data=GOOD_TRACING
    )
    out = settle(ctx, testing.State(leader=True, relations={peer, tracing}, secrets={secret}))
    assert machine.settings["tracing-endpoint"] == "http://tempo:4318"
    broken = dataclasses.replace(tracing, remote_app_data=receivers("tempo:4318"))
    out = ctx.run(ctx.on.secret_rotate(out.get_secret(id=secret.id)), out)
    out = ctx.run(ctx.on.relation_changed(broken), replace_relation(out, tracing, broken))
    new = out.get_secret(id=secret.id).latest_content
    assert new is not None and new["token"] != "old"
    assert machine.settings["query-auth-token"] == new["token"]
    assert machine.settings["tracing-endpoint"] == ""


def test_when_the_hook_refuses_a_change_the_security_keys_still_land(ctx, machine):
    # Defence in depth: should the snap refuse something the charm thought valid, the token,
    # the allow-list and the listen address are applied on their own.
    url = "http://10.9.0.1:9090/api/v1/write"
    machine.reject[("forward-urls", url)] = "forward-urls: refused by the hook"
    up = testing.Relation("send-remote-write", remote_units_data={0: write_url(url)})
    out = ctx.run(ctx.on.install(), testing.State(leader=True, relations={up, peers()}))
    (secret,) = [s for s in out.secrets if s.label == QUERY_TOKEN_LABEL]
    assert machine.settings["query-auth-token"] == secret.tracked_content["token"]
    assert machine.settings["listen-address"] == "0.0.0.0:9099"
    assert machine.settings["allowed-clients"] == "127.0.0.1,::1"
    assert "forward-urls" not in machine.settings
    assert out.unit_status == testing.BlockedStatus(
        "bridge config invalid: forward-urls: refused by the hook"
    )


# -- item 14: fail closed until the token is known ----------------------------------------------


def test_a_unit_without_the_token_listens_on_loopback_only(ctx, machine: FakeWorkload):
    out = ctx.run(ctx.on.install(), testing.State(relations={peers(1)}))
    assert machine.settings["listen-address"] == "127.0.0.1:9099"
    assert "query-auth-token" not in machine.settings
    assert out.unit_status == testing.WaitingStatus(
        "waiting for the leader to share the query token"
    )
    # The token and all interfaces arrive together, in one snap set (one restart).
    secret = token_secret("s3cret")
    peer = testing.PeerRelation(
        "peers", local_app_data={QUERY_TOKEN_SECRET_KEY: secret.id}, peers_data={1: {}}
    )
    runs = machine.hook_runs
    ctx.run(
        ctx.on.relation_changed(peer, remote_unit=1),
        testing.State(relations={peer}, secrets={secret}),
    )
    assert machine.hook_runs == runs + 1
    assert machine.settings["listen-address"] == "0.0.0.0:9099"
    assert machine.settings["query-auth-token"] == "s3cret"
    # With query-auth off the operator chose an open API: no token, all interfaces.
    state = testing.State(relations={peers(1)}, config={"query-auth": False})
    ctx.run(ctx.on.config_changed(), state)
    assert machine.settings["listen-address"] == "0.0.0.0:9099"
    assert machine.settings["query-auth-token"] == ""


def test_an_unreadable_token_secret_closes_the_bridge_again(ctx, machine: FakeWorkload):
    secret = token_secret("s3cret")
    peer = testing.PeerRelation("peers", local_app_data={QUERY_TOKEN_SECRET_KEY: secret.id})
    out = ctx.run(ctx.on.update_status(), testing.State(relations={peer}, secrets={secret}))
    assert machine.settings["listen-address"] == "0.0.0.0:9099"
    gone = dataclasses.replace(peer, local_app_data={QUERY_TOKEN_SECRET_KEY: "secret:" + "\x00"})
    ctx.run(ctx.on.relation_changed(gone, remote_unit=1), replace_relation(out, peer, gone))
    assert machine.settings["listen-address"] == "127.0.0.1:9099"


# -- item 15: a sender cannot open the allow-list to everyone -----------------------------------


def test_too_wide_networks_from_a_sender_are_refused_and_named(ctx, machine: FakeWorkload):
    agent = testing.Relation(
        "receive-remote-write",
        remote_app_name="agent",
        remote_units_data={
            0: {
                "egress-subnets": "0.0.0.0/0,::/0,10.0.0.0/8,2001:db8::/32",
                "ingress-address": "10.0.0.5",
            },
            1: {
                "egress-subnets": "11.0.0.0/7,2001:db8::/31,::ffff:0.0.0.0/96,::ffff:10.0.0.0/104"
            },
        },
    )
    out = ctx.run(ctx.on.relation_changed(agent, remote_unit=0), testing.State(relations={agent}))
    assert machine.settings["allowed-clients"] == (
        "127.0.0.1,::1,10.0.0.0/8,10.0.0.5,2001:db8::/32,::ffff:a00:0/104"
    )
    message = status_text(out)
    assert "ignored too-wide network 0.0.0.0/0 from agent/0" in message
    assert "and 3 more" in message  # ::/0 (shown) and the three of unit 1


# -- everything at once -------------------------------------------------------------------------

# Every key any of our interfaces or Juju puts in a databag, plus one nobody uses.
ALL_KEYS = (
    "grafana_uid",
    "datasource_uids",
    "grafana_base_url",
    "grafana_source_host",
    "grafana_source_data",
    "datasources",
    "remote_write",
    "alert_rules",
    "receivers",
    "egress-subnets",
    "ingress-address",
    "private-address",
    "departed-units",
    "datasource-uids",
    "query-auth-secret-id",
    "query-auth-token-sha256",
    "rules",
    "metadata",
    "endpoints",
    "config",
    "event",
    "unexpected",
)
HUGE = "x" * (6 << 20)
JUNK = {
    "deep-array": DEEP_ARRAY,
    "deep-object": DEEP_OBJECT,
    "deep-in-valid-shape": json.dumps(
        {"url": "http://a/", "x": json.loads("[" * 900 + "]" * 900)}
    ),
    "huge-text": HUGE,
    "huge-json-string": json.dumps(HUGE),
    "huge-list": json.dumps([{"url": "http://a/"}] * 300_000),
    "wrong-type-number": "1e999",
    "wrong-type-object": json.dumps({"url": 5, "groups": "x", "grafana-agent-bridge/0": 7}),
    "wrong-type-list": json.dumps([{"protocol": OTLP, "url": ["http://a/"]}]),
    "null": "null",
    "superscript": json.dumps({f"{APP}/²": "x", f"{APP}/0": "y"}),
    "nul": "\x00",
    "nul-in-json": json.dumps({"url": "http://a\x00b/", f"{APP}/0": "a\x00b"}),
    "escaped-surrogate": '{"url": "http://\\udcff/", "grafana-agent-bridge/0": "\\ud800"}',
    "raw-surrogate": "\udcff\ud800",
    "rtl-marks": "\u200f\u202egrafana\u202c",
    "rtl-in-json": json.dumps({"url": "http://\u202etempo:4318", f"{APP}/0": "\u200fuid"}),
}
# Each endpoint of charmcraft.yaml and the remote application on it in the settled world.
WORLD_APPS = {
    "grafana-source": "grafana-a",
    "send-datasource": "tempo",
    "receive-datasource": "mimir-ds",
    "receive-remote-write": "agent",
    "send-remote-write": "mimir",
    "charm-tracing": "tempo-charm",
    "workload-tracing": "tempo-workload",
    "receive-otlp": "otelcol",
    "cos-agent": "otelcol-sub",
}


def _endpoints() -> set[str]:
    meta = yaml.safe_load((ROOT / "charmcraft.yaml").read_text())
    return {name for role in ("provides", "requires", "peers") for name in meta.get(role, {})}


def _good_world() -> testing.State:
    tempo_ds = [{"type": "tempo", "uid": "tempo-1", "grafana_uid": "gA"}]
    remote: dict[str, dict[str, Any]] = {
        "grafana-source": grafana("grafana-a", "gA", [0, 1]).remote_app_data,
        "send-datasource": {"datasources": json.dumps(tempo_ds)},
        "receive-datasource": {"datasources": "[]"},
        "receive-remote-write": {"alert_rules": json.dumps(RULES)},
        "send-remote-write": {},
        "charm-tracing": GOOD_TRACING,
        "workload-tracing": GOOD_TRACING,
        "receive-otlp": {
            "rules": otlp_rules({"groups": [OTLP_GROUP]}),
            "metadata": json.dumps({"model": "m", "application": "otelcol"}),
        },
        "cos-agent": {},
    }
    units: dict[str, dict[int, dict[str, str]]] = {
        "receive-remote-write": {0: {"egress-subnets": "10.0.0.5/32"}},
        "receive-otlp": {0: {"egress-subnets": "10.0.0.6/32"}},
        "send-remote-write": {0: write_url("http://10.9.0.1:9009/api/v1/push")},
    }
    relations: set[testing.RelationBase] = {
        testing.Relation(
            endpoint,
            remote_app_name=app,
            remote_app_data=remote[endpoint],
            remote_units_data=units.get(endpoint, {0: {}}),
        )
        for endpoint, app in WORLD_APPS.items()
    }
    relations.add(peers(1))
    return testing.State(leader=True, relations=relations, planned_units=2)


def _fill(relation: testing.RelationBase, junk: str, *, leader: bool) -> testing.RelationBase:
    bag = dict.fromkeys(ALL_KEYS, junk)
    if isinstance(relation, testing.PeerRelation):
        peers_data = {n: {**data, **bag} for n, data in relation.peers_data.items()}
        if leader:  # the leader's own application data is not remote to it
            return dataclasses.replace(relation, peers_data=peers_data)
        return dataclasses.replace(relation, peers_data=peers_data, local_app_data=bag)
    assert isinstance(relation, testing.Relation)
    units = {n: {**data, **bag} for n, data in relation.remote_units_data.items()}
    return dataclasses.replace(relation, remote_app_data=bag, remote_units_data=units)


@pytest.fixture(scope="module")
def good_world() -> tuple[testing.State, FakeWorkload]:
    machine = FakeWorkload()
    original = charm.SnapWorkload
    charm.SnapWorkload = lambda: machine  # type: ignore[assignment]
    try:
        ctx = testing.Context(GrafanaAgentBridgeCharm, app_name=APP)
        settled = settle(ctx, _good_world())
        # The cos_agent library writes our unit databag on its own relation events.
        cos = next(r for r in settled.relations if r.endpoint == "cos-agent")
        settled = ctx.run(ctx.on.relation_joined(cos, remote_unit=0), settled)
    finally:
        charm.SnapWorkload = original  # type: ignore[assignment]
    return settled, machine


@pytest.mark.parametrize("junk", list(JUNK), ids=list(JUNK))
@pytest.mark.parametrize("leader", [True, False])
def test_junk_in_every_remote_databag_never_raises_nor_unpublishes(
    ctx, machine: FakeWorkload, good_world, junk: str, leader: bool
):
    settled, settled_machine = good_world
    assert {r.endpoint for r in settled.relations} == _endpoints()  # every endpoint covered
    grafana_rel = next(r for r in settled.relations if r.endpoint == "grafana-source")
    published = source_data(settled, grafana_rel)
    assert published["extra_fields"]["exemplarTraceIdDestinations"][0]["datasourceUid"] == (
        "tempo-1"
    )
    machine.snap = settled_machine.snap
    machine.settings = dict(settled_machine.settings)
    good_settings = dict(machine.settings)
    assert good_settings["listen-address"] == "0.0.0.0:9099"
    assert good_settings["tracing-endpoint"] == "http://tempo:4318"

    state = dataclasses.replace(settled, leader=leader)
    before = databags(state)
    upstream_id = next(r.id for r in state.relations if r.endpoint == "send-remote-write")
    assert json.loads(before[upstream_id][0]["alert_rules"]) == {
        "groups": [*RULES["groups"], OTLP_GROUP]
    }
    assert "10.0.0.6" in good_settings["allowed-clients"].split(",")  # the OTLP sender
    otlp_id = next(r.id for r in state.relations if r.endpoint == "receive-otlp")
    assert json.loads(before[otlp_id][0]["endpoints"])[0]["telemetries"] == ["metrics"]
    cos_id = next(r.id for r in state.relations if r.endpoint == "cos-agent")
    assert "config" in before[cos_id][1]  # the collector's scrape job, rules and dashboard
    for relation in list(state.relations):
        state = replace_relation(state, relation, _fill(relation, JUNK[junk], leader=leader))
    events = [ctx.on.update_status(), ctx.on.config_changed(), ctx.on.upgrade_charm()]
    for relation in sorted(state.relations, key=lambda r: r.id):
        remote = 1 if isinstance(relation, testing.PeerRelation) else 0
        events.append(ctx.on.relation_changed(relation, remote_unit=remote))
    for event in events:
        out = ctx.run(event, state)
        if leader:
            # Everything published stays as it was: the exchange, the datasource (with its
            # exemplar link and token), the write URL. Only the rules of the one sender, now
            # unreadable, are no longer passed upstream (never garbage in their place).
            after = databags(out)
            assert after.pop(upstream_id)[0] == {}, event
            assert after == {k: v for k, v in before.items() if k != upstream_id}, event
        else:
            assert {k: v[1] for k, v in databags(out).items()} == {
                k: v[1] for k, v in before.items()
            }, event
        assert "ignored bad" in status_text(out), event
    # The security settings: never wider than before, never without the token when open.
    allowed = set(machine.settings["allowed-clients"].split(","))
    assert allowed <= set(good_settings["allowed-clients"].split(","))
    assert {"127.0.0.1", "::1"} <= allowed
    if machine.settings["listen-address"] == "0.0.0.0:9099":
        assert machine.settings["query-auth-token"] == good_settings["query-auth-token"]
    else:
        assert machine.settings["listen-address"] == "127.0.0.1:9099"
        assert not leader  # only a unit that cannot read the shared token closes again
    assert machine.settings["tracing-endpoint"] == ""
