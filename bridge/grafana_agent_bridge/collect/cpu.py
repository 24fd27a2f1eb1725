"""CPU and scheduler metrics: /proc/stat, /proc/loadavg, /proc/schedstat, /proc/pressure.

node_exporter's ``cpu``, ``stat``, ``loadavg``, ``schedstat`` and ``pressure`` collectors.
"""

from __future__ import annotations

from .families import Collected
from .hostfs import HostPaths

CPU_MODES = ("user", "nice", "system", "idle", "iowait", "irq", "softirq", "steal")

_STAT_COUNTERS = {  # /proc/stat line → metric, help
    "intr": ("node_intr_total", "Total number of interrupts serviced."),
    "ctxt": ("node_context_switches_total", "Total number of context switches."),
    "processes": ("node_forks_total", "Total number of forks."),
}
_STAT_GAUGES = {
    "btime": ("node_boot_time_seconds", "Node boot time, in unixtime."),
    "procs_running": ("node_procs_running", "Number of processes in runnable state."),
    "procs_blocked": (
        "node_procs_blocked",
        "Number of processes blocked waiting for I/O to complete.",
    ),
}


def collect_cpu(src: HostPaths, out: Collected) -> None:
    """Per-CPU mode seconds, and the guest time (already part of user and nice) apart."""
    out.family("node_cpu_seconds_total", "counter", "Seconds the CPUs spent in each mode.")
    out.family(
        "node_cpu_guest_seconds_total",
        "counter",
        "Seconds the CPUs spent in guests (VMs) for each mode.",
    )
    for line in src.proc_text("stat").splitlines():
        if not line.startswith("cpu") or line.startswith("cpu "):
            continue
        fields = line.split()
        cpu = fields[0][3:]
        ticks = [int(t) / src.user_hz for t in fields[1:]]
        for mode, seconds in zip(CPU_MODES, ticks):
            out.add("node_cpu_seconds_total", seconds, cpu=cpu, mode=mode)
        if len(ticks) >= 10:
            out.add("node_cpu_guest_seconds_total", ticks[8], cpu=cpu, mode="user")
            out.add("node_cpu_guest_seconds_total", ticks[9], cpu=cpu, mode="nice")


def collect_stat(src: HostPaths, out: Collected) -> None:
    """Interrupts, context switches, forks, boot time and runnable/blocked processes."""
    for line in src.proc_text("stat").splitlines():
        key, _, rest = line.partition(" ")
        if key in _STAT_COUNTERS:
            name, help_text = _STAT_COUNTERS[key]
            out.family(name, "counter", help_text)
        elif key in _STAT_GAUGES:
            name, help_text = _STAT_GAUGES[key]
            out.family(name, "gauge", help_text)
        else:
            continue
        out.add(name, float(rest.split()[0]))  # intr: the first number is the total


def collect_loadavg(src: HostPaths, out: Collected) -> None:
    fields = src.proc_text("loadavg").split()
    for name, text in zip(("node_load1", "node_load5", "node_load15"), fields):
        out.family(name, "gauge", f"{name[9:]}m load average.")
        out.add(name, float(text))


def collect_schedstat(src: HostPaths, out: Collected) -> None:
    """Per-CPU run and wait time and timeslices (fields 7-9 of each ``cpuN`` line)."""
    names = (
        ("node_schedstat_running_seconds_total", "Number of seconds CPU spent running a process."),
        (
            "node_schedstat_waiting_seconds_total",
            "Number of seconds spent by processing waiting for this CPU.",
        ),
        ("node_schedstat_timeslices_total", "Number of timeslices executed by CPU."),
    )
    for name, help_text in names:
        out.family(name, "counter", help_text)
    for line in src.proc_text("schedstat").splitlines():
        fields = line.split()
        if len(fields) < 10 or not fields[0].startswith("cpu") or not fields[0][3:].isdigit():
            continue
        cpu = fields[0][3:]
        out.add(names[0][0], int(fields[7]) / 1e9, cpu=cpu)
        out.add(names[1][0], int(fields[8]) / 1e9, cpu=cpu)
        out.add(names[2][0], float(fields[9]), cpu=cpu)


_PRESSURE = (  # resource, line kind, metric, what it measures
    ("cpu", "some", "cpu_waiting", "processes have waited for CPU time"),
    ("io", "some", "io_waiting", "processes have waited due to IO congestion"),
    ("io", "full", "io_stalled", "no process could make progress due to IO congestion"),
    ("memory", "some", "memory_waiting", "processes have waited for memory"),
    ("memory", "full", "memory_stalled", "no process could make progress due to memory"),
    ("irq", "full", "irq_stalled", "no process could make progress due to IRQ congestion"),
)


def collect_pressure(src: HostPaths, out: Collected) -> None:
    """Pressure stall totals (µs in the file, seconds exported); irq needs Linux 6.1."""
    found = 0
    for resource in ("cpu", "io", "memory", "irq"):
        try:
            text = src.proc_text(f"pressure/{resource}")
        except FileNotFoundError:
            continue
        totals = {}
        for line in text.splitlines():
            kind, *pairs = line.split()
            fields = dict(p.split("=", 1) for p in pairs)
            totals[kind] = int(fields["total"]) / 1e6
        for res, kind, metric, what in _PRESSURE:
            if res == resource and kind in totals:
                name = f"node_pressure_{metric}_seconds_total"
                out.family(name, "counter", f"Total time in seconds that {what}")
                out.add(name, totals[kind])
        found += 1
    if not found:
        raise FileNotFoundError(f"{src.proc / 'pressure'} (kernel without PSI)")
