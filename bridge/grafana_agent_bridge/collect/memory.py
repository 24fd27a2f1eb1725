"""Memory metrics: /proc/meminfo and /proc/vmstat (node_exporter's ``meminfo``, ``vmstat``)."""

from __future__ import annotations

import re

from .families import Collected
from .hostfs import HostPaths

VMSTAT_FIELDS = re.compile(r"^(oom_kill|pgpg|pswp|pg.*fault).*")
"""The /proc/vmstat fields node_exporter exports by default (its --collector.vmstat.fields)."""


def collect_meminfo(src: HostPaths, out: Collected) -> None:
    for line in src.proc_text("meminfo").splitlines():
        key, _, rest = line.partition(":")
        parts = rest.split()
        if not parts:
            continue
        value = float(parts[0])
        if len(parts) > 1 and parts[1] == "kB":
            value *= 1024
            name = f"node_memory_{_metric_part(key)}_bytes"
        else:
            name = f"node_memory_{_metric_part(key)}"
        out.family(name, "gauge", f"Memory information field {name[12:]}.")
        out.add(name, value)


def collect_vmstat(src: HostPaths, out: Collected) -> None:
    """Paging, swapping, page faults and OOM kills (untyped in node_exporter)."""
    for line in src.proc_text("vmstat").splitlines():
        parts = line.split()
        if len(parts) < 2 or not VMSTAT_FIELDS.match(parts[0]):
            continue
        name = f"node_vmstat_{parts[0]}"
        out.family(name, "unknown", f"/proc/vmstat information field {parts[0]}.")
        out.add(name, float(parts[1]))


def _metric_part(key: str) -> str:
    """``Active(anon)`` → ``Active_anon``, as node_exporter names meminfo fields."""
    return re.sub(r"[^a-zA-Z0-9_]", "_", key.replace("(", "_").replace(")", "")).strip("_")
