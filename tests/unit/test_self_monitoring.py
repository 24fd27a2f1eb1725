"""``cos-agent``: what the collector on the machine gets from us, and the rules themselves.

The databag is read back with the vendored library's own models (what the collector runs);
the alert rules go through Debian's ``promtool`` (``check rules`` and the ``test rules``
cases in tests/rules/); every metric the rules and the dashboard use must be one the bridge
exports.
"""

from __future__ import annotations

import base64
import dataclasses
import json
import lzma
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from charm_builders import APP, peers
from ops import testing

from charm import GrafanaAgentBridgeCharm
from charms.grafana_agent.v0.cos_agent import CosAgentProviderUnitData
from tests.fake_workload import FakeWorkload

ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "src" / "prometheus_alert_rules"
RULE_TESTS = ROOT / "tests" / "rules"
DASHBOARDS = ROOT / "src" / "grafana_dashboards"
BRIDGE_SOURCES = ROOT / "bridge" / "grafana_agent_bridge"
PROMTOOL = os.environ.get("PROMTOOL_BIN") or shutil.which("promtool") or "/usr/bin/promtool"
ALERTS = {
    "BridgeForwardingBehind",
    "BridgeForwardingFarBehind",
    "BridgeForwardedSamplesDropped",
    "BridgeFeedSamplesLost",
    "BridgeSamplesRejected",
    "BridgeStoreSamplesRejected",
    "BridgeWritesFailing",
    "BridgeOTLPDataPointsRejected",
    "BridgeOTLPWritesFailing",
    "BridgeDiskNearlyFull",
    "BridgeDiskFull",
    "BridgeDiskFillingUp",
    "BridgeWALRepaired",
    "BridgeBlocksCorrupt",
    "BridgeQueryTimeouts",
}


@pytest.fixture
def ctx(tmp_path: Path) -> testing.Context[GrafanaAgentBridgeCharm]:
    """A charm directory holding our ``src/`` (rules, dashboards), as in the packed charm."""
    (tmp_path / "src").symlink_to(ROOT / "src")
    return testing.Context(GrafanaAgentBridgeCharm, app_name=APP, charm_root=tmp_path)


def cos_agent(**kw: Any) -> testing.Relation:
    kw.setdefault("remote_app_name", "otelcol")
    return testing.Relation("cos-agent", interface="cos_agent", limit=1, **kw)


def unit_data(ctx, state: testing.State, relation: testing.Relation) -> CosAgentProviderUnitData:
    out = ctx.run(ctx.on.relation_joined(relation, remote_unit=0), state)
    raw = out.get_relation(relation.id).local_unit_data[CosAgentProviderUnitData.KEY]
    return CosAgentProviderUnitData.model_validate_json(raw)


def dashboards_in(data: CosAgentProviderUnitData) -> list[dict[str, Any]]:
    return [json.loads(lzma.decompress(base64.b64decode(d))) for d in data.dashboards]


# -- the cos-agent databag --------------------------------------------------------------------


@pytest.mark.parametrize("leader", [True, False])
def test_every_unit_gives_the_collector_its_loopback_metrics(ctx, leader: bool):
    rel = cos_agent()
    data = unit_data(ctx, testing.State(leader=leader, relations={rel, peers()}), rel)
    (job,) = data.metrics_scrape_jobs
    assert job["metrics_path"] == "/metrics"
    assert job["static_configs"] == [{"targets": ["127.0.0.1:9099"]}]
    assert job["job_name"].startswith("grafana-agent-bridge_grafana_agent_bridge_")
    assert data.log_slots == []  # the daemon logs to the journal (docs/charm.md)


def test_a_new_port_reaches_the_collector_on_config_changed(ctx):
    rel = cos_agent()
    joined = ctx.run(
        ctx.on.relation_joined(rel, remote_unit=0), testing.State(relations={rel, peers()})
    )
    before = joined.get_relation(rel.id).local_unit_data["config"]
    assert '"127.0.0.1:9099"' in before
    changed = ctx.run(ctx.on.config_changed(), dataclasses.replace(joined, config={"port": 1234}))
    after = CosAgentProviderUnitData.model_validate_json(
        changed.get_relation(rel.id).local_unit_data["config"]
    )
    assert after.metrics_scrape_jobs[0]["static_configs"] == [{"targets": ["127.0.0.1:1234"]}]


def test_an_invalid_other_option_keeps_the_scrape_job(ctx):
    rel = cos_agent()
    state = testing.State(
        relations={rel, peers()}, config={"port": 4321, "retention-time": "soon"}
    )
    data = unit_data(ctx, state, rel)
    assert data.metrics_scrape_jobs[0]["static_configs"] == [{"targets": ["127.0.0.1:4321"]}]


def test_the_rules_and_the_dashboard_reach_the_collector(ctx):
    rel = cos_agent()
    data = unit_data(ctx, testing.State(relations={rel, peers()}), rel)
    alerts = {
        rule["alert"]
        for group in data.metrics_alert_rules["groups"]
        for rule in group["rules"]
        if "alert" in rule
    }
    assert alerts >= ALERTS
    ours = [
        rule
        for group in data.metrics_alert_rules["groups"]
        for rule in group["rules"]
        if rule.get("alert") in ALERTS
    ]
    # The library labels each rule with our Juju topology, so COS can route the alerts.
    assert all(rule["labels"]["juju_application"] == "grafana-agent-bridge" for rule in ours)
    (dashboard,) = dashboards_in(data)
    assert dashboard["title"] == "Grafana Agent Bridge"
    assert "charm: grafana-agent-bridge" in dashboard["tags"]


