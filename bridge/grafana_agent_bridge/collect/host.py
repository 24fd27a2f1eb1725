"""This machine's metrics from /proc and /sys, under node_exporter's names and labels.

What the common node dashboards (Grafana's "Node Exporter Full") query, read the way
node_exporter's default collectors read it, so that such a dashboard works on the bridge's
data unchanged. One part per node_exporter collector, each in its own module; a part that
cannot read its files (containers hide some, older kernels lack some) is skipped and reported
as ``node_scrape_collector_success 0``, and the rest is still collected.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

from . import (
    cpu,
    hardware,
    hwmon,
    kernel,
    memory,
    netstat,
    network,
    osrelease,
    processes,
    storage,
    timex,
)
from .families import Collected
from .hostfs import HostPaths, Part

log = logging.getLogger(__name__)

CPU_MODES = cpu.CPU_MODES

PARTS: tuple[tuple[str, Part], ...] = (  # node_exporter collector name → reader
    ("arp", netstat.collect_arp),
    ("conntrack", netstat.collect_conntrack),
    ("cpu", cpu.collect_cpu),
    ("cpufreq", hardware.collect_cpufreq),
    ("diskstats", storage.collect_diskstats),
    ("entropy", kernel.collect_entropy),
    ("filefd", kernel.collect_filefd),
    ("filesystem", storage.collect_filesystem),
    ("hwmon", hwmon.collect_hwmon),
    ("kernel_hung", kernel.collect_kernel_hung),
    ("loadavg", cpu.collect_loadavg),
    ("meminfo", memory.collect_meminfo),
    ("netclass", network.collect_netclass),
    ("netdev", network.collect_netdev),
    ("netstat", netstat.collect_netstat),
    ("os", osrelease.collect_os),
    ("powersupplyclass", hardware.collect_powersupplyclass),
    ("pressure", cpu.collect_pressure),
    ("processes", processes.collect_processes),
    ("schedstat", cpu.collect_schedstat),
    ("sockstat", netstat.collect_sockstat),
    ("softnet", netstat.collect_softnet),
    ("stat", cpu.collect_stat),
    ("tcpstat", netstat.collect_tcpstat),
    ("thermal_zone", hardware.collect_thermal_zone),
    ("time", kernel.collect_time),
    ("timex", timex.collect_timex),
    ("udp_queues", netstat.collect_udp_queues),
    ("uname", kernel.collect_uname),
    ("vmstat", memory.collect_vmstat),
)


class HostCollector:
    def __init__(self, proc: str = "/proc", sys: str = "/sys", rootfs: str = "/") -> None:
        # Where the host's root filesystem is visible. A strict snap runs in its own mount
        # namespace on the core base, so its "/" is not the host's: there the host's mounts
        # come from PID 1's mount table and are measured under the hostfs path, while the
        # labels keep the host's own mountpoints (node_exporter's --path.rootfs).
        self.src = HostPaths(Path(proc), Path(sys), Path(rootfs))
        self._warned: set[str] = set()

    def collect(self) -> Collected:
        out = Collected()
        timings: list[tuple[str, float, float]] = []
        for name, part in PARTS:
            started = time.perf_counter()
            ok = 1.0
            try:
                part(self.src, out)
            except (OSError, ValueError, IndexError, KeyError) as e:
                ok = 0.0
                self._skipped(name, e)
            timings.append((name, time.perf_counter() - started, ok))
        out.family(
            "node_scrape_collector_duration_seconds",
            "gauge",
            "node_exporter: Duration of a collector scrape.",
        )
        out.family(
            "node_scrape_collector_success",
            "gauge",
            "node_exporter: Whether a collector succeeded.",
        )
        for name, seconds, ok in timings:
            out.add("node_scrape_collector_duration_seconds", seconds, collector=name)
            out.add("node_scrape_collector_success", ok, collector=name)
        return out

    def _skipped(self, name: str, error: Exception) -> None:
        if name in self._warned:  # say it once, not every interval
            return
        self._warned.add(name)
        # A file this kernel or container does not have is expected, not a problem.
        level = logging.DEBUG if isinstance(error, FileNotFoundError) else logging.WARNING
        log.log(level, "host metrics: skipping %s: %s", name, error)
