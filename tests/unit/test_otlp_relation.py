"""``receive-otlp``: the endpoint we advertise, the senders' rules, the allow-list, junk.

What we write is read back with the published library's own requirer (``OtlpRequirer``, what
the opentelemetry-collector charm runs on ``send-otlp``), and what we read is written with
the library's own databag model, so both directions are checked against the library.
"""

from __future__ import annotations

import base64
import dataclasses
import json
import lzma
from typing import Any

import ops
import pytest
from charm_builders import Writes, peers, replace_relation, settle
from charmlibs.interfaces.otlp import OtlpRequirer
from charmlibs.interfaces.otlp._otlp import _OtlpRequirerAppData
from ops import testing
from pydantic import ValidationError

import otlp_relation
from charms.grafana_agent_bridge.v0.remote_data import RemoteDataError
from tests.fake_workload import FakeWorkload

GROUP = {
    "name": "otelcol_alerts",
    "rules": [{"alert": "OtelcolDown", "expr": "up == 0", "labels": {"severity": "critical"}}],
}
RW_GROUP = {"name": "agent", "rules": [{"alert": "AgentDown", "expr": "up == 0"}]}


def library_rules(promql: dict[str, Any]) -> dict[str, str]:
    """A requirer application databag exactly as the library's ``OtlpRequirer.publish`` writes
    it (its model serialises the rules to base64 LZMA)."""
    model = _OtlpRequirerAppData.model_validate(
        {
            "rules": {"promql": promql, "logql": {}},
            "metadata": {"model": "m", "application": "otelcol", "unit": "otelcol/0"},
        }
    )
    dumped = model.model_dump(mode="json")
    return {key: json.dumps(value) for key, value in dumped.items()}


def otlp(**kw: Any) -> testing.Relation:
    kw.setdefault("remote_app_name", "otelcol")
    kw.setdefault("remote_units_data", {0: {"egress-subnets": "10.0.0.7/32"}})
    return testing.Relation("receive-otlp", interface="otlp", **kw)


def upstream() -> testing.Relation:
    return testing.Relation("send-remote-write", remote_app_name="mimir")


# -- what we advertise ------------------------------------------------------------------------


def test_the_leader_advertises_its_otlp_http_metrics_endpoint(ctx):
    rel = otlp()
    network = testing.Network("receive-otlp", ingress_addresses=["10.1.2.3"])
    state = testing.State(leader=True, relations={rel, peers()}, networks={network})
    out = ctx.run(ctx.on.relation_joined(rel, remote_unit=0), state)
    published = json.loads(out.get_relation(rel.id).local_app_data["endpoints"])
    assert published == [
        {
            "protocol": "http",
            "endpoint": "http://10.1.2.3:9099/api/v1/otlp",
            "telemetries": ["metrics"],
            "insecure": True,
        }
    ]


def test_the_library_requirer_reads_our_endpoint_and_appends_v1_metrics(ctx):
    """The collector's side: its requirer picks our endpoint, its otlphttp exporter appends
    ``/v1/metrics`` (so the bridge's /api/v1/otlp/v1/metrics route is hit)."""
    rel = otlp()
    network = testing.Network("receive-otlp", ingress_addresses=["fd00::9"])
    state = testing.State(
        leader=True, relations={rel, peers()}, networks={network}, config={"port": 1234}
    )
    ours = ctx.run(ctx.on.relation_changed(rel, remote_unit=0), state)
    published = dict(ours.get_relation(rel.id).local_app_data)

    class Sender(ops.CharmBase):
        def __init__(self, framework: ops.Framework):
            super().__init__(framework)
            framework.observe(self.on.update_status, self._read)

        def _read(self, _: ops.EventBase) -> None:
            requirer = OtlpRequirer(self, protocols=["grpc", "http"], telemetries=["metrics"])
            Sender.seen = requirer.endpoints  # type: ignore[attr-defined]

    meta = {"name": "otelcol", "requires": {"send-otlp": {"interface": "otlp"}}}
    sender_rel = testing.Relation("send-otlp", remote_app_data=published)
    sender_ctx = testing.Context(Sender, meta=meta)
    sender_ctx.run(sender_ctx.on.update_status(), testing.State(relations={sender_rel}))
    (endpoint,) = Sender.seen.values()  # type: ignore[attr-defined]
    assert endpoint.protocol == "http"
    assert endpoint.telemetries == ["metrics"]
    assert f"{endpoint.endpoint}/v1/metrics" == "http://[fd00::9]:1234/api/v1/otlp/v1/metrics"


def test_a_non_leader_writes_no_application_data(ctx):
    rel = otlp()
    state = testing.State(leader=False, relations={rel, peers()})
    out = ctx.run(ctx.on.relation_joined(rel, remote_unit=0), state)
    assert "endpoints" not in out.get_relation(rel.id).local_app_data


