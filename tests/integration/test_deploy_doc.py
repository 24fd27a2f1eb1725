"""docs/deploy.md's Juju path, run command by command against a controller.

Each ``sh`` block of the guide's "With Juju" section is read with the parser of the guide's
consistency check (``tests/deploy_doc.py``) and its lines are run in order with the ``juju``
CLI, as a reader would type them. Only what names the reader's own world is substituted, and
only here (:class:`Guide`):

- the models: ``machines`` is pytest-operator's model, ``k8s:cos`` a model it adds on the
  Kubernetes cloud named in ``K8S_CLOUD`` (``juju switch`` sets ``JUJU_MODEL`` for the lines
  that follow instead of changing the client's current model);
- the files: ``charmcraft pack`` is pytest-operator's ``build_charm`` of this repository,
  ``snapcraft pack`` is ``$BRIDGE_SNAP`` if set, else ``snapcraft pack`` run here;
- ``<principal-app>``: an ``ubuntu`` application deployed as ``workload`` for the purpose.

The Charmhub deploy runs in a model of its own (the air-gapped deploy creates the same
application) and skips while the charm is not on Charmhub. COS's side is skipped without
``K8S_CLOUD``; the Tempo lines are skipped unless the COS model has a ``tempo`` application
(the guide: "leave its two offers out if you have none"). conftest.py skips it all, with the
reason, when no controller is reachable.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
from typing import Any

import pytest
from pytest_operator.plugin import OpsTest

from tests.deploy_doc import DOC, JUJU_SECTION, ROOT, command_lines, placeholder, section

APP = "grafana-agent-bridge"
BASE = "ubuntu@24.04"
PRINCIPAL = "workload"
TEXT = section(DOC.read_text(), JUJU_SECTION)
TIMEOUT = 1800


def blocks(title: str) -> list[list[list[str]]]:
    """The command lines of each ``sh`` block under the ``###`` heading containing ``title``."""
    parts = re.split(r"\n(?=### )", TEXT)
    (part,) = [p for p in parts if p.startswith("### ") and title in p.splitlines()[0]]
    return [command_lines(b) for b in re.findall(r"```sh\n.*?```", part, flags=re.S)]


# Read at import, so a renamed heading or a missing block fails collection even without Juju.
DEPLOY = blocks("1. Deploy")
SENDERS = blocks("2. Relate a sender")
COS = blocks("3. Connect to COS")
CHECK = blocks("4. Check")


class Guide:
    """Runs the guide's lines, with the reader's names mapped to this test's (module docstring)."""

    def __init__(self, ops_test: OpsTest) -> None:
        self.ops_test = ops_test
        assert ops_test.model_full_name is not None
        self.models = {"machines": ops_test.model_full_name}  # the guide's name -> full name
        self.files: dict[str, str] = {}  # "charm"/"snap" -> the file built here
        self.model = self.models["machines"]

    async def sh(self, *cmd: str) -> str:
        env = {**os.environ, "JUJU_MODEL": self.model}
        if self.ops_test.jujudata:
            env["JUJU_DATA"] = self.ops_test.jujudata.path
        proc = await asyncio.create_subprocess_exec(
            *cmd,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            cwd=str(ROOT),
            env=env,
        )
        out, err = await proc.communicate()
        assert proc.returncode == 0, f"{' '.join(cmd)}: {err.decode() or out.decode()}"
        return out.decode()

    def _substitute(self, arg: str) -> str:
        for suffix, path in self.files.items():
            arg = re.sub(rf"\./{re.escape(APP)}_[^=\s]*\.{suffix}$", path, arg)
        if placeholder(arg):
            arg = re.sub(r"<[^>]*>", PRINCIPAL, arg)
        for name, full in self.models.items():
            if ":" in name:  # k8s:admin/cos.offer -> <controller>:admin/<model>.offer
                controller, model = name.split(":")
                full_controller, full_model = full.split(":")
                arg = arg.replace(
                    f"{controller}:admin/{model}.", f"{full_controller}:admin/{full_model}."
                )
        return arg

    async def run(self, argv: list[str]) -> Any:
        """Run one line of the guide; ``juju run`` lines return the action's JSON result."""
        if argv[:2] == ["juju", "switch"]:
            name = argv[2]
            if name not in self.models:
                pytest.skip(f"`juju switch {name}`: no such model in this test (see K8S_CLOUD)")
            self.model = self.models[name]
            return None
        if argv == ["charmcraft", "pack"]:
            self.files["charm"] = str(await self.ops_test.build_charm(ROOT))
            return None
        if argv == ["snapcraft", "pack"]:
            self.files["snap"] = await self._snap()
            return None
        assert argv[0] == "juju", f"a line of the guide this test does not run: {argv}"
        args = [self._substitute(a) for a in argv]
        if argv[1] == "run":
            out = await self.sh(*args, "--format=json")
            (result,) = json.loads(out).values()
            assert result["status"] == "completed", result
            return result["results"]
        return await self.sh(*args)

    async def _snap(self) -> str:
        given = os.environ.get("BRIDGE_SNAP")
        if given:
            return given
        if shutil.which("snapcraft") is None:
            pytest.skip("`snapcraft pack`: snapcraft is not installed and BRIDGE_SNAP is not set")
        await self.sh("snapcraft", "pack")
        (snap,) = sorted(ROOT.glob(f"{APP}_*.snap"))
        return str(snap)


