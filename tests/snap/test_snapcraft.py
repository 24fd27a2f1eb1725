"""snap/snapcraft.yaml: valid for snapcraft's schema and consistent with the bridge it packages."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from tests.support import SHARED, require_shared

ROOT = Path(__file__).resolve().parents[2]
SNAPCRAFT = ROOT / "snap" / "snapcraft.yaml"
HOOK = ROOT / "snap" / "hooks" / "configure"
# snapcraft's JSON schema lives beside the repository (not vendored); SNAPCRAFT_SCHEMA overrides.
SCHEMA = Path(os.environ.get("SNAPCRAFT_SCHEMA", SHARED / "schemas" / "snapcraft.json"))


@pytest.fixture(scope="module")
def project() -> dict[str, Any]:
    return yaml.safe_load(SNAPCRAFT.read_text())


@pytest.fixture(scope="module")
def validator() -> Any:
    require_shared(SCHEMA, "the snapcraft schema (SNAPCRAFT_SCHEMA overrides its path)")
    schema = json.loads(SCHEMA.read_text())
    return jsonschema.Draft202012Validator(schema)


def test_snapcraft_yaml_validates_against_the_schema(
    project: dict[str, Any], validator: Any
) -> None:
    error = jsonschema.exceptions.best_match(validator.iter_errors(project))
    assert error is None, f"{list(error.absolute_path)}: {error.message}"


@pytest.mark.parametrize(
    "breakage",
    [
        lambda p: p["apps"]["daemon"].update({"daemon": "sometimes"}),
        lambda p: p["apps"]["daemon"].update({"unknown-key": 1}),
        lambda p: p.pop("parts"),
        lambda p: p.update({"confinement": "loose"}),
    ],
)
def test_the_schema_check_catches_mistakes(
    project: dict[str, Any], validator: Any, breakage: Any
) -> None:
    broken = yaml.safe_load(yaml.safe_dump(project))
    breakage(broken)
    assert list(validator.iter_errors(broken))


def test_strict_core24_with_daemon_and_cli(project: dict[str, Any]) -> None:
    assert project["name"] == "grafana-agent-bridge"
    assert project["base"] == "core24"
    assert project["confinement"] == "strict"
    daemon = project["apps"]["daemon"]
    assert daemon["daemon"] == "simple"
    assert daemon["restart-condition"] == "always"
    # The configure hook writes exactly this file.
    assert daemon["command"].split() == [
        "bin/grafana-agent-bridge",
        "serve",
        "--config",
        "$SNAP_COMMON/config.yaml",
    ]
    assert project["apps"]["grafana-agent-bridge"]["command"] == "bin/grafana-agent-bridge"


def test_daemon_plugs_cover_serving_and_host_metrics(project: dict[str, Any]) -> None:
    plugs = set(project["apps"]["daemon"]["plugs"])
    assert {"network", "network-bind"} <= plugs
    assert {"system-observe", "mount-observe", "network-observe", "hardware-observe"} <= plugs


def test_part_builds_the_bridge_with_its_tracing_extra(project: dict[str, Any]) -> None:
    tomllib = pytest.importorskip("tomllib")
    part = project["parts"]["bridge"]
    assert part["plugin"] == "python"
    assert (ROOT / part["source"] / "pyproject.toml").exists()
    meta = tomllib.loads((ROOT / "bridge" / "pyproject.toml").read_text())
    assert part["python-packages"] == meta["project"]["optional-dependencies"]["tracing"]


def test_configure_hook_is_executable_and_runs_the_bridge_validator() -> None:
    assert HOOK.stat().st_mode & 0o111
    assert "grafana_agent_bridge.snapconfig configure" in HOOK.read_text()


def test_configure_hook_is_shellcheck_clean() -> None:
    if shutil.which("shellcheck") is None:
        pytest.skip("shellcheck is not installed")
    result = subprocess.run(["shellcheck", str(HOOK)], check=False, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout
