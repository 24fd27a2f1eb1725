"""Which snap this unit should run: the attached ``bridge-snap`` resource, else a store channel.

The charm remembers the :attr:`SnapSource.key` of what it installed (in its stored state) and
installs again only when the wanted key differs: a new channel in the config, or a resource
with different content (keyed by its SHA-256, so re-attaching the same file changes nothing).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import ops

from workload import Workload

RESOURCE = "bridge-snap"


@dataclass(frozen=True)
class SnapSource:
    file: Path | None
    """The attached snap file; None: install from the store."""
    channel: str
    key: str
    """``resource:<sha256>`` or ``store:<channel>``: equal keys, same snap."""

    def install(self, workload: Workload) -> None:
        """Raises WorkloadError when snapd fails."""
        if self.file is not None:
            workload.install_from_file(self.file)
        else:
            workload.install_from_store(self.channel)


def wanted(model: ops.Model, channel: str) -> SnapSource:
    snap_file = attached(model)
    if snap_file is not None:
        return SnapSource(snap_file, channel, f"resource:{file_digest(snap_file)}")
    return SnapSource(None, channel, f"store:{channel}")


def attached(model: ops.Model) -> Path | None:
    """The attached ``bridge-snap`` resource, when there is a non-empty one."""
    try:
        path = model.resources.fetch(RESOURCE)
    except (ops.ModelError, NameError, RuntimeError):
        # Juju: ModelError when nothing is attached; ops.testing raises RuntimeError.
        return None
    return path if path.exists() and path.stat().st_size > 0 else None


def file_digest(path: Path) -> str:
    """SHA-256 of a file, read in chunks (a snap is tens of MiB)."""
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()
