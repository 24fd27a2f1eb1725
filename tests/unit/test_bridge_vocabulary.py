"""The charm and the bridge speak one vocabulary: the same durations and sizes, snap keys the
snap knows, defaults the bridge accepts, and the same advertised Prometheus version.

The charm cannot import the bridge at run time (the bridge ships in the snap), so it carries a
copy of the bridge's units module; these tests hold the copy and the charm's use of it to the
bridge's real validator (the configure hook's ``build_config``).
"""

from __future__ import annotations

import sys
from datetime import timedelta
from pathlib import Path

import pytest
import yaml
from charm_builders import grafana, peers, settle, source_data
from ops import testing

import bridge_units
import config as charm_config
from snap_sync import SECURITY_KEYS
from tests.fake_workload import FakeWorkload
from workload import MANAGED_KEYS

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "bridge"))
from grafana_agent_bridge.config import units  # noqa: E402
from grafana_agent_bridge.snapconfig import (  # noqa: E402
    SNAP_KEYS,
    SnapSettingError,
    build_config,
)

DURATIONS = [
    # valid: every unit, combinations in order, zero, blanks around, the 1000y bound
    "0", "0s", "1ms", "30s", "1m", "1h30m", "15d", "2w", "1y", "1y2w3d4h5m6s7ms", "007s",
    " 15d ", "1000y", "999y51w",
    # invalid: order, repetition, fraction, sign, bare numbers, spaces, case, unknown units,
    # non-ASCII digits, line breaks, emptiness, beyond the bound
    "", " ", "s", "15", "1.5h", "-1s", "+1s", "30m1h", "1h1h", "1ms1s", "1 h", "1h 30m", "1H",
    "15x", "1us", "1ns", "٣s", "1h\n", "1h\n30m", "1000y1ms", "1001y", "1" + "0" * 30 + "y",
]  # fmt: skip
SIZES = [
    # valid: bare bytes, every unit, either spelling, any case, a fraction, a blank before the
    # unit, zero, just under the bound
    "0", "0B", "1024", "512KB", "512KiB", "32MiB", "10GB", "1.5GiB", "2TB", "3PiB", "7mb",
    "10 GB", " 1b ", "1023PiB",
    # invalid: no number, unknown unit, sign, comma, words, bits, the bound, non-ASCII digits
    "", "MB", "10XB", "-1GB", "+1GB", "1,5GB", "ten", "1Gb/s", "1e3", ".5GB", "1024PiB",
    "1EB", "٣GB", "1GB\n2",
]  # fmt: skip


def _outcome(parse, text: str) -> object:
    try:
        return parse(text)
    except ValueError as e:
        return f"error: {e}"


def test_the_charm_carries_an_exact_copy_of_the_bridge_units_module() -> None:
    bridge_copy = ROOT / "bridge/grafana_agent_bridge/config/units.py"
    assert (ROOT / "src/bridge_units.py").read_bytes() == bridge_copy.read_bytes(), (
        "src/bridge_units.py differs from the bridge's config/units.py: copy it over"
    )


@pytest.mark.parametrize("text", DURATIONS)
def test_both_copies_read_durations_alike(text: str) -> None:
    assert _outcome(bridge_units.parse_duration, text) == _outcome(units.parse_duration, text)
    assert bridge_units.match_duration_ms(text) == units.match_duration_ms(text)


@pytest.mark.parametrize("text", SIZES)
def test_both_copies_read_sizes_alike(text: str) -> None:
    assert _outcome(bridge_units.parse_size, text) == _outcome(units.parse_size, text)


def _charm_accepts(option: str, value: str) -> bool:
    try:
        charm_config.load({option: value})
    except charm_config.ConfigError:
        return False
    return True


def _snap_accepts(key: str, value: str) -> bool:
    try:
        build_config({key: value}, data_dir="/d")
    except SnapSettingError:
        return False
    return True


@pytest.mark.parametrize("text", DURATIONS)
def test_the_charm_accepts_a_retention_time_exactly_when_the_snap_does(text: str) -> None:
    assert _charm_accepts("retention-time", text) == _snap_accepts("retention-time", text)


@pytest.mark.parametrize("text", SIZES)
def test_the_charm_accepts_a_retention_size_exactly_when_the_snap_does(text: str) -> None:
    assert _charm_accepts("retention-size", text) == _snap_accepts("retention-size", text)


def test_the_tables_hold_valid_and_invalid_values() -> None:
    """A table of only valid (or only invalid) values would let the agreement tests pass
    vacuously."""
    durations = {_snap_accepts("retention-time", t) for t in DURATIONS}
    sizes = {_snap_accepts("retention-size", t) for t in SIZES}
    assert durations == {True, False} and sizes == {True, False}


@pytest.mark.parametrize("text", ["0", "0s", "15", "1h1h", "30m1h", "٣s", "1h30x"])
def test_a_scrape_interval_is_a_positive_prometheus_duration(text: str) -> None:
    with pytest.raises(charm_config.ConfigError, match=r"^scrape-interval:"):
        charm_config.load({"scrape-interval": text})


def test_the_managed_snap_keys_are_keys_the_snap_reads() -> None:
    snap_keys = {key.name for key in SNAP_KEYS}
    assert set(MANAGED_KEYS) <= snap_keys, sorted(set(MANAGED_KEYS) - snap_keys)
    assert set(SECURITY_KEYS) <= set(MANAGED_KEYS)  # what it applies alone when refused


def test_the_charm_defaults_reach_the_snap_and_pass_its_validator(ctx, machine: FakeWorkload):
    """With every option at its charmcraft.yaml default, the settings the charm hands to the
    snap are managed keys only, and the bridge's validator reads them as the defaults mean."""
    options = yaml.safe_load((ROOT / "charmcraft.yaml").read_text())["config"]["options"]
    defaults = {name: spec["default"] for name, spec in options.items() if "default" in spec}
    charm_config.load(defaults)  # the charm's own validator agrees first
    out = settle(ctx, testing.State(leader=True, relations={peers()}, config=defaults))
    assert not isinstance(out.unit_status, testing.BlockedStatus), out.unit_status
    assert machine.settings, "the charm set nothing on the snap"
    assert set(machine.settings) <= set(MANAGED_KEYS)
    cfg = build_config(machine.settings, data_dir="/d")  # raises if the bridge refuses them
    assert cfg.storage.retention_time == units.parse_duration(defaults["retention-time"])
    assert cfg.storage.retention_time == timedelta(days=15)
    assert cfg.storage.retention_size == units.parse_size(defaults["retention-size"])
    assert cfg.listen == ("0.0.0.0", defaults["port"])


def test_grafana_is_told_the_version_the_bridge_advertises(ctx) -> None:
    source = grafana("grafana", "g-1", [0])
    state = testing.State(relations={source, peers()}, leader=True, config={"query-auth": False})
    out = ctx.run(ctx.on.relation_changed(source, remote_unit=0), state)
    version = source_data(out, source)["extra_fields"]["prometheusVersion"]
    assert version == units.PROMETHEUS_COMPAT_VERSION  # what /api/v1/status/buildinfo says
