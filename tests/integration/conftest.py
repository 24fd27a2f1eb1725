"""Integration tests deploy the real charm on LXD; they need a reachable Juju controller.

Without one, every test is collected and skipped with the reason, so the suite still reports
them (pytest-operator would otherwise error at fixture setup).
"""

from __future__ import annotations

import shutil
import subprocess

import pytest


def _controller_problem() -> str | None:
    if shutil.which("juju") is None:
        return "no Juju controller: the juju CLI is not installed"
    try:
        probe = subprocess.run(
            ["juju", "show-controller"], capture_output=True, text=True, timeout=30, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as e:
        return f"no Juju controller: juju show-controller failed ({e})"
    if probe.returncode != 0:
        reason = (probe.stderr or probe.stdout).strip().splitlines()
        return "no Juju controller reachable: " + (reason[0] if reason else "unknown error")
    return None


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    problem = _controller_problem()
    if problem is None:
        return
    marker = pytest.mark.skip(reason=problem)
    for item in items:
        item.add_marker(marker)