def test_nothing_is_written_on_relation_created(ctx):
    rel = cos_agent()
    out = ctx.run(ctx.on.relation_created(rel), testing.State(relations={rel, peers()}))
    assert "config" not in out.get_relation(rel.id).local_unit_data


def test_garbage_from_the_collector_never_fails_the_hook(ctx, machine: FakeWorkload):
    junk = "\x00\udcff" + "{" * 3000
    bag = {key: junk for key in ("config", "receivers", "tracing_protocols", "x")}
    rel = cos_agent(remote_app_data=bag, remote_units_data={0: dict(bag)})
    for leader in (True, False):
        state = testing.State(leader=leader, relations={rel, peers()})
        for event in (
            ctx.on.relation_created(rel),
            ctx.on.relation_joined(rel, remote_unit=0),
            ctx.on.relation_changed(rel, remote_unit=0),
            ctx.on.config_changed(),
            ctx.on.relation_broken(rel),
        ):
            out = ctx.run(event, state)
            assert out.unit_status.name != "error"
        assert machine.settings["listen-address"].endswith(":9099")


# -- the rules, through promtool --------------------------------------------------------------


def promtool() -> str:
    if not Path(PROMTOOL).exists():
        if os.environ.get("CI"):
            pytest.fail(f"CI is set but there is no promtool at {PROMTOOL}")
        pytest.skip("promtool is not installed (apt-get install prometheus); CI requires it")
    return PROMTOOL


def run(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, check=False, cwd=cwd, capture_output=True, text=True, timeout=120)


def test_promtool_accepts_the_rule_files():
    files = sorted(RULES.glob("*.rules"))
    assert files
    result = run(promtool(), "check", "rules", *map(str, files))
    assert result.returncode == 0, result.stdout + result.stderr


def test_promtool_unit_tests_of_the_rules_pass():
    tests = sorted(RULE_TESTS.glob("*_test.yaml"))
    assert tests
    result = run(promtool(), "test", "rules", *(t.name for t in tests), cwd=RULE_TESTS)
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_alert_has_a_promtool_case():
    tested = set(
        re.findall(
            r"alertname: (\w+)", (RULE_TESTS / "grafana_agent_bridge_test.yaml").read_text()
        )
    )
    assert tested == ALERTS


def test_the_promtool_cases_catch_a_broken_threshold(tmp_path: Path):
    """The cases are not vacuous: loosen one threshold and they fail."""
    broken = tmp_path / "src" / "prometheus_alert_rules"
    broken.mkdir(parents=True)
    text = (RULES / "grafana_agent_bridge.rules").read_text()
    (broken / "grafana_agent_bridge.rules").write_text(
        text.replace("bridge_forward_lag_seconds > 900", "bridge_forward_lag_seconds > 9000")
    )
    cases = tmp_path / "tests" / "rules"
    cases.mkdir(parents=True)
    shutil.copy(RULE_TESTS / "grafana_agent_bridge_test.yaml", cases)
    result = run(promtool(), "test", "rules", "grafana_agent_bridge_test.yaml", cwd=cases)
    assert result.returncode != 0
    assert "BridgeForwardingBehind" in result.stdout + result.stderr


def test_the_dashboard_queries_are_valid_promql(tmp_path: Path):
    """Each panel query, as a recording rule, through ``promtool check rules``."""
    exprs = dashboard_exprs()
    rules = {
        "groups": [
            {
                "name": "dashboard",
                "rules": [
                    {"record": f"panel_{i}", "expr": e.replace("$__rate_interval", "5m")}
                    for i, e in enumerate(exprs)
                ],
            }
        ]
    }
    path = tmp_path / "dashboard.rules"
    path.write_text(yaml.safe_dump(rules))
    result = run(promtool(), "check", "rules", str(path))
    assert result.returncode == 0, result.stdout + result.stderr


# -- the metric names -------------------------------------------------------------------------


def dashboard_exprs() -> list[str]:
    (path,) = DASHBOARDS.glob("*.json")
    dashboard = json.loads(path.read_text())
    return [t["expr"] for p in dashboard["panels"] for t in p.get("targets", [])]


def rule_exprs() -> list[str]:
    exprs: list[str] = []
    for path in RULES.glob("*.rules"):
        for group in yaml.safe_load(path.read_text())["groups"]:
            exprs += [rule["expr"] for rule in group["rules"]]
    return exprs


def exported_names() -> set[str]:
    """Every ``bridge_*`` metric name written as a string in the bridge's sources."""
    names: set[str] = set()
    for path in BRIDGE_SOURCES.rglob("*.py"):
        names |= set(re.findall(r"[\"'](bridge_[a-z_]+)[\"']", path.read_text()))
    return names


@pytest.mark.parametrize("where", ["rules", "dashboard"])
def test_every_metric_used_is_one_the_bridge_exports(where: str):
    exprs = rule_exprs() if where == "rules" else dashboard_exprs()
    used = {name for e in exprs for name in re.findall(r"\bbridge_[a-z_]+", e)}
    exported = exported_names()
    assert len(exported) > 40
    histograms = {n.removesuffix("_bucket") for n in used if n.endswith("_bucket")}
    missing = {n for n in used if n not in exported} - {f"{h}_bucket" for h in histograms}
    assert not missing
    assert histograms <= exported


@pytest.mark.parametrize(
    ("value", "port"),
    [(1234, 1234), (65535, 65535), (0, 9099), (70000, 9099), (True, 9099), ("9100", 9099)],
)
def test_the_scrape_port_is_the_option_only_when_it_is_a_port(value: object, port: int):
    import self_monitoring

    assert self_monitoring.configured_port({"port": value}) == port  # type: ignore[arg-type]
