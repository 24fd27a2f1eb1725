"""The host's distribution from os-release (node_exporter's ``os`` collector).

Read under ``rootfs``: inside a strict snap, /etc/os-release is the snap base's, not the host's.
"""

from __future__ import annotations

import calendar
import re
import time

from .families import Collected
from .hostfs import HostPaths

_FILES = ("/etc/os-release", "/usr/lib/os-release")
_VERSION = re.compile(r"^[0-9]+\.?[0-9]*")
_INFO_LABELS = {  # label → os-release key
    "build_id": "BUILD_ID",
    "id": "ID",
    "id_like": "ID_LIKE",
    "image_id": "IMAGE_ID",
    "image_version": "IMAGE_VERSION",
    "name": "NAME",
    "pretty_name": "PRETTY_NAME",
    "variant": "VARIANT",
    "variant_id": "VARIANT_ID",
    "version": "VERSION",
    "version_codename": "VERSION_CODENAME",
    "version_id": "VERSION_ID",
}
_ASSIGNMENT = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)=(.*)$")


def parse_os_release(text: str) -> dict[str, str]:
    """KEY=value lines, with shell quoting (``"..."``, ``'...'``, backslash escapes)."""
    env: dict[str, str] = {}
    for line in text.splitlines():
        m = _ASSIGNMENT.match(line.strip())
        if m is None:
            continue
        key, raw = m.groups()
        if len(raw) >= 2 and raw[0] == raw[-1] == "'":
            value = raw[1:-1]
        elif len(raw) >= 2 and raw[0] == raw[-1] == '"':
            value = re.sub(r'\\([$`"\\\n])', r"\1", raw[1:-1])
        else:
            value = re.sub(r"\\(.)", r"\1", raw)
        env[key] = value
    return env


def collect_os(src: HostPaths, out: Collected) -> None:
    for name in _FILES:
        try:
            text = src.root_path(name).read_text()
            break
        except FileNotFoundError:
            continue
    else:
        raise FileNotFoundError(f"no os-release under {src.rootfs}")
    env = parse_os_release(text)
    out.family(
        "node_os_info",
        "gauge",
        "A metric with a constant '1' value labeled by build_id, id, id_like, image_id, "
        "image_version, name, pretty_name, variant, variant_id, version, version_codename, "
        "version_id.",
    )
    out.add(
        "node_os_info", 1.0, **{label: env.get(key, "") for label, key in _INFO_LABELS.items()}
    )
    m = _VERSION.match(env.get("VERSION_ID", ""))
    if m is not None and float(m.group(0)) > 0:
        out.family(
            "node_os_version", "gauge", "Metric containing the major.minor part of the OS version."
        )
        out.add(
            "node_os_version",
            float(m.group(0)),
            id=env.get("ID", ""),
            id_like=env.get("ID_LIKE", ""),
            name=env.get("NAME", ""),
        )
    if env.get("SUPPORT_END"):
        end = calendar.timegm(time.strptime(env["SUPPORT_END"], "%Y-%m-%d"))
        out.family(
            "node_os_support_end_timestamp_seconds",
            "gauge",
            "Metric containing the end-of-life date timestamp of the OS.",
        )
        out.add("node_os_support_end_timestamp_seconds", float(end))
