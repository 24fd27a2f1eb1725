"""Deploy two units on LXD, feed them remote-write from grafana-agent, query through the charm.

Needs a Juju controller on LXD (conftest skips otherwise). The cross-model Grafana test also
needs a Kubernetes cloud known to that controller, named in ``K8S_CLOUD``.
"""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path

import pytest
import yaml
from pytest_operator.plugin import OpsTest

ROOT = Path(__file__).resolve().parents[2]
APP = yaml.safe_load((ROOT / "charmcraft.yaml").read_text())["name"]
BASE = "ubuntu@24.04"


@pytest.mark.abort_on_fail
async def test_deploy_two_units(ops_test: OpsTest) -> None:
    assert ops_test.model is not None
    charm = await ops_test.build_charm(ROOT)
    snap = os.environ.get("BRIDGE_SNAP")  # a locally built snap for air-gapped runs
    resources = {"bridge-snap": snap} if snap else None
    config = {"snap-channel": os.environ.get("BRIDGE_SNAP_CHANNEL", "latest/edge")}
    await ops_test.model.deploy(
        charm,
        application_name=APP,
        num_units=2,
        base=BASE,
        resources=resources,
        config=config,
    )
    await ops_test.model.wait_for_idle(
        apps=[APP], status="active", timeout=1200, wait_for_exact_units=2
    )


async def test_remote_write_from_grafana_agent_is_queryable(ops_test: OpsTest) -> None:
    assert ops_test.model is not None
    await ops_test.model.deploy("ubuntu", application_name="workload", base=BASE)
    await ops_test.model.deploy("grafana-agent", application_name="agent", channel="latest/stable")
    await ops_test.model.integrate("workload:juju-info", "agent:juju-info")
    await ops_test.model.integrate("agent:send-remote-write", f"{APP}:receive-remote-write")
    await ops_test.model.wait_for_idle(apps=[APP, "agent", "workload"], timeout=1200)

    # grafana-agent writes to every unit's URL: each bridge must hold the workload's series.
    expr = 'count({__name__=~".+", juju_application="workload"})'
    for unit in ops_test.model.applications[APP].units:
        for _ in range(30):
            action = await unit.run_action("query", query=expr)
            result = await action.wait()
            assert result.status == "completed", result.results
            assert result.results["result-type"] == "vector"
            data = json.loads(result.results["result"])
            if data:
                break
            await asyncio.sleep(10)
        else:
            pytest.fail(f"no data from grafana-agent arrived at {unit.name} within the wait")
        assert float(data[0]["value"][1]) >= 1


async def test_query_api_requires_the_token(ops_test: OpsTest) -> None:
    assert ops_test.model is not None
    unit = ops_test.model.applications[APP].units[0]
    url = "http://127.0.0.1:9099/api/v1/query?query=up"
    _, code, _ = await ops_test.juju(
        "exec",
        "--unit",
        unit.name,
        "--",
        "curl",
        "-s",
        "-o",
        "/dev/null",
        "-w",
        "%{http_code}",
        url,
    )
    assert code.strip() == "401"
    action = await unit.run_action("query", query="up{")
    result = await action.wait()
    assert result.status == "failed"
    assert "bad_data" in result.safe_data.get("message", "")


async def test_cross_model_grafana_registration(ops_test: OpsTest) -> None:
    cloud = os.environ.get("K8S_CLOUD")
    if not cloud:
        pytest.skip("K8S_CLOUD is not set: no Kubernetes cloud to deploy Grafana on")
    assert ops_test.model is not None
    cos = await ops_test.track_model("cos", cloud_name=cloud)
    await cos.deploy("grafana-k8s", application_name="grafana", channel="latest/edge", trust=True)
    await cos.wait_for_idle(apps=["grafana"], status="active", timeout=1200)
    await cos.create_offer("grafana:grafana-source", "grafana-source")
    await ops_test.model.consume(f"admin/{cos.name}.grafana-source")
    await ops_test.model.integrate(f"{APP}:grafana-source", "grafana-source")
    await ops_test.model.wait_for_idle(apps=[APP], status="active", timeout=1200)

    unit = ops_test.model.applications[APP].units[0]
    action = await unit.run_action("list-datasources")
    result = await action.wait()
    rows = json.loads(result.results["datasources"])
    assert {row["unit"] for row in rows} == {f"{APP}/0", f"{APP}/1"}, rows
    assert all(row["uid"] and row["published"] for row in rows), rows
    assert int(result.results["published"]) == 2
