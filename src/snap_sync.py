"""The snap's side of a hook: the keys the charm manages, installing, applying, its status.

The reconcile computes the settings; this module brings the snap to them and remembers what
went wrong for the collect-status handler. Two rules live here rather than in the charm:

- **Fail closed.** Until this unit knows the query token (``None``), the bridge listens on
  loopback only; it opens to all interfaces in the same ``snap set`` that gives it the token.
  With ``query-auth`` off (token ``""``) the operator chose an open API.
- **Security first.** When the snap refuses a whole change, the token, the allow-list and the
  listen address (:data:`SECURITY_KEYS`) are applied on their own, so nothing else the snap
  refuses can leave it on an old token or a stale allow-list.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import ops
from ops.framework import BoundStoredState

from config import CharmConfig
from snap_source import SnapSource
from workload import DAEMON, SNAP_NAME, SettingsRejectedError, Workload, WorkloadError

logger = logging.getLogger(__name__)

SECURITY_KEYS = ("listen-address", "allowed-clients", "query-auth-token")
LOOPBACK = "127.0.0.1"
ALL_INTERFACES = "0.0.0.0"


def managed_settings(
    config: CharmConfig,
    token: str | None,
    *,
    allowed_clients: Sequence[str],
    forward_urls: Sequence[str],
    tracing_endpoint: str,
) -> dict[str, str | None]:
    """The snap keys the charm manages (docs/configuration.md, "The charm's contract")."""
    host = ALL_INTERFACES if token is not None else LOOPBACK
    settings: dict[str, str | None] = {
        "listen-address": f"{host}:{config.port}",
        "allowed-clients": ",".join(allowed_clients),
        "forward-urls": ",".join(forward_urls),
        "tracing-endpoint": tracing_endpoint,
        "retention-time": config.retention_time,
        "retention-size": config.retention_size,
    }
    if token is not None:  # unknown yet: keep what the bridge has until the leader shares it
        settings["query-auth-token"] = token
    return settings


class SnapSync:
    """Installs and configures the snap for one hook; :attr:`issue` is what went wrong."""

    def __init__(self, workload: Workload, unit: ops.Unit, stored: BoundStoredState) -> None:
        self._workload = workload
        self._unit = unit
        self._stored = stored
        """Holds ``installed_source``: the :attr:`SnapSource.key` last installed."""
        self.issue: ops.StatusBase | None = None

    def ensure_installed(self, source: SnapSource) -> bool:
        """Install what is asked for when it is not what is installed; False on failure."""
        try:
            installed = self._workload.installed()
            if installed is not None and self._stored.installed_source == source.key:
                return True
            self._unit.status = ops.MaintenanceStatus(f"installing the {SNAP_NAME} snap")
            source.install(self._workload)
        except WorkloadError as e:
            logger.error("snap install failed: %s", e)
            self._stored.installed_source = ""
            self.issue = ops.BlockedStatus(f"snap install failed: {e}")
            return False
        self._stored.installed_source = source.key
        logger.info("installed the %s snap (%s)", SNAP_NAME, source.key)
        return True

    def apply(self, settings: dict[str, str | None]) -> None:
        try:
            if self._workload.apply_settings(settings):
                logger.info("applied new bridge settings")
        except SettingsRejectedError as e:
            self.issue = ops.BlockedStatus(f"bridge config invalid: {e}")
            self._apply_security_settings(settings)
        except WorkloadError as e:
            self.issue = ops.BlockedStatus(f"snap config failed: {e}")

    def _apply_security_settings(self, settings: dict[str, str | None]) -> None:
        """After the snap refused a change: the token, allow-list and address on their own.

        Every value is validated before it reaches the snap, so this is defence in depth.
        """
        security = {key: settings[key] for key in SECURITY_KEYS if key in settings}
        try:
            if self._workload.apply_settings(security):
                logger.warning("applied only the security settings; the rest was refused")
        except WorkloadError as e:
            logger.error("the snap refused even the security settings: %s", e)

    def remove(self) -> None:
        try:
            self._workload.remove()
        except WorkloadError as e:
            logger.error("cannot remove the %s snap: %s", SNAP_NAME, e)

    def status(self, port: int, token: str | None) -> ops.StatusBase | None:
        """The workload's problem, if any: one exact line per kind."""
        if self.issue is not None:
            return self.issue
        try:
            installed = self._workload.installed()
        except WorkloadError as e:
            return ops.BlockedStatus(f"snap install failed: {e}")
        if installed is None:
            return ops.BlockedStatus(f"snap missing: {SNAP_NAME} is not installed")
        if not self._workload.service_active():
            return ops.BlockedStatus(f"service down: {DAEMON} is not active")
        reason = self._workload.not_ready_reason(port)
        if reason is not None:
            return ops.WaitingStatus(f"bridge not ready: {reason}")
        if token is None:
            return ops.WaitingStatus("waiting for the leader to share the query token")
        return None
