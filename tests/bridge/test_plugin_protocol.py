"""The plugin's contract with Grafana: proto field numbers, handshake, settings, install layout."""

import json
import re
import shutil
import subprocess
import sys
import urllib.parse
from pathlib import Path

import pytest
import yaml

from grafana_agent_bridge.config import BridgeConfig
from grafana_agent_bridge.plugin import install as plugin_install
from grafana_agent_bridge.plugin import pluginv2_pb2 as pb
from grafana_agent_bridge.plugin.server import Handshake, HandshakeError, handshake_line
from grafana_agent_bridge.plugin.service import forwarded_headers, is_from_alert
from grafana_agent_bridge.plugin.upstream import DatasourceSettings, SettingsError

PROTO = Path(pb.__file__).with_name("pluginv2.proto")

# Field numbers Grafana's SDK uses (facts §D); a wrong number silently drops the field.
GRAFANA_FIELDS = {
    "PluginContext": {"orgId": 1, "pluginId": 2, "user": 3, "dataSourceInstanceSettings": 5},
    "DataSourceInstanceSettings": {
        "id": 1,
        "name": 2,
        "url": 3,
        "user": 4,
        "database": 5,
        "basicAuthEnabled": 6,
        "basicAuthUser": 7,
        "jsonData": 8,
        "decryptedSecureJsonData": 9,
        "lastUpdatedMS": 10,
        "uid": 11,
    },
    "DataQuery": {
        "refId": 1,
        "maxDataPoints": 2,
        "intervalMS": 3,
        "timeRange": 4,
        "json": 5,
        "queryType": 6,
    },
    "TimeRange": {"fromEpochMS": 1, "toEpochMS": 2},
    "QueryDataRequest": {"pluginContext": 1, "headers": 2, "queries": 3},
    "QueryDataResponse": {"responses": 1},
    "DataResponse": {"frames": 1, "error": 2, "jsonMeta": 3, "status": 4, "errorSource": 5},
    "CallResourceRequest": {
        "pluginContext": 1,
        "path": 2,
        "method": 3,
        "url": 4,
        "headers": 5,
        "body": 6,
    },
    "CallResourceResponse": {"code": 1, "headers": 2, "body": 3},
    "CheckHealthRequest": {"pluginContext": 1},
    "CheckHealthResponse": {"status": 1, "message": 2, "jsonDetails": 3},
    "CollectMetricsRequest": {"pluginContext": 1},
    "CollectMetricsResponse": {"metrics": 1},
    "CollectMetricsResponse.Payload": {"prometheus": 1},
}


@pytest.mark.parametrize("message", sorted(GRAFANA_FIELDS))
def test_generated_messages_use_grafanas_field_numbers(message):
    outer, _, inner = message.partition(".")
    descriptor = getattr(pb, outer).DESCRIPTOR
    if inner:
        descriptor = descriptor.nested_types_by_name[inner]
    numbers = {f.name: f.number for f in descriptor.fields}
    for name, number in GRAFANA_FIELDS[message].items():
        assert numbers[name] == number, f"{message}.{name}"


def test_generated_code_matches_the_proto_file():
    # Every "type name = N;" in the .proto must be in the committed descriptor: regenerate
    # (regenerate-proto.sh) after editing the .proto.
    text = PROTO.read_text()
    blocks = re.findall(r"^message (\w+) \{(.*?)^\}", text, re.S | re.M)
    assert blocks
    for name, raw_body in blocks:
        nested = re.sub(r"(enum|message) \w+ \{.*?\}", "", raw_body, flags=re.S)
        body = re.sub(r"//.*", "", nested)
        declared = {m.group(1): int(m.group(2)) for m in re.finditer(r"(\w+) = (\d+);", body)}
        generated = {f.name: f.number for f in getattr(pb, name).DESCRIPTOR.fields}
        assert generated == declared, name
    services = {s.name for s in pb.DESCRIPTOR.services_by_name.values()}
    assert services == {"Data", "Diagnostics", "Resource"}
    assert pb.DESCRIPTOR.package == "pluginv2"


