"""The one stand-in for the machine behind :class:`workload.Workload` (snapd and the daemon).

The charm's unit, interface and model tests all use it: one instance per unit lives for a whole
test, like the machine outlives each hook. It remembers what is installed, the snap settings,
and counts restarts the way the snap's configure hook does them (``snap set`` with a changed
value runs the hook once, which restarts the daemon once).

Every change goes through the snap's REAL validator (``snapconfig.build_config``, what the
configure hook runs): a setting the bridge would refuse fails the whole change here exactly as
``snap set`` fails on a machine, so a test sees what an operator would see.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from health import ForwardingHealth
from workload import InstalledSnap, QueryError, SettingsRejectedError, WorkloadError

# The charm is packed without the bridge; its tests check what it sets against the real one.
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bridge"))
from grafana_agent_bridge.snapconfig import SnapSettingError, build_config


@dataclass
class FakeWorkload:
    snap: InstalledSnap | None = None
    settings: dict[str, str] = field(default_factory=dict[str, str])
    restarts: int = 0
    hook_runs: int = 0
    installs: list[str] = field(default_factory=list[str])
    """"store:<channel>" or "file:<content>" per install call that succeeded."""
    install_error: str | None = None
    reject: dict[tuple[str, str], str] = field(default_factory=dict[tuple[str, str], str])
    """(snap key, value) -> message: the configure hook rejects a change setting it."""
    active: bool = True
    not_ready: str | None = None
    query_answer: dict[str, Any] | QueryError = field(
        default_factory=lambda: {"resultType": "vector", "result": []}
    )
    queries: list[tuple[int, str, str, str | None]] = field(
        default_factory=list[tuple[int, str, str, str | None]]
    )
    removed: bool = False
    forwarding: ForwardingHealth | None = field(default_factory=ForwardingHealth)
    """What the bridge's /metrics says about forwarding; None: it could not be read."""
    grafana_problems: dict[str, str] = field(default_factory=dict[str, str])
    """Grafana base URL -> why its /api/health probe failed (absent: healthy)."""
    grafana_probes: list[str] = field(default_factory=list[str])

    def installed(self) -> InstalledSnap | None:
        return self.snap

    def _install(self, source: str, tracking: str) -> None:
        if self.install_error:
            raise WorkloadError(self.install_error)
        self.installs.append(source)
        revision = str(len(self.installs))
        self.snap = InstalledSnap(revision=revision, tracking=tracking)

    def install_from_store(self, channel: str) -> None:
        self._install(f"store:{channel}", channel)

    def install_from_file(self, path: Path) -> None:
        self._install(f"file:{path.read_text()}", "")

    def remove(self) -> None:
        self.snap = None
        self.removed = True

    def apply_settings(self, settings: Mapping[str, str | None]) -> bool:
        if self.snap is None:
            raise WorkloadError("snap not installed")
        changes = {k: v for k, v in settings.items() if self.settings.get(k) != v}
        if not changes:
            return False
        self.hook_runs += 1
        problems = [
            self.reject[(k, v)]
            for k, v in changes.items()
            if v is not None and (k, v) in self.reject
        ]
        merged = {k: v for k, v in {**self.settings, **changes}.items() if v is not None}
        try:
            build_config(merged, data_dir="/var/snap/grafana-agent-bridge/common/data")
        except SnapSettingError as e:
            problems.append(str(e).replace("\n", "; "))
        if problems:
            raise SettingsRejectedError("; ".join(problems))
        for key, value in changes.items():
            if value is None:
                self.settings.pop(key, None)
            else:
                self.settings[key] = value
        self.restarts += 1  # the configure hook restarts the daemon when the file changed
        return True

    def service_active(self) -> bool:
        return self.active and self.snap is not None

    def not_ready_reason(self, port: int) -> str | None:
        return "not installed" if self.snap is None else self.not_ready

    def query(self, port: int, token: str, expr: str, time: str | None) -> dict[str, Any]:
        self.queries.append((port, token, expr, time))
        if isinstance(self.query_answer, QueryError):
            raise self.query_answer
        return self.query_answer

    def forwarding_health(self, port: int) -> ForwardingHealth | None:
        return self.forwarding

    def grafana_unreachable_reason(self, base_url: str) -> str | None:
        self.grafana_probes.append(base_url)
        return self.grafana_problems.get(base_url)
