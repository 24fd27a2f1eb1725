"""CPU frequency, thermal zones and cooling devices, power supplies, from /sys.

node_exporter's ``cpufreq``, ``thermal_zone`` and ``powersupplyclass`` collectors. Virtual
machines usually have none of these; on hardware they feed the dashboards' frequency,
throttling and "on AC power" panels.
"""

from __future__ import annotations

import re
from pathlib import Path

from .families import Collected
from .hostfs import HostPaths

_CPUFREQ_FILES = (  # cpufreq/<file> (kHz) → metric, help
    ("cpuinfo_cur_freq", "frequency_hertz", "Current CPU thread frequency in hertz."),
    ("cpuinfo_min_freq", "frequency_min_hertz", "Minimum CPU thread frequency in hertz."),
    ("cpuinfo_max_freq", "frequency_max_hertz", "Maximum CPU thread frequency in hertz."),
    (
        "scaling_cur_freq",
        "scaling_frequency_hertz",
        "Current scaled CPU thread frequency in hertz.",
    ),
    (
        "scaling_min_freq",
        "scaling_frequency_min_hertz",
        "Minimum scaled CPU thread frequency in hertz.",
    ),
    (
        "scaling_max_freq",
        "scaling_frequency_max_hertz",
        "Maximum scaled CPU thread frequency in hertz.",
    ),
)

# /sys/class/power_supply/<name>/<file> → metric suffix, divisor (µ-units → units, 0.1 °C).
_SUPPLY_NUMBERS: dict[str, tuple[str, float]] = {
    **{f: (f, 1.0) for f in ("authentic", "calibrate", "capacity", "online", "present")},
    **{f: (f, 1.0) for f in ("capacity_alert_max", "capacity_alert_min")},
    "cycle_count": ("cyclecount", 1.0),
    "time_to_empty_now": ("time_to_empty_seconds", 1.0),
    "time_to_full_now": ("time_to_full_seconds", 1.0),
    "current_now": ("current_ampere", 1e6),
    "energy_now": ("energy_watthour", 1e6),
    "voltage_now": ("voltage_volt", 1e6),
    "charge_now": ("charge_ampere", 1e6),
    "power_now": ("power_watt", 1e6),
    **{
        f: (f, 1e6)
        for f in (
            "current_boot",
            "current_max",
            "energy_empty",
            "energy_empty_design",
            "energy_full",
            "energy_full_design",
            "voltage_boot",
            "voltage_max",
            "voltage_max_design",
            "voltage_min",
            "voltage_min_design",
            "voltage_ocv",
            "charge_control_limit",
            "charge_control_limit_max",
            "charge_counter",
            "charge_empty",
            "charge_empty_design",
            "charge_full",
            "charge_full_design",
            "charge_term_current",
            "constant_charge_current",
            "constant_charge_current_max",
            "constant_charge_voltage",
            "constant_charge_voltage_max",
            "precharge_current",
            "input_current_limit",
        )
    },
    **{
        f: (f"{f}_celsius", 10.0)
        for f in (
            "temp",
            "temp_alert_max",
            "temp_alert_min",
            "temp_ambient",
            "temp_ambient_max",
            "temp_ambient_min",
            "temp_max",
            "temp_min",
        )
    },
}
_SUPPLY_INFO = (
    "capacity_level",
    "charge_type",
    "health",
    "manufacturer",
    "model_name",
    "serial_number",
    "status",
    "technology",
    "type",
    "usb_type",
    "scope",
)


def _text(path: Path) -> str | None:
    try:
        return path.read_text().strip()
    except (OSError, UnicodeDecodeError):  # absent, root-only, or refused by the driver
        return None


def _offline(src: HostPaths) -> set[str]:
    """CPUs listed in devices/system/cpu/offline (``2,4-7``)."""
    text = _text(src.sys / "devices/system/cpu/offline") or ""
    cpus: set[str] = set()
    for part in filter(None, text.split(",")):
        first, _, last = part.partition("-")
        cpus.update(str(n) for n in range(int(first), int(last or first) + 1))
    return cpus


def collect_cpufreq(src: HostPaths, out: Collected) -> None:
    base = src.sys / "devices/system/cpu"
    offline = _offline(src)
    found = False
    for _, name, help_text in _CPUFREQ_FILES:
        out.family(f"node_cpu_{name}", "gauge", help_text)
    out.family("node_cpu_scaling_governor", "gauge", "Current enabled CPU frequency governor.")
    for path in sorted(base.glob("cpu[0-9]*")):
        cpu = path.name[3:]
        freq = path / "cpufreq"
        if not cpu.isdigit() or cpu in offline or not freq.is_dir():
            continue
        found = True
        for file, name, _ in _CPUFREQ_FILES:
            text = _text(freq / file)
            if text is not None and text.isdigit():
                out.add(f"node_cpu_{name}", int(text) * 1000.0, cpu=cpu)
        governor = _text(freq / "scaling_governor")
        if governor:
            for available in (_text(freq / "scaling_available_governors") or "").split(" "):
                value = 1.0 if available == governor else 0.0
                out.add("node_cpu_scaling_governor", value, cpu=cpu, governor=available)
    if not found:
        raise FileNotFoundError(f"no cpufreq under {base}")


def collect_thermal_zone(src: HostPaths, out: Collected) -> None:
    base = src.sys / "class/thermal"
    out.family("node_thermal_zone_temp", "gauge", "Zone temperature in Celsius")
    for path in sorted(base.glob("thermal_zone[0-9]*")):
        temp = _text(path / "temp")
        if temp is None or not re.fullmatch(r"-?\d+", temp):
            continue
        kind = _text(path / "type") or ""
        out.add("node_thermal_zone_temp", int(temp) / 1000.0, zone=path.name[12:], type=kind)
    out.family(
        "node_cooling_device_cur_state", "gauge", "Current throttle state of the cooling device"
    )
    out.family(
        "node_cooling_device_max_state", "gauge", "Maximum throttle state of the cooling device"
    )
    for path in sorted(base.glob("cooling_device[0-9]*")):
        current, maximum = _text(path / "cur_state"), _text(path / "max_state")
        if current is None or maximum is None:
            continue
        labels = {"name": path.name[14:], "type": _text(path / "type") or ""}
        out.add("node_cooling_device_cur_state", float(current), **labels)
        out.add("node_cooling_device_max_state", float(maximum), **labels)


def collect_powersupplyclass(src: HostPaths, out: Collected) -> None:
    base = src.sys / "class/power_supply"
    for path in sorted(base.iterdir()):
        if not path.is_dir():
            continue
        supply = path.name
        for file, (suffix, divisor) in _SUPPLY_NUMBERS.items():
            text = _text(path / file)
            if text is None or not re.fullmatch(r"-?\d+", text):
                continue
            name = f"node_power_supply_{suffix}"
            out.family(name, "gauge", f"{suffix} value of /sys/class/power_supply/<power_supply>.")
            out.add(name, int(text) / divisor, power_supply=supply)
        info = {key: _text(path / key) or "" for key in _SUPPLY_INFO}
        out.family(
            "node_power_supply_info", "gauge", "info of /sys/class/power_supply/<power_supply>."
        )
        out.add("node_power_supply_info", 1.0, power_supply=supply, **info)