def test_a_settled_model_writes_the_endpoint_once(ctx, writes: Writes):
    rel = otlp(remote_app_data=library_rules({"groups": [GROUP]}))
    state = settle(ctx, testing.State(leader=True, relations={rel, peers(), upstream()}))
    writes.clear()
    ctx.run(ctx.on.update_status(), state)
    ctx.run(ctx.on.relation_changed(state.get_relation(rel.id), remote_unit=0), state)
    assert writes.calls == []


# -- the senders' rules -----------------------------------------------------------------------


def test_the_senders_rules_are_passed_upstream_with_the_remote_write_ones(ctx):
    rel = otlp(remote_app_data=library_rules({"groups": [GROUP]}))
    rw = testing.Relation(
        "receive-remote-write",
        remote_app_name="agent",
        remote_app_data={"alert_rules": json.dumps({"groups": [RW_GROUP]})},
    )
    up = upstream()
    state = testing.State(leader=True, relations={rel, rw, up, peers()})
    out = ctx.run(ctx.on.relation_changed(rel, remote_unit=0), state)
    forwarded = json.loads(out.get_relation(up.id).local_app_data["alert_rules"])
    assert forwarded == {"groups": [RW_GROUP, GROUP]}


def test_a_collector_on_both_endpoints_is_not_passed_upstream_twice(ctx):
    rel = otlp(remote_app_data=library_rules({"groups": [GROUP]}))
    rw = testing.Relation(
        "receive-remote-write",
        remote_app_name="otelcol",
        remote_app_data={"alert_rules": json.dumps({"groups": [GROUP]})},
    )
    up = upstream()
    out = ctx.run(
        ctx.on.update_status(), testing.State(leader=True, relations={rel, rw, up, peers()})
    )
    assert json.loads(out.get_relation(up.id).local_app_data["alert_rules"]) == {"groups": [GROUP]}


def test_the_library_reads_what_our_reader_reads():
    bag = library_rules({"groups": [GROUP]})
    assert otlp_relation.promql_groups(bag) == [GROUP]
    assert otlp_relation.promql_groups(library_rules({})) == []
    assert otlp_relation.promql_groups({}) == []


def test_a_sender_that_removes_its_rules_removes_them_upstream(ctx):
    rel = otlp(remote_app_data=library_rules({"groups": [GROUP]}))
    up = upstream()
    state = settle(ctx, testing.State(leader=True, relations={rel, up, peers()}))
    assert "alert_rules" in state.get_relation(up.id).local_app_data
    old = state.get_relation(rel.id)
    gone = dataclasses.replace(old, remote_app_data={})
    out = ctx.run(ctx.on.relation_changed(gone, remote_unit=0), replace_relation(state, old, gone))
    assert "alert_rules" not in out.get_relation(up.id).local_app_data


# -- the allow-list ---------------------------------------------------------------------------


def test_each_otlp_sender_unit_joins_the_write_allow_list(ctx, machine: FakeWorkload):
    rel = otlp(
        remote_units_data={
            0: {"egress-subnets": "10.0.0.7/32", "ingress-address": "10.0.0.7"},
            1: {"egress-subnets": "10.0.9.0/24"},
        }
    )
    ctx.run(ctx.on.update_status(), testing.State(leader=False, relations={rel, peers()}))
    allowed = machine.settings["allowed-clients"].split(",")
    assert allowed[:2] == ["127.0.0.1", "::1"]
    assert {"10.0.0.7", "10.0.9.0/24"} <= set(allowed)


def test_an_otlp_sender_may_not_open_the_allow_list_to_everyone(ctx, machine: FakeWorkload):
    rel = otlp(remote_units_data={0: {"egress-subnets": "0.0.0.0/0,10.0.0.7/32"}})
    out = ctx.run(ctx.on.update_status(), testing.State(relations={rel, peers()}))
    assert "0.0.0.0/0" not in machine.settings["allowed-clients"]
    assert "10.0.0.7" in machine.settings["allowed-clients"].split(",")
    assert "too-wide network 0.0.0.0/0 from otelcol/0" in out.unit_status.message


# -- junk in the sender's databag -------------------------------------------------------------


def _b64(data: bytes) -> str:
    """Base64 as a JSON string: the shape of the library's ``rules`` value."""
    return json.dumps(base64.b64encode(data).decode())


BOMB = _b64(lzma.compress(b"[" + b" " * (16 << 20) + b"]"))
JUNK_RULES = {
    "not-base64": json.dumps("{not base64!}"),
    "not-a-json-string": base64.b64encode(lzma.compress(b"{}")).decode(),
    "not-lzma": _b64(b"plain bytes, not an xz stream"),
    "truncated-lzma": _b64(lzma.compress(b'{"promql": {}}')[:-8]),
    "not-utf8": _b64(lzma.compress(b"\xff\xfe\xfd")),
    "not-json": _b64(lzma.compress(b"{promql")),
    "deep-json": _b64(lzma.compress(b"[" * 5000 + b"]" * 5000)),
    "bomb": BOMB,
    "too-long": json.dumps("A" * (otlp_relation.MAX_RULES_CHARS + 4)),
    "promql-not-object": _b64(lzma.compress(b'{"promql": [1, 2]}')),
    "groups-not-list": _b64(lzma.compress(b'{"promql": {"groups": "x"}}')),
    "rules-missing": _b64(lzma.compress(b'{"promql": {"groups": [{"name": "a"}]}}')),
    "not-object": _b64(lzma.compress(b"[1]")),
}


