"""The gates cannot pass silently: a test whose input is missing fails under CI, never skips.

The PromQL corpus and the charmcraft/snapcraft schemas live in ``../shared`` beside the
checkout. A developer's clone may not have it, so those tests skip there; but CI always has it,
and a skip under CI would leave the engine's main gate green without running it. Every test
module that reads ``../shared`` must therefore go through ``tests.support.require_shared``,
and that helper must fail, not skip, when ``CI`` (or ``REQUIRE_SHARED=1``) is set.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.support import SHARED, require_shared

TESTS = Path(__file__).resolve().parents[1]
# How a test module names a file of ../shared: the helper's constant, or a path of its own.
READS_SHARED = re.compile(r"\bSHARED\b|[\"']\.\./shared|/ *[\"']shared[\"']")


def _modules_reading_shared() -> list[Path]:
    return [
        path
        for path in sorted(TESTS.rglob("*.py"))
        if path.name != "support.py"
        and path != Path(__file__)
        and READS_SHARED.search(path.read_text())
    ]


def test_the_corpus_and_schema_tests_are_found() -> None:
    """The scan below sees the modules it must guard (else it would pass by finding none)."""
    names = {p.name for p in _modules_reading_shared()}
    assert {"test_promql_corpus.py", "test_charmcraft.py", "test_snapcraft.py"} <= names


@pytest.mark.parametrize("module", _modules_reading_shared(), ids=lambda p: p.name)
def test_every_reader_of_shared_goes_through_require_shared(module: Path) -> None:
    text = module.read_text()
    assert "require_shared(" in text, (
        f"{module.relative_to(TESTS)} reads ../shared without tests.support.require_shared: "
        "under CI a missing ../shared would skip it silently"
    )
    assert not re.search(r"skip(if)?\([^)]*(CORPUS|SCHEMA|SHARED)", text), (
        f"{module.relative_to(TESTS)} skips on a ../shared path itself; use require_shared"
    )


@pytest.mark.parametrize("variable", ["CI", "REQUIRE_SHARED"])
def test_missing_shared_input_fails_under_ci(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, variable: str
) -> None:
    monkeypatch.delenv("CI", raising=False)
    monkeypatch.delenv("REQUIRE_SHARED", raising=False)
    monkeypatch.setenv(variable, "1")
    with pytest.raises(pytest.fail.Exception, match="CI requires it"):
        require_shared(tmp_path / "absent", "the PromQL corpus")


def test_missing_shared_input_skips_for_a_developer(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("CI", raising=False)
    monkeypatch.delenv("REQUIRE_SHARED", raising=False)
    with pytest.raises(pytest.skip.Exception):
        require_shared(tmp_path / "absent", "the PromQL corpus")


def test_present_shared_input_neither_skips_nor_fails(tmp_path: Path) -> None:
    require_shared(tmp_path, "a directory that exists")
    assert SHARED.name == "shared"
