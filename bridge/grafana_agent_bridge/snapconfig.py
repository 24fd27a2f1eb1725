"""The snap's ``configure`` hook: ``snap set`` keys in, a validated ``config.yaml`` out.

Both the operator (``snap set grafana-agent-bridge retention-time=30d``) and the charm go through
this one validator, so an invalid value is rejected with the snap key's name before anything is
written, and the daemon only ever sees a file that ``config.load_config`` accepts.

The hook owns ``$SNAP_COMMON/config.yaml``: it is regenerated from the snap settings on every
run (install, refresh, ``snap set``), written atomically, and the daemon is restarted only when
the file's content changed and the daemon is running.

Fail closed: the snap's own default listen address is loopback (:data:`SNAP_LISTEN_ADDRESS`),
not the bridge's all-interfaces default, so between ``snap install`` and the first
``snap set`` (which is when the charm gives it a query token) the unauthenticated API is not
reachable from the network. ``snap set grafana-agent-bridge listen-address=0.0.0.0:9099``
opens it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path

from grafana_agent_bridge.config import BridgeConfig, ConfigError
from grafana_agent_bridge.config.snapkeys import SNAP_KEYS, SnapKey, SnapSettingError, snap_key_for

__all__ = [
    "SNAP_KEYS",
    "SnapKey",
    "SnapSettingError",
    "build_config",
    "main",
    "run_configure",
    "write_if_changed",
]


SNAP_HOSTFS = "/var/lib/snapd/hostfs"
SNAP_LISTEN_ADDRESS = "127.0.0.1:9099"
"""The snap's default: loopback until someone (the charm, with the token) opens it."""


def build_config(settings: Mapping[str, object], data_dir: str) -> BridgeConfig:
    """The bridge configuration for these snap settings (unset keys keep the defaults).

    Raises:
        SnapSettingError: one line per invalid setting, each starting with its snap key.
    """
    # Inside the strict snap the host's root filesystem is only visible under hostfs.
    overrides: dict[str, object] = {
        "data_dir": data_dir,
        "collect.rootfs": SNAP_HOSTFS,
        "listen_address": SNAP_LISTEN_ADDRESS,
    }
    problems: list[str] = []
    for key in SNAP_KEYS:
        if key.name not in settings:
            continue
        try:
            overrides[key.path] = key.convert(key.name, settings[key.name])
        except SnapSettingError as e:
            problems.append(str(e))
    if problems:
        raise SnapSettingError("\n".join(problems))
    try:
        return BridgeConfig().with_overrides(overrides)
    except ConfigError as e:
        # One line per snap key: a list setting (forward-urls) may hold several bad values.
        by_key: dict[str, list[str]] = {}
        for path, message in e.errors:
            messages = by_key.setdefault(snap_key_for(path), [])
            if message not in messages:
                messages.append(message)
        lines = [f"{key}: {'; '.join(messages)}" for key, messages in by_key.items()]
        raise SnapSettingError("\n".join(lines)) from None


def write_if_changed(path: Path, text: str) -> bool:
    """Atomically replace ``path`` with ``text`` (mode 0600: it may hold tokens) if different.

    A crash leaves either the old or the new file, never a mix: the text goes to a temporary
    file in the same directory, is flushed to disk, then renamed over the old one.
    """
    try:
        if path.read_text(encoding="utf-8") == text:
            return False
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o600)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
    return True


def _snapctl(*args: str) -> str:
    return subprocess.run(
        ["snapctl", *args], check=True, capture_output=True, text=True, timeout=60
    ).stdout


def read_settings() -> dict[str, object]:
    """The snap settings that are set (``snapctl get -d`` omits unset keys)."""
    out = _snapctl("get", "-d", *(key.name for key in SNAP_KEYS))
    data = json.loads(out) if out.strip() else {}
    if not isinstance(data, dict):
        raise SnapSettingError(f"unexpected snapctl output: {out[:200]}")
    return data


def _daemon_is_active(service: str) -> bool:
    """Whether snapd reports the service as active (not yet started during install)."""
    try:
        out = _snapctl("services", service)
    except (OSError, subprocess.SubprocessError):
        return False
    for line in out.splitlines()[1:]:
        fields = line.split()
        if len(fields) >= 3 and fields[0] == service:
            return fields[2] == "active"
    return False


def run_configure(environ: Mapping[str, str]) -> int:
    """The configure hook: read, validate, write, restart if changed; returns the exit code."""
    common = environ.get("SNAP_COMMON")
    if not common:
        print("SNAP_COMMON is not set: run this as the snap's configure hook", file=sys.stderr)
        return 2
    instance = (
        environ.get("SNAP_INSTANCE_NAME") or environ.get("SNAP_NAME") or "grafana-agent-bridge"
    )
    try:
        config = build_config(read_settings(), data_dir=str(Path(common) / "data"))
    except SnapSettingError as e:
        print(str(e), file=sys.stderr)
        return 1
    except (OSError, subprocess.SubprocessError, json.JSONDecodeError) as e:
        print(f"cannot read the snap settings: {_describe(e)}", file=sys.stderr)
        return 1
    header = (
        "# Written by the snap's configure hook from `snap get grafana-agent-bridge`.\n"
        "# Edits here are overwritten: use `snap set grafana-agent-bridge KEY=VALUE`.\n"
    )
    changed = write_if_changed(Path(common) / "config.yaml", header + config.to_yaml())
    service = f"{instance}.daemon"
    if changed and _daemon_is_active(service):
        try:
            _snapctl("restart", service)
        except (OSError, subprocess.SubprocessError) as e:
            print(
                f"config written, but restarting {service} failed: {_describe(e)}", file=sys.stderr
            )
            return 1
    return 0


def _describe(error: Exception) -> str:
    if isinstance(error, subprocess.CalledProcessError):
        return (error.stderr or "").strip() or f"snapctl exited with {error.returncode}"
    return str(error)


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if args != ["configure"]:
        print("usage: python -m grafana_agent_bridge.snapconfig configure", file=sys.stderr)
        return 2
    return run_configure(os.environ)


if __name__ == "__main__":
    sys.exit(main())