def test_handshake_requires_grafanas_cookie_and_protocol_2():
    env = {
        "grafana_plugin_type": "datasource",
        "PLUGIN_PROTOCOL_VERSIONS": "1,2",
        "PLUGIN_MIN_PORT": "10000",
        "PLUGIN_MAX_PORT": "25000",
    }
    assert Handshake.from_env(env) == Handshake(10000, 25000)
    for broken, message in (
        ({"grafana_plugin_type": "app"}, "magic cookie"),
        ({"PLUGIN_PROTOCOL_VERSIONS": "1"}, "speaks version 2"),
        ({"PLUGIN_MIN_PORT": "x"}, "PLUGIN_MIN_PORT"),
        ({"PLUGIN_MIN_PORT": "30000"}, "port range"),
    ):
        with pytest.raises(HandshakeError, match=message):
            Handshake.from_env({**env, **broken})
    assert handshake_line(12345) == "1|2|tcp|127.0.0.1:12345|grpc"


def settings(url="http://127.0.0.1:9090/", json_data=None, secure=None, **kw):
    return pb.DataSourceInstanceSettings(
        url=url,
        jsonData=json.dumps(json_data or {}).encode(),
        decryptedSecureJsonData=secure or {},
        **kw,
    )


def test_settings_carry_auth_headers_method_and_timeout():
    got = DatasourceSettings.from_proto(
        settings(
            json_data={
                "httpMethod": "get",
                "httpHeaderName1": "Authorization",
                "httpHeaderName2": "X-Scope-OrgID",
                "timeInterval": "30s",
                "queryTimeout": "1m",
                "customQueryParameters": "dedup=true",
            },
            secure={"httpHeaderValue1": "Bearer s3cret", "httpHeaderValue2": "tenant"},
        )
    )
    assert got.url == "http://127.0.0.1:9090"
    assert got.http_method == "GET"
    assert got.headers == {"Authorization": "Bearer s3cret", "X-Scope-OrgID": "tenant"}
    assert (got.scrape_interval, got.query_timeout, got.timeout_s) == ("30s", "1m", 60.0)
    assert got.custom_query_parameters == "dedup=true"
    basic = DatasourceSettings.from_proto(
        settings(
            basicAuthEnabled=True, basicAuthUser="grafana", secure={"basicAuthPassword": "pw"}
        )
    )
    assert basic.headers == {"Authorization": "Basic Z3JhZmFuYTpwdw=="}
    assert basic.http_method == "POST"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"url": ""}, "no URL"),
        ({"url": "ftp://x"}, "not an http"),
        ({"json_data": {"httpMethod": "PUT"}}, "httpMethod"),
        ({"json_data": {"queryTimeout": "soon"}}, "queryTimeout"),
    ],
)
def test_unusable_settings_are_named(kwargs, message):
    with pytest.raises(SettingsError, match=message):
        DatasourceSettings.from_proto(settings(**kwargs))
    null = DatasourceSettings.from_proto(
        pb.DataSourceInstanceSettings(url="http://x", jsonData=b"null")
    )
    assert null.http_method == "POST"
    bad_json = pb.DataSourceInstanceSettings(url="http://x", jsonData=b"{")
    with pytest.raises(SettingsError, match="jsonData"):
        DatasourceSettings.from_proto(bad_json)


def test_alert_headers_are_recognised_and_forwarded():
    headers = {
        "FromAlert": "true",
        "http_X-Rule-Uid": "abc",
        "X-Grafana-Org-Id": "1",
        "http_Authorization": "Bearer user-token",
        "Cookie": "grafana_session=1",
    }
    assert is_from_alert(headers)
    assert is_from_alert({"fromalert": "TRUE"})
    assert not is_from_alert({"FromAlert": "false"})
    assert forwarded_headers(headers) == {
        "FromAlert": "true",
        "X-Rule-Uid": "abc",
        "X-Grafana-Org-Id": "1",
    }


