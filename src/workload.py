"""The bridge on this machine: the charm's only door to snapd and to the bridge's HTTP API.

Everything that needs a real machine (snapd, the daemon, HTTP) is behind :class:`Workload`, a
deliberately small interface, so the charm runs under ``ops.testing`` with a fake in its place.
:class:`SnapWorkload` implements it with ``charmlibs.snap`` (the 2.x function API), one
``snap install --dangerous`` for an attached snap file (charmlibs-snap 2.x cannot install local
files) and ``requests``.

The contract with the snap is ``docs/configuration.md`` ("The charm's contract"): settings go
through ``snap set`` only, the snap's configure hook validates them (rejecting the whole change
with one line per bad key) and restarts the daemon only when the resulting configuration file
changed. So :meth:`SnapWorkload.apply_settings` calls ``snap set`` only with the keys whose
values differ from what snapd holds: an unchanged configuration never runs the hook, and a
changed one runs it exactly once, which restarts the daemon exactly once.
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any, Protocol

import requests
import urllib3
from charmlibs import snap as charmlibs_snap

from health import ForwardingHealth, display_url, parse_forwarding

SNAP_NAME = "grafana-agent-bridge"
DAEMON = f"{SNAP_NAME}.daemon"
# Host-metric plugs that snapd does not auto-connect (snap/snapcraft.yaml).
OBSERVE_PLUGS = ("system-observe", "mount-observe", "network-observe", "hardware-observe")
# The snap keys the charm owns; anything else is left to the operator.
MANAGED_KEYS = (
    "listen-address",
    "allowed-clients",
    "forward-urls",
    "tracing-endpoint",
    "query-auth-token",
    "retention-time",
    "retention-size",
)
HEALTH_TIMEOUT = 3.0
GRAFANA_PROBE_TIMEOUT = 2.0
MAX_METRICS_BYTES = 8 << 20  # the bridge's own page is tens of KiB; more is not it
QUERY_TIMEOUT = 130.0  # the bridge's own default query timeout is 2m
INSTALL_TIMEOUT = 600.0


class WorkloadError(Exception):
    """snapd or the snap failed; the message is the reason shown in the unit status."""


class SettingsRejectedError(WorkloadError):
    """The snap's configure hook rejected the settings; nothing was applied."""


class QueryError(Exception):
    """A query through the bridge's HTTP API failed; the message says why, for people."""


@dataclass(frozen=True)
class InstalledSnap:
    revision: str
    tracking: str
    """The store channel it follows; empty for a snap installed from a file."""


class Workload(Protocol):
    """What the charm needs from the machine: install, configure, observe and query the bridge."""

    def installed(self) -> InstalledSnap | None:
        """The installed snap, None when absent. Raises WorkloadError when snapd fails."""
        ...

    def install_from_store(self, channel: str) -> None:
        """Install (or move to) ``channel``, hold refreshes, connect the observe plugs."""
        ...

    def install_from_file(self, path: Path) -> None:
        """Install the snap file, hold refreshes, connect the observe plugs."""
        ...

    def remove(self) -> None: ...

    def apply_settings(self, settings: Mapping[str, str | None]) -> bool:
        """Set the keys whose values differ (None: unset); returns whether any was applied.

        Raises:
            SettingsRejectedError: the configure hook refused them (nothing applied).
            WorkloadError: snapd failed.
        """
        ...

    def service_active(self) -> bool: ...

    def not_ready_reason(self, port: int) -> str | None:
        """None when ``/-/ready`` answers 200, else why not."""
        ...

    def query(self, port: int, token: str, expr: str, time: str | None) -> dict[str, Any]:
        """An instant query; returns the API's ``data`` object. Raises QueryError."""
        ...

    def forwarding_health(self, port: int) -> ForwardingHealth | None:
        """The forwarding gauges of the local bridge's ``/metrics``; None when unknown."""
        ...

    def grafana_unreachable_reason(self, base_url: str) -> str | None:
        """None when ``<base_url>/api/health`` answers 200, else why not (no credentials)."""
        ...


