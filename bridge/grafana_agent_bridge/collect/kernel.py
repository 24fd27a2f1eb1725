"""Kernel-wide counters and identity: uname, time, file handles, entropy, hung tasks.

node_exporter's ``uname``, ``time``, ``filefd``, ``entropy`` and ``kernel_hung`` collectors.
"""

from __future__ import annotations

import os
import time

from .families import Collected
from .hostfs import HostPaths


def collect_uname(src: HostPaths, out: Collected) -> None:
    # Dashboards made for node_exporter pick their instance list from node_uname_info.
    u = os.uname()
    try:
        domain = src.proc_text("sys/kernel/domainname").strip() or "(none)"
    except OSError:
        domain = "(none)"
    out.family("node_uname_info", "gauge", "Labeled system information as provided by uname.")
    out.add(
        "node_uname_info",
        1.0,
        sysname=u.sysname,
        release=u.release,
        version=u.version,
        machine=u.machine,
        nodename=u.nodename,
        domainname=domain,
    )


def collect_time(src: HostPaths, out: Collected) -> None:
    """The clock, the time zone and the kernel's clock sources."""
    now = time.time()
    local = time.localtime(now)
    out.family("node_time_seconds", "gauge", "System time in seconds since epoch (1970).")
    out.add("node_time_seconds", now)
    out.family("node_time_zone_offset_seconds", "gauge", "System time zone offset in seconds.")
    out.add("node_time_zone_offset_seconds", float(local.tm_gmtoff), time_zone=local.tm_zone)
    base = src.sys / "devices/system/clocksource"
    sources = sorted(
        (p for p in base.glob("clocksource[0-9]*") if p.name[11:].isdigit()),
        key=lambda p: int(p.name[11:]),
    )
    out.family(
        "node_time_clocksource_available_info",
        "gauge",
        "Available clocksources read from '/sys/devices/system/clocksource'.",
    )
    out.family(
        "node_time_clocksource_current_info",
        "gauge",
        "Current clocksource read from '/sys/devices/system/clocksource'.",
    )
    for i, path in enumerate(sources):
        device = str(i)
        for name in (path / "available_clocksource").read_text().split():
            out.add("node_time_clocksource_available_info", 1.0, device=device, clocksource=name)
        current = (path / "current_clocksource").read_text().strip()
        out.add("node_time_clocksource_current_info", 1.0, device=device, clocksource=current)


def collect_filefd(src: HostPaths, out: Collected) -> None:
    """Allocated and maximum file handles (file-nr's middle field is always 0)."""
    fields = src.proc_text("sys/fs/file-nr").split()
    if len(fields) < 3:
        raise ValueError(f"unexpected number of file stats in file-nr: {len(fields)}")
    for name, value in (("allocated", fields[0]), ("maximum", fields[2])):
        out.family(f"node_filefd_{name}", "gauge", f"File descriptor statistics: {name}.")
        out.add(f"node_filefd_{name}", float(value))


def collect_entropy(src: HostPaths, out: Collected) -> None:
    available = float(src.proc_text("sys/kernel/random/entropy_avail"))
    out.family("node_entropy_available_bits", "gauge", "Bits of available entropy.")
    out.add("node_entropy_available_bits", available)
    pool = float(src.proc_text("sys/kernel/random/poolsize"))
    out.family("node_entropy_pool_size_bits", "gauge", "Bits of entropy pool.")
    out.add("node_entropy_pool_size_bits", pool)


def collect_kernel_hung(src: HostPaths, out: Collected) -> None:
    count = float(src.proc_text("sys/kernel/hung_task_detect_count"))
    out.family(
        "node_kernel_hung_tasks_total",
        "counter",
        "Total number of tasks that have been detected as hung since the system booted.",
    )
    out.add("node_kernel_hung_tasks_total", count)
