"""Run the interface test cases through pytest-interface-tester, offline."""

from __future__ import annotations

import pytest
from interface_tester import InterfaceTester


def test_grafana_datasource_provider(grafana_datasource_tester: InterfaceTester, interfaces_repo):
    grafana_datasource_tester.configure(
        repo=interfaces_repo, interface_name="grafana_datasource", interface_version=0
    )
    grafana_datasource_tester.run()


def test_grafana_datasource_requirer(grafana_source_tester: InterfaceTester, interfaces_repo):
    grafana_source_tester.configure(
        repo=interfaces_repo, interface_name="grafana_datasource", interface_version=0
    )
    grafana_source_tester.run()


def test_grafana_datasource_exchange_both_roles(
    grafana_datasource_exchange_tester: InterfaceTester, interfaces_repo
):
    grafana_datasource_exchange_tester.configure(
        repo=interfaces_repo, interface_name="grafana_datasource_exchange", interface_version=0
    )
    grafana_datasource_exchange_tester.run()


@pytest.mark.parametrize("endpoint", ["workload-tracing", "charm-tracing"])
def test_tracing_v2_requirer(tracing_tester: InterfaceTester, interfaces_repo, endpoint: str):
    tracing_tester.configure(
        repo=interfaces_repo, interface_name="tracing", interface_version=2, endpoint=endpoint
    )
    tracing_tester.run()


def test_otlp_v0_provider(otlp_tester: InterfaceTester, interfaces_repo):
    otlp_tester.configure(repo=interfaces_repo, interface_name="otlp", interface_version=0)
    otlp_tester.run()


def test_cos_agent_v0_provider(cos_agent_tester: InterfaceTester, interfaces_repo):
    cos_agent_tester.configure(
        repo=interfaces_repo, interface_name="cos_agent", interface_version=0
    )
    cos_agent_tester.run()
