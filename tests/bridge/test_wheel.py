"""The bridge as a wheel installs it (non-editable): the README's ``promql-test`` command must
work from it, so every data file the package reads at run time must be in the wheel.

The wheel is built from a copy of ``bridge/`` and installed with ``--no-deps`` into a directory
of its own; the test's interpreter supplies the dependencies, nothing of the source tree is on
the path.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from tests.support import SHARED, require_shared

REPO = Path(__file__).resolve().parents[2]
CORPUS = SHARED / "promql-testdata"
# functions.test is quick (about a second) and has a case listed in known_failures.txt.
CORPUS_FILE = "functions.test"


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(the wheel, the directory it is installed in)."""
    tmp = tmp_path_factory.mktemp("wheel")
    source = shutil.copytree(
        REPO / "bridge",
        tmp / "src",
        ignore=shutil.ignore_patterns("__pycache__", "build", "dist", "*.egg-info"),
    )
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check"]
    build = [*pip, "wheel", "--quiet", "--no-deps", "--no-build-isolation", "-w", tmp / "dist"]
    subprocess.run([*map(str, build), str(source)], check=True, timeout=300)
    (wheel,) = (tmp / "dist").glob("grafana_agent_bridge-*.whl")
    target = tmp / "site"
    install = [*pip, "install", "--quiet", "--no-deps", "--target", str(target), str(wheel)]
    subprocess.run(install, check=True, timeout=300)
    return wheel, target


def test_the_wheel_carries_the_known_failures_list(installed: tuple[Path, Path]) -> None:
    wheel, _ = installed
    names = zipfile.ZipFile(wheel).namelist()
    assert "grafana_agent_bridge/promql/promqltest/known_failures.txt" in names


def test_promql_test_runs_a_corpus_file_from_the_installed_wheel(
    installed: tuple[Path, Path], tmp_path: Path
) -> None:
    corpus = CORPUS / CORPUS_FILE
    require_shared(corpus, "the PromQL corpus")
    _, site = installed
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["PYTHONPATH"] = str(site)  # the installed package, not the source tree
    done = subprocess.run(
        [str(site / "bin" / "grafana-agent-bridge"), "promql-test", str(corpus)],
        check=False,
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "0 failed" in done.stdout and "1 known failures" in done.stdout, done.stdout
