"""Interface-test fixtures, named after the identifiers in the interfaces' interface.yaml.

pytest-interface-tester clones its test cases from a git repository. Our machines cannot reach
GitHub, so ``interfaces_repo`` turns ``definitions/`` (our own transcription of the published
v0 specifications) into a local git repository, which the tester accepts as ``repo=``.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from grafana_like import GRAFANA_META, GrafanaLikeCharm
from interface_tester import InterfaceTester
from ops import testing

import charm
from charm import GrafanaAgentBridgeCharm
from tests.fake_workload import FakeWorkload

DEFINITIONS = Path(__file__).parent / "definitions"


@pytest.fixture(autouse=True)
def machine(monkeypatch: pytest.MonkeyPatch) -> FakeWorkload:
    """The unit tests' fake machine: no test here may reach snapd or the network."""
    fake = FakeWorkload()
    monkeypatch.setattr(charm, "SnapWorkload", lambda: fake)
    return fake


# The definitions hold the tester's own test modules; pytest must not collect them directly.
collect_ignore = ["definitions"]


@pytest.fixture(scope="session")
def interfaces_repo(tmp_path_factory: pytest.TempPathFactory) -> str:
    root = tmp_path_factory.mktemp("interfaces") / "charm-relation-interfaces"
    shutil.copytree(DEFINITIONS, root)
    git = ["git", "-C", str(root), "-c", "user.name=tests", "-c", "user.email=tests@localhost"]
    subprocess.run([*git, "init", "-q", "-b", "main"], check=True)
    subprocess.run([*git, "add", "."], check=True)
    subprocess.run([*git, "commit", "-q", "-m", "definitions"], check=True)
    return str(root)


def _bridge_template() -> testing.State:
    return testing.State(leader=True, relations=[testing.PeerRelation("peers")])


@pytest.fixture
def grafana_datasource_tester(interface_tester: InterfaceTester) -> Iterator[InterfaceTester]:
    interface_tester.configure(
        charm_type=GrafanaAgentBridgeCharm, state_template=_bridge_template()
    )
    yield interface_tester


@pytest.fixture
def grafana_datasource_exchange_tester(
    interface_tester: InterfaceTester,
) -> Iterator[InterfaceTester]:
    interface_tester.configure(
        charm_type=GrafanaAgentBridgeCharm, state_template=_bridge_template()
    )
    yield interface_tester


@pytest.fixture
def tracing_tester(interface_tester: InterfaceTester) -> Iterator[InterfaceTester]:
    interface_tester.configure(
        charm_type=GrafanaAgentBridgeCharm, state_template=_bridge_template()
    )
    yield interface_tester


@pytest.fixture
def otlp_tester(interface_tester: InterfaceTester) -> Iterator[InterfaceTester]:
    interface_tester.configure(
        charm_type=GrafanaAgentBridgeCharm, state_template=_bridge_template()
    )
    yield interface_tester


@pytest.fixture
def cos_agent_tester(interface_tester: InterfaceTester) -> Iterator[InterfaceTester]:
    interface_tester.configure(
        charm_type=GrafanaAgentBridgeCharm, state_template=_bridge_template()
    )
    yield interface_tester


@pytest.fixture
def grafana_source_tester(interface_tester: InterfaceTester) -> Iterator[InterfaceTester]:
    """The requirer role: a Grafana-like charm running our consumer library."""
    interface_tester.configure(
        charm_type=GrafanaLikeCharm,
        meta=GRAFANA_META,
        state_template=testing.State(leader=True, relations=[testing.PeerRelation("grafana")]),
    )
    yield interface_tester
