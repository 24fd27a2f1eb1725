"""Process and thread counts from /proc/<pid>/stat (node_exporter's ``processes`` collector).

Off by default in node_exporter; here it reads one small file per process (not per thread,
so the per-thread ``node_processes_threads_state`` is not produced), which is cheap at the
process counts of the machines this bridge runs on.
"""

from __future__ import annotations

import os
from collections import Counter

from .families import Collected
from .hostfs import HostPaths

MAX_PROCESSES = 65536
"""Most processes read per collection; beyond it the family is skipped (reported failed)."""


def collect_processes(src: HostPaths, out: Collected) -> None:
    pids = [name for name in os.listdir(src.proc) if name.isdigit()]
    if len(pids) > MAX_PROCESSES:
        raise ValueError(f"{len(pids)} processes, more than {MAX_PROCESSES}")
    states: Counter[str] = Counter()
    threads = 0
    for pid in pids:
        try:
            stat = (src.proc / pid / "stat").read_text()
        except OSError:  # exited since the listing, or hidden (hidepid)
            continue
        # "pid (comm) state ppid ...": comm may hold spaces and parentheses.
        rest = stat[stat.rfind(")") + 2 :].split()
        if len(rest) < 18:
            continue
        states[rest[0]] += 1
        threads += int(rest[17])
    gauges = (
        ("threads", "Allocated threads in system", threads),
        ("max_threads", "Limit of threads in the system", _number(src, "sys/kernel/threads-max")),
        ("pids", "Number of PIDs", sum(states.values())),
        ("max_processes", "Number of max PIDs limit", _number(src, "sys/kernel/pid_max")),
    )
    for name, help_text, value in gauges:
        out.family(f"node_processes_{name}", "gauge", help_text)
        out.add(f"node_processes_{name}", float(value))
    out.family("node_processes_state", "gauge", "Number of processes in each state.")
    for state, count in states.items():
        out.add("node_processes_state", float(count), state=state)


def _number(src: HostPaths, relative: str) -> int:
    return int(src.proc_text(relative))