Runner = Callable[[Sequence[str], float], str]


def run_command(argv: Sequence[str], timeout: float) -> str:
    """Run a command; its stdout, or WorkloadError with its stderr."""
    try:
        done = subprocess.run(
            list(argv), capture_output=True, text=True, timeout=timeout, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as e:
        raise WorkloadError(f"{argv[0]}: {e}") from None
    if done.returncode != 0:
        detail = (done.stderr or done.stdout).strip().splitlines()
        raise WorkloadError(detail[-1] if detail else f"{argv[0]} exited with {done.returncode}")
    return done.stdout


def _reason(error: Exception) -> str:
    """One line for the status: snapd's messages may span several."""
    return "; ".join(line.strip() for line in str(error).splitlines() if line.strip())


class SnapWorkload:
    """:class:`Workload` over snapd (``charmlibs.snap``) and the bridge's HTTP API.

    ``snap_api`` and ``run`` are the seams to snapd and to the ``snap`` command, replaced in
    the tests of this class by a fake snapd.
    """

    def __init__(
        self,
        *,
        snap_api: ModuleType | Any = charmlibs_snap,
        run: Runner = run_command,
        host: str = "127.0.0.1",
    ):
        self._snap = snap_api
        self._run = run
        self._host = host

    # -- install --------------------------------------------------------------------------

    def installed(self) -> InstalledSnap | None:
        try:
            info = self._snap.list_one(SNAP_NAME)
        except self._snap.NotInstalledError:
            return None
        except self._snap.Error as e:
            raise WorkloadError(f"snapd: {_reason(e)}") from None
        return InstalledSnap(revision=str(info.revision), tracking=info.tracking or "")

    def install_from_store(self, channel: str) -> None:
        try:
            # update=False: a held snap on the right channel stays on its revision.
            self._snap.ensure_installed(SNAP_NAME, channel, update=False)
        except self._snap.Error as e:
            raise WorkloadError(f"{SNAP_NAME} from {channel}: {_reason(e)}") from None
        self._hold_and_connect()

    def install_from_file(self, path: Path) -> None:
        # charmlibs-snap 2.x has no local-file install; a resource is unsigned, hence dangerous.
        self._run(["snap", "install", "--dangerous", str(path)], INSTALL_TIMEOUT)
        self._hold_and_connect()

    def _hold_and_connect(self) -> None:
        try:
            self._snap.hold(SNAP_NAME)
            for plug in OBSERVE_PLUGS:
                self._snap.connect((SNAP_NAME, plug))
        except self._snap.Error as e:
            raise WorkloadError(_reason(e)) from None

    def remove(self) -> None:
        try:
            self._snap.remove(SNAP_NAME)
        except self._snap.NotInstalledError:
            return
        except self._snap.Error as e:
            raise WorkloadError(_reason(e)) from None

    # -- settings -------------------------------------------------------------------------

    def apply_settings(self, settings: Mapping[str, str | None]) -> bool:
        try:
            current = self._snap.get(SNAP_NAME)
        except self._snap.Error as e:
            raise WorkloadError(f"snapd: {_reason(e)}") from None
        changes = {k: v for k, v in settings.items() if current.get(k) != v}
        if not changes:
            return False
        try:
            self._snap.set(SNAP_NAME, changes)  # one configure hook run; None unsets
        except self._snap.ChangeError as e:
            raise SettingsRejectedError(_hook_message(e)) from None
        except self._snap.Error as e:
            raise WorkloadError(f"snapd: {_reason(e)}") from None
        return True

    # -- health ---------------------------------------------------------------------------

    def service_active(self) -> bool:
        try:
            out = self._run(["snap", "services", DAEMON], 30.0)
        except WorkloadError:
            return False
        for line in out.splitlines()[1:]:
            fields = line.split()
            if len(fields) >= 3 and fields[0] == DAEMON:
                return fields[2] == "active"
        return False

    def _base_url(self, port: int) -> str:
        return f"http://{self._host}:{port}"

    def not_ready_reason(self, port: int) -> str | None:
        url = f"{self._base_url(port)}/-/ready"
        try:
            response = requests.get(url, timeout=HEALTH_TIMEOUT)
        except requests.RequestException as e:
            return f"{url} unreachable ({type(e).__name__})"
        if response.status_code != 200:
            return f"{url} answered HTTP {response.status_code}"
        return None

    def forwarding_health(self, port: int) -> ForwardingHealth | None:
        url = f"{self._base_url(port)}/metrics"
        try:
            with requests.get(url, timeout=HEALTH_TIMEOUT, stream=True) as response:
                if response.status_code != 200:
                    return None
                body = response.raw.read(MAX_METRICS_BYTES + 1, decode_content=True)
        except (requests.RequestException, urllib3.exceptions.HTTPError, OSError, ValueError):
            # The raw read raises urllib3's own errors (a daemon dying mid-answer): unknown.
            return None
        if not isinstance(body, bytes) or len(body) > MAX_METRICS_BYTES:
            return None
        return parse_forwarding(body.decode("utf-8", errors="replace"))

    def grafana_unreachable_reason(self, base_url: str) -> str | None:
        shown = display_url(base_url)
        try:
            # stream: only the status line is wanted; a huge body is never read.
            with requests.get(
                f"{base_url.rstrip('/')}/api/health",
                timeout=GRAFANA_PROBE_TIMEOUT,
                allow_redirects=False,
                stream=True,
            ) as response:
                status = response.status_code
        except (requests.RequestException, urllib3.exceptions.HTTPError, ValueError) as e:
            return f"unreachable at {shown} ({type(e).__name__})"
        if status != 200:
            return f"unhealthy at {shown} (HTTP {status})"
        return None

    # -- query ----------------------------------------------------------------------------

    def query(self, port: int, token: str, expr: str, time: str | None) -> dict[str, Any]:
        url = f"{self._base_url(port)}/api/v1/query"
        form = {"query": expr}
        if time:
            form["time"] = time
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        try:
            response = requests.post(url, data=form, headers=headers, timeout=QUERY_TIMEOUT)
        except requests.RequestException as e:
            raise QueryError(f"cannot reach the bridge at {url}: {type(e).__name__}") from None
        try:
            body = response.json()
        except ValueError:
            raise QueryError(
                f"the bridge answered HTTP {response.status_code} with a non-JSON body"
            ) from None
        if not isinstance(body, dict):
            raise QueryError(f"the bridge answered HTTP {response.status_code}: {body!r:.200}")
        if response.status_code == 401:
            raise QueryError("the bridge rejected the query token (HTTP 401)")
        if response.status_code != 200 or body.get("status") != "success":  # pyright: ignore[reportUnknownMemberType]
            error_type = body.get("errorType", "error")  # pyright: ignore[reportUnknownMemberType, reportUnknownVariableType]
            error = body.get("error", "")  # pyright: ignore[reportUnknownMemberType, reportUnknownVariableType]
            raise QueryError(f"query failed (HTTP {response.status_code}): {error_type}: {error}")
        data = body.get("data")  # pyright: ignore[reportUnknownMemberType, reportUnknownVariableType]
        if not isinstance(data, dict):
            raise QueryError("the bridge's answer has no data object")
        return data  # pyright: ignore[reportUnknownVariableType]


def _hook_message(error: Exception) -> str:
    """The configure hook's own lines out of snapd's change error, joined for the status.

    snapd wraps the hook's stderr, e.g. ``run hook "configure": retention-time: invalid ...``.
    """
    text = _reason(error)
    marker = 'run hook "configure":'
    if marker in text:
        text = text.split(marker, 1)[1].strip()
        text = text[:-1].strip() if text.endswith(")") else text  # snapd's closing paren only
    return text
