"""Filesystems and block devices: mounts + statvfs, /proc/diskstats.

node_exporter's ``filesystem`` and ``diskstats`` collectors, with their default exclusions.
"""

from __future__ import annotations

import os
import re

from .families import Collected
from .hostfs import HostPaths

# node_exporter's default exclusions (collector/filesystem_linux.go).
_FS_TYPES_EXCLUDED = re.compile(
    r"^(autofs|binfmt_misc|bpf|cgroup2?|configfs|debugfs|devpts|devtmpfs|fusectl|hugetlbfs|"
    r"iso9660|mqueue|nsfs|overlay|proc|procfs|pstore|rpc_pipefs|securityfs|selinuxfs|squashfs|"
    r"erofs|sysfs|tracefs)$"
)
_MOUNTS_EXCLUDED = re.compile(
    r"^/(dev|proc|run/credentials/.+|sys|var/lib/docker/.+|var/lib/containers/storage/.+)($|/)"
)
# node_exporter's default: whole disks only (no partitions, RAM disks, loop devices).
_DISKS_EXCLUDED = re.compile(r"^(z?ram|loop|fd|(h|s|v|xv)d[a-z]|nvme\d+n\d+p)\d+$")

_FS_GAUGES = {
    "size_bytes": "Filesystem size in bytes.",
    "free_bytes": "Filesystem free space in bytes.",
    "avail_bytes": "Filesystem space available to non-root users in bytes.",
    "files": "Filesystem total file nodes.",
    "files_free": "Filesystem total free file nodes.",
    "readonly": "Filesystem read-only status.",
    "device_error": "Whether an error occurred while getting statistics for the given device.",
}

# /proc/diskstats columns after (major, minor, name), in order → metric, scale, help.
_DISK_FIELDS = (
    ("reads_completed_total", 1.0, "The total number of reads completed successfully."),
    ("reads_merged_total", 1.0, "The total number of reads merged."),
    ("read_bytes_total", 512.0, "The total number of bytes read successfully."),
    ("read_time_seconds_total", 0.001, "The total number of seconds spent by all reads."),
    ("writes_completed_total", 1.0, "The total number of writes completed successfully."),
    ("writes_merged_total", 1.0, "The number of writes merged."),
    ("written_bytes_total", 512.0, "The total number of bytes written successfully."),
    ("write_time_seconds_total", 0.001, "The total number of seconds spent by all writes."),
    ("io_now", 1.0, "The number of I/Os currently in progress."),
    ("io_time_seconds_total", 0.001, "Total seconds spent doing I/Os."),
    ("io_time_weighted_seconds_total", 0.001, "The weighted # of seconds spent doing I/Os."),
    ("discards_completed_total", 1.0, "The total number of discards completed successfully."),
    ("discards_merged_total", 1.0, "The total number of discards merged."),
    ("discarded_sectors_total", 1.0, "The total number of sectors discarded successfully."),
    (
        "discard_time_seconds_total",
        0.001,
        "This is the total number of seconds spent by all discards.",
    ),
    ("flush_requests_total", 1.0, "The total number of flush requests completed successfully"),
    (
        "flush_requests_time_seconds_total",
        0.001,
        "This is the total number of seconds spent by all flush requests.",
    ),
)


def collect_filesystem(src: HostPaths, out: Collected) -> None:
    """Space and inodes of each real mount; a mount statvfs fails on has device_error 1."""
    for suffix, help_text in _FS_GAUGES.items():
        out.family(f"node_filesystem_{suffix}", "gauge", help_text)
    seen: set[tuple[str, str]] = set()
    # A strict snap's own mount table is the snap's; the host's is PID 1's.
    mount_table = src.proc_text("1/mounts" if src.host_view else "self/mounts")
    for line in mount_table.splitlines():
        fields = line.split()
        if len(fields) < 4:
            continue
        device, mountpoint, fstype, options = fields[:4]
        mountpoint = _unescape_mount(mountpoint)
        if _FS_TYPES_EXCLUDED.match(fstype) or _MOUNTS_EXCLUDED.match(mountpoint):
            continue
        if (device, mountpoint) in seen:
            continue
        seen.add((device, mountpoint))
        labels = {"device": device, "fstype": fstype, "mountpoint": mountpoint}
        ro = 1.0 if "ro" in options.split(",") else 0.0
        try:
            st = os.statvfs(src.root_path(mountpoint) if src.host_view else mountpoint)
        except OSError as e:
            error = (e.strerror or str(e)).lower()
            out.add("node_filesystem_device_error", 1.0, device_error=error, **labels)
            out.add("node_filesystem_readonly", ro, device_error=error, **labels)
            continue
        out.add("node_filesystem_device_error", 0.0, **labels)
        out.add("node_filesystem_readonly", ro, **labels)
        out.add("node_filesystem_size_bytes", st.f_blocks * st.f_frsize, **labels)
        out.add("node_filesystem_free_bytes", st.f_bfree * st.f_frsize, **labels)
        out.add("node_filesystem_avail_bytes", st.f_bavail * st.f_frsize, **labels)
        out.add("node_filesystem_files", st.f_files, **labels)
        out.add("node_filesystem_files_free", st.f_ffree, **labels)


def collect_diskstats(src: HostPaths, out: Collected) -> None:
    """Every /proc/diskstats column the kernel has (discards since 4.18, flushes since 5.5)."""
    for name, _, help_text in _DISK_FIELDS:
        kind = "gauge" if name == "io_now" else "counter"
        out.family(f"node_disk_{name}", kind, help_text)
    for line in src.proc_text("diskstats").splitlines():
        parts = line.split()
        if len(parts) < 14 or _DISKS_EXCLUDED.match(parts[2]):
            continue
        for (name, scale, _), text in zip(_DISK_FIELDS, parts[3:]):
            out.add(f"node_disk_{name}", float(text) * scale, device=parts[2])


def _unescape_mount(path: str) -> str:
    r"""/proc/mounts escapes space, tab, newline and backslash as octal (``\\040``)."""
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), path)
