"""Hardware sensors from /sys/class/hwmon (node_exporter's ``hwmon`` collector).

Temperatures, fans, voltages, currents, power and energy, named as node_exporter names them
(``node_hwmon_temp_celsius{chip, sensor}``, ``node_hwmon_chip_names``), so the dashboards'
temperature and fan panels work. Virtual machines usually have no such sensors.
"""

from __future__ import annotations

import os
import re
from collections import Counter
from pathlib import Path

from .families import Collected
from .hostfs import HostPaths

_INVALID = re.compile(r"[^a-z0-9:_]")
_FILENAME = re.compile(r"^(?P<type>[^0-9]+)(?P<id>[0-9]*)?(_(?P<property>.+))?$")
_SENSOR_TYPES = {
    "vrm",
    "beep_enable",
    "update_interval",
    "in",
    "cpu",
    "fan",
    "pwm",
    "temp",
    "curr",
    "power",
    "energy",
    "humidity",
    "intrusion",
    "freq",
}
_READ_BYTES = 128  # one read of a sensor file, as node_exporter does


def clean_name(name: str) -> str:
    """Lower case, anything but ``[a-z0-9:_]`` as ``_``, no leading or trailing ``_``."""
    return _INVALID.sub("_", name.lower()).strip("_")


def _split(filename: str) -> tuple[str, int, str] | None:
    """``temp1_crit_alarm`` → ("temp", 1, "crit_alarm")."""
    m = _FILENAME.match(filename)
    if m is None:
        return None
    return m.group("type"), int(m.group("id") or 0), m.group("property") or ""


def _read_sensors(directory: Path, data: dict[str, dict[str, str]]) -> None:
    for entry in os.scandir(directory):
        parts = _split(entry.name)
        if parts is None or parts[0] not in _SENSOR_TYPES:
            continue
        try:
            fd = os.open(entry.path, os.O_RDONLY)
            try:
                raw = os.read(fd, _READ_BYTES)
            finally:
                os.close(fd)
        except OSError:  # write-only, or the sensor refuses (e.g. no fan connected)
            continue
        sensor = f"{parts[0]}{parts[1]}"
        data.setdefault(sensor, {})[parts[2]] = raw.decode(errors="replace").strip("\n")


def _chip_base_name(directory: Path) -> str:
    """``<bus>_<device>`` of the device the chip sits on, else its ``name``, else the dir."""
    device = directory / "device"
    if device.exists():
        real = Path(os.path.realpath(device))
        dev_name, dev_type = clean_name(real.name), clean_name(real.parent.name)
        if dev_name and dev_type:
            return f"{dev_type}_{dev_name}"
        if dev_name:
            return dev_name
    try:
        name = clean_name((directory / "name").read_text())
    except OSError:
        name = ""
    return name or clean_name(Path(os.path.realpath(directory)).name)


def _emit(out: Collected, chip: str, sensor: str, values: dict[str, str]) -> None:
    sensor_type = _split(sensor)
    if sensor_type is None:
        return
    kind = sensor_type[0]
    labels = {"chip": chip, "sensor": sensor}
    if "label" in values:
        out.family("node_hwmon_sensor_label", "gauge", "Label for given chip and sensor")
        out.add("node_hwmon_sensor_label", 1.0, label=values["label"], **labels)
    if kind == "beep_enable":
        out.family("node_hwmon_beep_enabled", "gauge", "Hardware beep enabled")
        out.add("node_hwmon_beep_enabled", 1.0 if values.get("") == "1" else 0.0, **labels)
        return
    if kind in ("vrm", "update_interval"):
        try:
            value = float(values.get("", ""))
        except ValueError:
            return
        if kind == "vrm":
            name, help_text = "node_hwmon_voltage_regulator_version", "Hardware voltage regulator"
        else:
            name, help_text = (
                "node_hwmon_update_interval_seconds",
                "Hardware monitor update interval",
            )
            value *= 0.001
        out.family(name, "gauge", help_text)
        out.add(name, value, **labels)
        return
    for element, text in values.items():
        if element == "label":
            continue
        name = f"node_hwmon_{kind}"
        if element == "input":
            if "" in values:
                name += "_input"
        elif element:
            name += f"_{clean_name(element)}"
        try:
            value = float(text)
        except ValueError:
            continue
        metric = _metric(kind, element, name, value, values.get("label"))
        if metric is None:
            continue
        name, value, help_text, kind_type = metric
        if kind == "freq":  # node_exporter labels GPU clocks by their label, not the sensor
            freq_labels = {"chip": chip, "sensor": clean_name(values.get("label", ""))}
            out.family(name, kind_type, help_text)
            out.add(name, value, **freq_labels)
            continue
        out.family(name, kind_type, help_text)
        out.add(name, value, **labels)


