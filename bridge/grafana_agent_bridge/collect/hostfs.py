"""Where the host's /proc, /sys and root filesystem are, and bounded readers for them.

Every host reader takes a :class:`HostPaths` so that tests point it at fixture files and a
strict snap points it at the host (node_exporter's ``--path.procfs``/``--path.sysfs``/
``--path.rootfs``): inside the snap /proc and /sys are the host's, but "/" is the snap's base,
so files of the host's own root (``/etc/os-release``, mountpoints) are read under ``rootfs``.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from .families import Collected

MAX_TABLE_LINES = 65536
"""Most lines read from a per-socket table (/proc/net/tcp, udp, arp): on a host with more
sockets than this the family is skipped (its collector reports failure) instead of reading
megabytes every interval."""


class TooLargeError(ValueError):
    """A table is longer than :data:`MAX_TABLE_LINES`."""


@dataclass(frozen=True)
class HostPaths:
    proc: Path = Path("/proc")
    sys: Path = Path("/sys")
    rootfs: Path = Path("/")
    user_hz: int = field(default_factory=lambda: os.sysconf("SC_CLK_TCK"))
    page_size: int = field(default_factory=lambda: os.sysconf("SC_PAGE_SIZE"))

    @property
    def host_view(self) -> bool:
        """True when "/" is not the host's root (a strict snap sees it under ``rootfs``)."""
        return self.rootfs != Path("/")

    def proc_text(self, relative: str) -> str:
        return (self.proc / relative).read_text()

    def sys_text(self, relative: str) -> str:
        return (self.sys / relative).read_text()

    def root_path(self, absolute: str) -> Path:
        """A path of the host's root filesystem, as this process can open it."""
        return self.rootfs / absolute.lstrip("/")

    def proc_table(self, relative: str) -> list[str]:
        """The lines of a per-socket table, refusing one longer than MAX_TABLE_LINES.

        Raises:
            TooLargeError: the table has more lines than the bound.
        """
        lines: list[str] = []
        with open(self.proc / relative) as f:
            for line in f:
                lines.append(line)
                if len(lines) > MAX_TABLE_LINES:
                    raise TooLargeError(f"{relative} has more than {MAX_TABLE_LINES} lines")
        return lines


Part = Callable[[HostPaths, Collected], None]
"""One node_exporter collector's worth of metrics: reads the host and adds to ``Collected``."""


def read_int(text: str) -> int:
    """A sysfs number as node_exporter parses it: decimal, or hex with a ``0x`` prefix."""
    text = text.strip()
    return int(text, 16) if text.lower().startswith("0x") else int(text)