def test_install_lays_out_a_loadable_plugin_directory(tmp_path):
    target = tmp_path / "plugins" / plugin_install.PLUGIN_ID
    launcher = plugin_install.install(target, arch="arm64", own_env=False)
    assert launcher.name == "gpx_agentbridge_linux_arm64"
    manifest = json.loads((target / "plugin.json").read_text())
    assert re.fullmatch(r"[0-9a-z]+-([0-9a-z]+-)?datasource", manifest["id"])
    assert manifest["type"] == "datasource"
    assert manifest["backend"] is True
    assert manifest["alerting"] is True
    assert manifest["executable"] == "gpx_agentbridge"
    assert (target / manifest["info"]["logos"]["small"]).is_file()
    assert (target / "module.js").is_file()
    assert launcher.stat().st_mode & 0o111 == 0o111
    assert launcher.read_text().startswith("#!/bin/sh\n")
    # The launcher runs this very interpreter; without Grafana's cookie it refuses to serve.
    done = subprocess.run(
        [str(launcher)], check=False, capture_output=True, text=True, timeout=30, env={}
    )
    assert done.returncode == 1
    assert "magic cookie" in done.stderr
    assert sys.executable in launcher.read_text()


def test_install_refuses_a_relative_interpreter(tmp_path):
    with pytest.raises(ValueError, match="absolute"):
        plugin_install.install(tmp_path, python="python3")
    assert plugin_install.go_arch("x86_64") == "amd64"
    assert plugin_install.go_arch("aarch64") == "arm64"


def test_install_refuses_an_interpreter_that_cannot_start_the_plugin(tmp_path):
    """Without the plugin's packages the install stops with the reason, and leaves nothing
    that Grafana would load (no manifest) or start (no executable)."""
    bare = tmp_path / "bare"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(bare)], check=True)
    target = tmp_path / "plugin"
    with pytest.raises(plugin_install.InstallError, match="No module named"):
        plugin_install.install(target, python=str(bare / "bin" / "python"), own_env=False)
    assert not (target / "plugin.json").exists()
    assert not (target / plugin_install.executable_name()).exists()


def test_install_whose_packages_cannot_be_had_is_refused_and_cleaned_up(tmp_path):
    """An air-gapped install from an empty wheelhouse fails with pip's reason; the
    half-made virtualenv is removed."""
    wheelhouse = tmp_path / "wheels"
    wheelhouse.mkdir()
    target = tmp_path / "plugin"
    with pytest.raises(plugin_install.InstallError, match="No matching distribution"):
        plugin_install.install(target, pip_args=["--no-index", f"--find-links={wheelhouse}"])
    assert not (target / plugin_install.VENV).exists()
    assert not (target / "plugin.json").exists()
    assert not (target / plugin_install.executable_name()).exists()


def test_plugin_requirements_select_the_plugin_extra():
    requires = [
        "numpy<3,>=1.26",
        'grpcio<2,>=1.60; extra == "plugin"',
        "opentelemetry-sdk<2,>=1.25; extra == 'tracing'",
        'tomli; python_version < "3.11"',
    ]
    assert plugin_install.plugin_requirements(requires) == [
        "numpy<3,>=1.26",
        "grpcio<2,>=1.60",
        'tomli; python_version < "3.11"',
    ]


@pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed")
def test_frontend_module_is_valid_javascript(tmp_path):
    plugin_install.install(tmp_path, own_env=False)
    done = subprocess.run(
        ["node", "--check", str(tmp_path / "module.js")],
        check=False,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode == 0, done.stderr


def test_the_readme_provisioning_example_points_at_the_bridge_port():
    """The datasource example an operator copies must reach a bridge on its default port."""
    readme = (Path(plugin_install.__file__).parent / "README.md").read_text()
    block = readme.split("## Provision a datasource", 1)[1].split("```yaml", 1)[1].split("```")[0]
    url = yaml.safe_load(block)["datasources"][0]["url"]
    assert urllib.parse.urlsplit(url).port == BridgeConfig().listen[1]