@pytest.fixture(scope="module")
def guide(ops_test: OpsTest) -> Guide:
    """One reader's session: the models and files it has, shared by the module's steps."""
    return Guide(ops_test)


def _require_bridge(ops_test: OpsTest) -> None:
    assert ops_test.model is not None
    if APP not in ops_test.model.applications:
        pytest.skip(f"{APP} was not deployed (see the air-gapped deploy step's skip)")


async def _status_messages(ops_test: OpsTest, app: str = APP) -> list[str]:
    assert ops_test.model is not None
    units = ops_test.model.applications[app].units
    return [f"{u.workload_status}: {u.workload_status_message}" for u in units]


async def test_deploy_from_charmhub(ops_test: OpsTest, guide: Guide) -> None:
    """The first block of "1. Deploy", in a model of its own."""
    try:
        await guide.sh("juju", "info", APP)
    except AssertionError as e:
        pytest.skip(f"{APP} is not on Charmhub: {e}")
    store = await ops_test.track_model("store")
    full = ops_test.models["store"].full_name
    saved, guide.models["machines"] = guide.models["machines"], full
    try:
        for argv in DEPLOY[0]:
            await guide.run(argv)
        await store.wait_for_idle(apps=[APP], status="active", timeout=TIMEOUT)
    finally:
        guide.models["machines"] = guide.model = saved


@pytest.mark.abort_on_fail
async def test_deploy_air_gapped_with_the_guides_config(ops_test: OpsTest, guide: Guide) -> None:
    """The air-gapped block of "1. Deploy", then the first block's `juju config` line."""
    assert ops_test.model is not None
    first, air_gapped = DEPLOY
    for argv in [first[0], *air_gapped, *[a for a in first if a[:2] == ["juju", "config"]]]:
        await guide.run(argv)
    await ops_test.model.wait_for_idle(
        apps=[APP], status="active", timeout=TIMEOUT, wait_for_exact_units=2
    )
    assert await _status_messages(ops_test) == ["active: no Grafana related"] * 2
    out = await guide.sh("juju", "config", APP, "retention-time")
    assert out.strip() == "30d"


async def test_relate_the_senders(ops_test: OpsTest, guide: Guide) -> None:
    """Section "2. Relate a sender": opentelemetry-collector onto our machines, grafana-agent
    onto a principal; each unit must then hold the principal's series."""
    _require_bridge(ops_test)
    assert ops_test.model is not None
    await ops_test.model.deploy("ubuntu", application_name=PRINCIPAL, base=BASE)
    for block in SENDERS:
        for argv in block:
            await guide.run(argv)
    await ops_test.model.wait_for_idle(
        apps=[APP, PRINCIPAL, "otelcol", "grafana-agent"], timeout=TIMEOUT
    )
    assert await _status_messages(ops_test) == ["active: no Grafana related"] * 2
    expr = f'count({{__name__=~".+", juju_application="{PRINCIPAL}"}})'
    for unit in ops_test.model.applications[APP].units:
        for _ in range(30):
            result = await guide.run(["juju", "run", unit.name, "query", f"query={expr}"])
            data = json.loads(result["result"])
            if data:
                break
            await asyncio.sleep(10)
        else:
            pytest.fail(f"no series from {PRINCIPAL}'s grafana-agent reached {unit.name}")


async def test_connect_to_cos(ops_test: OpsTest, guide: Guide) -> None:
    """Section "3. Connect to COS": offers in a COS model, consumed and integrated in ours."""
    _require_bridge(ops_test)
    cloud = os.environ.get("K8S_CLOUD")
    if not cloud:
        pytest.skip("K8S_CLOUD is not set: no Kubernetes cloud for the COS model")
    assert ops_test.model is not None
    cos = await ops_test.track_model("cos", cloud_name=cloud)
    await cos.deploy("grafana-k8s", application_name="grafana", trust=True)
    await cos.deploy("prometheus-k8s", application_name="prometheus", trust=True)
    await cos.wait_for_idle(apps=["grafana", "prometheus"], status="active", timeout=TIMEOUT)
    guide.models["k8s:cos"] = ops_test.models["cos"].full_name
    has_tempo = "tempo" in cos.applications
    for block in COS:
        for argv in block:
            if "tempo" in " ".join(argv) and not has_tempo:
                continue  # the guide: leave the Tempo lines out if you have none
            await guide.run(argv)
    guide.model = guide.models["machines"]
    await ops_test.model.wait_for_idle(apps=[APP], status="active", timeout=TIMEOUT)
    assert (
        await _status_messages(ops_test)
        == ["active: 2 datasource(s) published for 1 Grafana(s)"] * 2
    )


async def test_check_that_it_worked(ops_test: OpsTest, guide: Guide) -> None:
    """Section "4. Check that it worked": the three actions, and what the guide says they show."""
    _require_bridge(ops_test)
    (lines,) = CHECK
    for argv in lines:
        action = argv[3]
        if action == "list-datasources":
            result = await guide.run(argv)
            rows = json.loads(result["datasources"])
            if "k8s:cos" in guide.models:
                assert rows and all(row["uid"] and row["published"] for row in rows), rows
        else:
            # Host metrics arrive within the first collection interval; allow a few.
            for _ in range(12):
                result = await guide.run(argv)
                if json.loads(result["result"]):
                    break
                await asyncio.sleep(10)
            else:
                pytest.fail(f"{' '.join(argv)}: no series")
