"""charmcraft.yaml: valid for charmcraft, and declaring what SPEC §5 fixes."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest
import yaml

from tests.support import SHARED, require_shared

ROOT = Path(__file__).resolve().parents[2]
SCHEMA = SHARED / "schemas" / "charmcraft.json"


@pytest.fixture(scope="module")
def meta() -> dict:
    return yaml.safe_load((ROOT / "charmcraft.yaml").read_text())


def test_validates_against_the_charmcraft_schema(meta):
    require_shared(SCHEMA, "the charmcraft schema")
    jsonschema.validate(meta, json.loads(SCHEMA.read_text()))


def test_a_broken_file_would_fail_the_schema(meta):
    require_shared(SCHEMA, "the charmcraft schema")
    broken = {k: v for k, v in meta.items() if k != "parts"}
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(broken, json.loads(SCHEMA.read_text()))


def test_machine_charm_for_jammy_and_noble_on_juju_3_6(meta):
    assert "containers" not in meta
    assert meta["assumes"] == ["juju >= 3.6"]
    bases = {name.split(":")[0] for name in meta["platforms"]}
    assert bases == {"ubuntu@22.04", "ubuntu@24.04"}


def test_every_endpoint_of_the_spec(meta):
    declared = {
        (role, name, spec["interface"])
        for role in ("provides", "requires", "peers")
        for name, spec in meta[role].items()
    }
    assert declared == {
        ("provides", "grafana-source", "grafana_datasource"),
        ("provides", "send-datasource", "grafana_datasource_exchange"),
        ("requires", "receive-datasource", "grafana_datasource_exchange"),
        ("provides", "receive-remote-write", "prometheus_remote_write"),
        ("provides", "receive-otlp", "otlp"),
        ("provides", "cos-agent", "cos_agent"),
        ("requires", "send-remote-write", "prometheus_remote_write"),
        ("requires", "charm-tracing", "tracing"),
        ("requires", "workload-tracing", "tracing"),
        ("peers", "peers", "grafana_agent_bridge_peers"),
    }
    assert meta["requires"]["charm-tracing"]["limit"] == 1
    assert meta["provides"]["cos-agent"]["limit"] == 1


def test_snap_resource_and_actions(meta):
    assert meta["resources"]["bridge-snap"]["type"] == "file"
    assert set(meta["actions"]) == {"list-datasources", "query"}
    assert meta["actions"]["query"]["required"] == ["query"]


def test_config_defaults(meta):
    options = meta["config"]["options"]
    assert options["port"] == {**options["port"], "type": "int", "default": 9099}
    assert options["datasource-url"]["default"] == ""
    assert options["exemplar-trace-id-label"]["default"] == "trace_id"
    assert options["query-auth"] == {**options["query-auth"], "type": "boolean", "default": True}
    assert options["snap-channel"]["default"] == "latest/stable"
    for name, option in options.items():
        assert option.get("description"), name


def test_packed_dependencies_are_the_projects(meta):
    import tomllib

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    packed = meta["parts"]["charm"]["charm-binary-python-packages"]
    assert sorted(packed) == sorted(project["dependencies"])
