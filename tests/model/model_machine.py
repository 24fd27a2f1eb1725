"""Each simulated bridge unit's machine: snapd and the daemon, the one thing Juju cannot give us.

The charm reaches the machine only through its ``Workload`` protocol (``src/workload.py``);
here every unit gets its own :class:`FakeMachine`, so what one unit installs or configures
is not seen by another. It always succeeds: the model simulation is about the datasource
lifecycle, the failure paths of snapd are the unit tests' job.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from health import ForwardingHealth
from workload import InstalledSnap


@dataclass
class FakeMachine:
    snap: InstalledSnap | None = None
    settings: dict[str, str] = field(default_factory=dict[str, str])
    installs: int = 0
    restarts: int = 0

    def installed(self) -> InstalledSnap | None:
        return self.snap

    def install_from_store(self, channel: str) -> None:
        self.installs += 1
        self.snap = InstalledSnap(revision=str(self.installs), tracking=channel)

    def install_from_file(self, path: Path) -> None:
        self.installs += 1
        self.snap = InstalledSnap(revision=str(self.installs), tracking="")

    def remove(self) -> None:
        self.snap = None

    def apply_settings(self, settings: Mapping[str, str | None]) -> bool:
        changes = {k: v for k, v in settings.items() if self.settings.get(k) != v}
        if not changes:
            return False
        for key, value in changes.items():
            if value is None:
                self.settings.pop(key, None)
            else:
                self.settings[key] = value
        self.restarts += 1
        return True

    def service_active(self) -> bool:
        return self.snap is not None

    def not_ready_reason(self, port: int) -> str | None:
        return None if self.snap is not None else "not installed"

    def query(self, port: int, token: str, expr: str, time: str | None) -> dict[str, Any]:
        return {"resultType": "vector", "result": []}

    def forwarding_health(self, port: int) -> ForwardingHealth | None:
        return ForwardingHealth()  # no forwarding targets: the simulation has no upstream

    def grafana_unreachable_reason(self, base_url: str) -> str | None:
        return None  # every simulated Grafana answers