@pytest.mark.parametrize("junk", list(JUNK_RULES), ids=list(JUNK_RULES))
def test_junk_rules_are_refused_with_a_reason_that_does_not_echo_them(junk: str):
    with pytest.raises(RemoteDataError) as caught:
        otlp_relation.promql_groups({"rules": JUNK_RULES[junk]})
    assert JUNK_RULES[junk][:40] not in str(caught.value)


def test_the_decompression_bomb_is_stopped_at_the_bound():
    assert len(BOMB) < 20_000  # small on the wire...
    with pytest.raises(RemoteDataError, match="decompresses to more than"):
        otlp_relation.decode_rules(BOMB)  # ...refused without inflating 16 MiB


def test_the_library_reader_itself_would_fail_the_hook_on_junk():
    """Why the library's ``OtlpProvider.rules`` is not used on remote data: its validator
    lets ``LZMAError`` escape (not a ValidationError), which would fail every hook."""
    with pytest.raises(lzma.LZMAError):
        _OtlpRequirerAppData.model_validate(
            {"rules": json.loads(JUNK_RULES["not-lzma"]), "metadata": {"model": "m"}}
        )
    with pytest.raises(ValidationError):  # what it does handle
        _OtlpRequirerAppData.model_validate({"rules": {"promql": 1}, "metadata": {}})


@pytest.mark.parametrize("junk", list(JUNK_RULES), ids=list(JUNK_RULES))
def test_junk_rules_keep_the_others_and_are_named(ctx, machine: FakeWorkload, junk: str):
    bad = otlp(remote_app_name="evil", remote_app_data={"rules": JUNK_RULES[junk]})
    good = otlp(remote_app_name="otelcol", remote_app_data=library_rules({"groups": [GROUP]}))
    up = upstream()
    state = testing.State(leader=True, relations={bad, good, up, peers()})
    out = ctx.run(ctx.on.relation_changed(bad, remote_unit=0), state)
    assert json.loads(out.get_relation(up.id).local_app_data["alert_rules"]) == {"groups": [GROUP]}
    assert "ignored bad otlp rules from evil" in out.unit_status.message
    assert json.loads(out.get_relation(bad.id).local_app_data["endpoints"])  # still advertised
    assert machine.settings["listen-address"].endswith(":9099")


def test_garbage_in_every_key_of_the_senders_databags_never_fails_the_hook(ctx):
    junk = "\x00\udcff" + "[" * 3000
    bag = {key: junk for key in ("rules", "metadata", "endpoints", "event", "x")}
    units = {0: {**bag, "egress-subnets": junk, "ingress-address": junk}}
    rel = otlp(remote_app_data=bag, remote_units_data=units)
    for leader in (True, False):
        state = testing.State(leader=leader, relations={rel, peers(), upstream()})
        for event in (
            ctx.on.relation_joined(rel, remote_unit=0),
            ctx.on.relation_changed(rel, remote_unit=0),
            ctx.on.relation_departed(rel, remote_unit=0, departing_unit=0),
            ctx.on.relation_broken(rel),
        ):
            out = ctx.run(event, state)
            assert out.unit_status.name != "error"


def test_a_new_leader_republishes_its_own_address(ctx):
    """The list is per application: after a leader change the senders follow the new leader."""
    rel = otlp()
    old = testing.Network("receive-otlp", ingress_addresses=["10.1.2.3"])
    state = testing.State(leader=True, relations={rel, peers(1)}, networks={old})
    first = ctx.run(ctx.on.relation_joined(rel, remote_unit=0), state)
    published = first.get_relation(rel.id).local_app_data["endpoints"]
    assert "10.1.2.3" in published
    new = testing.Network("receive-otlp", ingress_addresses=["10.1.2.4"])
    moved = dataclasses.replace(first, networks={new})
    out = ctx.run(ctx.on.leader_elected(), moved)
    (endpoint,) = json.loads(out.get_relation(rel.id).local_app_data["endpoints"])
    assert endpoint["endpoint"] == "http://10.1.2.4:9099/api/v1/otlp"


def test_the_advertised_path_plus_v1_metrics_is_a_route_of_the_bridge():
    """The charm and the daemon agree on the OTLP path: the route table (read from the
    bridge's source, whose dependencies this environment lacks) serves what we advertise."""
    import ast
    from pathlib import Path

    routes = Path(__file__).resolve().parents[2] / "bridge/grafana_agent_bridge/api/routes.py"
    served = {
        node.args[0].value
        for node in ast.walk(ast.parse(routes.read_text()))
        if isinstance(node, ast.Call)
        and getattr(node.func, "id", None) == "ingest"
        and node.args
        and isinstance(node.args[0], ast.Constant)
    }
    assert f"{otlp_relation.BASE_PATH}/v1/metrics" in served
    assert "/api/v1/write" in served