def _metric(
    kind: str, element: str, name: str, value: float, label: str | None
) -> tuple[str, float, str, str] | None:
    """Metric name, value in base units, help and type for one sensor file, or None."""
    shown = element or "input"
    if element in ("fault", "alarm"):
        return name, value, f"Hardware sensor {element} status ({kind})", "gauge"
    if element == "beep":
        return f"{name}_enabled", value, "Hardware monitor sensor has beeping enabled", "gauge"
    if kind in ("in", "cpu"):
        return f"{name}_volts", value * 0.001, f"Hardware monitor for voltage ({element})", "gauge"
    if kind == "temp" and element != "type":
        return (
            f"{name}_celsius",
            value * 0.001,
            f"Hardware monitor for temperature ({shown})",
            "gauge",
        )
    if kind == "curr":
        return f"{name}_amps", value * 0.001, f"Hardware monitor for current ({element})", "gauge"
    if kind == "energy":
        help_text = f"Hardware monitor for joules used so far ({element})"
        return f"{name}_joule_total", value / 1e6, help_text, "counter"
    if kind == "power" and element == "accuracy":
        return name, value / 1e6, "Hardware monitor power meter accuracy, as a ratio", "gauge"
    if kind == "power" and element in (
        "average_interval",
        "average_interval_min",
        "average_interval_max",
    ):
        help_text = f"Hardware monitor power usage update interval ({element})"
        return f"{name}_seconds", value * 0.001, help_text, "gauge"
    if kind == "power":
        return (
            f"{name}_watt",
            value / 1e6,
            f"Hardware monitor for power usage in watts ({element})",
            "gauge",
        )
    if kind == "humidity":
        return name, value / 1e6, f"Hardware monitor for humidity, as a ratio ({element})", "gauge"
    if kind == "fan" and element in ("input", "min", "max", "target"):
        help_text = f"Hardware monitor for fan revolutions per minute ({element})"
        return f"{name}_rpm", value, help_text, "gauge"
    if kind == "freq":
        if element != "input" or not label:
            return None
        return (
            f"{name}_freq_mhz",
            value / 1e6,
            "Hardware monitor for GPU frequency in MHz",
            "gauge",
        )
    return name, value, f"Hardware monitor {kind} element {element}", "gauge"


def collect_hwmon(src: HostPaths, out: Collected) -> None:
    base = src.sys / "class/hwmon"
    chips: list[tuple[Path, str, str]] = []  # directory, base name, name file
    for path in sorted(base.iterdir()):
        if not path.is_dir():
            continue
        try:
            name_file = (path / "name").read_text().strip()
        except OSError:
            name_file = ""
        chips.append((path, _chip_base_name(path), name_file))
    bases = Counter(b for _, b, _ in chips)
    pairs = Counter((b, n) for _, b, n in chips)
    for path, base_name, name_file in chips:
        chip = base_name
        if bases[base_name] > 1:  # two chips on one device: tell them apart
            suffix = clean_name(name_file)
            if not suffix or pairs[(base_name, name_file)] > 1:
                suffix = clean_name(path.name)
            chip = f"{base_name}_{suffix}"
        data: dict[str, dict[str, str]] = {}
        _read_sensors(path, data)
        if (path / "device").is_dir():
            _read_sensors(path / "device", data)
        if clean_name(name_file):
            out.family(
                "node_hwmon_chip_names", "gauge", "Annotation metric for human-readable chip names"
            )
            out.add("node_hwmon_chip_names", 1.0, chip=chip, chip_name=clean_name(name_file))
        for sensor, values in data.items():
            _emit(out, chip, sensor, values)
