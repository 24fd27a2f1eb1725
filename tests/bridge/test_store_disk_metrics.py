"""The data directory's filesystem space at /metrics, which the disk alert rules read."""

from __future__ import annotations

import os
import re
from pathlib import Path

from grafana_agent_bridge.metrics import Registry
from grafana_agent_bridge.store import Store, StoreOptions
from grafana_agent_bridge.store.metrics import register_store_metrics


def _value(text: str, name: str) -> float:
    match = re.search(rf"^{name} (\S+)$", text, re.MULTILINE)
    assert match, f"{name} missing from the exposition"
    return float(match.group(1))


def test_disk_gauges_are_the_data_directory_filesystem(tmp_path: Path) -> None:
    registry = Registry()
    store = Store.open(tmp_path / "data", StoreOptions())
    try:
        register_store_metrics(store, registry)
        text = registry.expose()
        st = os.statvfs(tmp_path / "data")
        assert "# TYPE bridge_store_disk_avail_bytes gauge" in text
        assert _value(text, "bridge_store_disk_size_bytes") == st.f_blocks * st.f_frsize
        avail = _value(text, "bridge_store_disk_avail_bytes")
        # Other processes write to the same filesystem meanwhile: equal within 64 MiB.
        assert abs(avail - st.f_bavail * st.f_frsize) < 64 << 20
        assert 0 < avail <= _value(text, "bridge_store_disk_size_bytes")
    finally:
        store.close()


def test_an_unreadable_directory_reads_as_nan_not_an_error(tmp_path: Path) -> None:
    registry = Registry()
    store = Store.open(tmp_path / "data", StoreOptions())
    store.close()
    register_store_metrics(store, registry)
    store.path = tmp_path / "gone"  # what a removed data directory looks like to statvfs
    text = registry.expose()
    assert "bridge_store_disk_avail_bytes NaN" in text
    assert "bridge_store_disk_size_bytes NaN" in text
