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
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from grafana_agent_bridge.config import BridgeConfig, ConfigError

__all__ = [
    "SNAP_KEYS",
    "SnapKey",
    "SnapSettingError",
    "build_config",
    "main",
    "run_configure",
    "write_if_changed",
]


class SnapSettingError(ValueError):
    """A snap setting is invalid; the message starts with the snap key's name."""


def _as_list(key: str, value: object) -> list[str]:
    """Comma-separated text (what ``snap set k=a,b`` gives) or a JSON list of strings."""
    if isinstance(value, str):
        return [item.strip() for item in value.split(",") if item.strip()]
    if isinstance(value, list) and all(isinstance(item, str) for item in value):
        return [item.strip() for item in value if item.strip()]
    raise SnapSettingError(f"{key}: expected a comma-separated list, got {json.dumps(value)}")


def _scalar(key: str, value: object) -> object:
    if isinstance(value, (dict, list)):
        raise SnapSettingError(f"{key}: expected a single value, got {json.dumps(value)}")
    return value


def _forward_targets(key: str, value: object) -> list[dict[str, object]]:
    return [{"url": url} for url in _as_list(key, value)]


def _scrape_targets(key: str, value: object) -> list[dict[str, object]]:
    targets: list[dict[str, object]] = []
    for item in _as_list(key, value):
        job, sep, url = item.partition("=")
        if not sep or not job.strip() or not url.strip():
            raise SnapSettingError(f"{key}: expected JOB=URL items, got {json.dumps(item)}")
        targets.append({"job_name": job.strip(), "url": url.strip()})
    return targets


@dataclass(frozen=True)
class SnapKey:
    """One ``snap set`` key and where it lands in the bridge's configuration file."""

    name: str
    path: str
    help: str
    convert: Callable[[str, object], object] = _scalar
    example: str = ""


SNAP_KEYS: tuple[SnapKey, ...] = (
    SnapKey(
        "listen-address",
        "listen_address",
        "HOST:PORT the bridge listens on; unset = 127.0.0.1:9099 (loopback only).",
        example="0.0.0.0:9099",
    ),
    SnapKey("log-level", "log.level", "debug, info, warning or error.", example="info"),
    SnapKey("log-format", "log.format", "text or json.", example="json"),
    SnapKey("retention-time", "storage.retention_time", "Keep samples this long.", example="30d"),
    SnapKey(
        "retention-size", "storage.retention_size", "Disk budget, 0 = unlimited.", example="20GB"
    ),
    SnapKey(
        "allowed-clients",
        "ingest.allowed_clients",
        "Comma-separated IPs/CIDRs allowed to remote-write; empty = anyone.",
        _as_list,
        "10.0.0.0/8,192.168.1.20",
    ),
    SnapKey(
        "max-body-size", "ingest.max_body_bytes", "Largest remote-write body.", example="32MiB"
    ),
    SnapKey(
        "query-auth-token",
        "query.auth_token",
        "Bearer token the query API requires; empty = none.",
        example="s3cret",
    ),
    SnapKey("query-timeout", "query.timeout", "Query time limit.", example="2m"),
    SnapKey(
        "query-max-samples", "query.max_samples", "Per-query sample limit.", example="50000000"
    ),
    SnapKey("collect-interval", "collect.interval", "Collection interval.", example="15s"),
    SnapKey("collect-host", "collect.host", "Collect host metrics (true/false).", example="true"),
    SnapKey("collect-self", "collect.self", "Collect own metrics (true/false).", example="true"),
    SnapKey(
        "scrape-targets",
        "collect.scrape",
        "Comma-separated JOB=URL exposition endpoints to scrape.",
        _scrape_targets,
        "node=http://127.0.0.1:9100/metrics",
    ),
    SnapKey(
        "forward-urls",
        "forward.targets",
        "Comma-separated remote-write URLs to forward everything to.",
        _forward_targets,
        "http://mimir:9009/api/v1/push",
    ),
    SnapKey(
        "tracing-endpoint",
        "tracing.otlp_endpoint",
        "OTLP/HTTP receiver for the bridge's traces; empty = off.",
        example="http://tempo:4318",
    ),
    SnapKey(
        "tracing-sample-ratio", "tracing.sample_ratio", "Fraction of traces kept.", example="1.0"
    ),
    SnapKey("tls-cert-file", "tls.cert_file", "PEM certificate; serve HTTPS when set."),
    SnapKey("tls-key-file", "tls.key_file", "PEM key of tls-cert-file."),
)


def _snap_key_for(path: str) -> str:
    """Name the snap key(s) behind a config error path (``forward.targets[1].url``)."""
    names = []
    for part in path.split(" and "):
        for key in SNAP_KEYS:
            if part == key.path or part.startswith((key.path + ".", key.path + "[")):
                names.append(key.name)
                break
        else:
            names.append(part)
    return " and ".join(names)


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
            messages = by_key.setdefault(_snap_key_for(path), [])
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
