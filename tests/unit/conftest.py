"""Fixtures for the charm's ops.testing tests."""

from __future__ import annotations

from typing import Any

import pytest
from charm_builders import APP, Writes
from ops import testing
from scenario.mocking import _MockModelBackend

import charm
from charm import GrafanaAgentBridgeCharm
from tests.fake_workload import FakeWorkload


@pytest.fixture(autouse=True)
def machine(monkeypatch: pytest.MonkeyPatch) -> FakeWorkload:
    """The unit's machine for the whole test: every hook's charm gets this workload."""
    fake = FakeWorkload()
    monkeypatch.setattr(charm, "SnapWorkload", lambda: fake)
    return fake


@pytest.fixture
def ctx() -> testing.Context[GrafanaAgentBridgeCharm]:
    return testing.Context(GrafanaAgentBridgeCharm, app_name=APP)


@pytest.fixture
def writes(monkeypatch: pytest.MonkeyPatch) -> Writes:
    """Record relation-set calls: "no write" must mean no call at all, not an equal value."""
    record = Writes()
    original = _MockModelBackend.relation_set

    def spy(self: _MockModelBackend, relation_id: int, data: Any, is_app: bool, **kw: Any):
        record.calls.append((relation_id, dict(data), is_app))
        return original(self, relation_id, data, is_app, **kw)

    monkeypatch.setattr(_MockModelBackend, "relation_set", spy)
    return record
