"""Hypothesis profiles for the model simulation, and the events-to-quiescence summary.

``HYPOTHESIS_PROFILE`` picks the profile: ``ci`` (the default: few examples, derandomized so
CI is reproducible), ``dev`` (more examples, random), ``deep`` (an afternoon's worth).
"""

from __future__ import annotations

import logging
import os
import statistics
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, settings
from model_world import QUIESCENCE

_COMMON: dict[str, Any] = {
    "deadline": None,
    "suppress_health_check": [HealthCheck.too_slow],
    "print_blob": True,
}
# CI does not shrink (a model run takes seconds, shrinking could take many minutes): the seed
# and the one-line reproduction printed on failure are enough to replay it.
settings.register_profile(
    "ci",
    max_examples=10,
    derandomize=True,
    phases=[Phase.explicit, Phase.reuse, Phase.generate],
    **_COMMON,
)
settings.register_profile("dev", max_examples=40, **_COMMON)
settings.register_profile("deep", max_examples=500, **_COMMON)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


@pytest.fixture(autouse=True)
def quiet_hooks(caplog: pytest.LogCaptureFixture) -> None:
    """Thousands of hooks log at DEBUG: keep only warnings, or a failure's report drowns."""
    caplog.set_level(logging.WARNING)


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if not QUIESCENCE:
        return
    terminalreporter.section("model simulation: hooks to quiescence")
    by_test: dict[str, list[tuple[str, int, int, int, int]]] = {}
    for row in QUIESCENCE:
        by_test.setdefault(row[0], []).append(row)
    for name, rows in sorted(by_test.items()):
        hooks = [r[3] for r in rows]
        writes = [r[4] for r in rows]
        terminalreporter.write_line(
            f"{name}: {len(rows)} runs, hooks to quiescence min/median/max "
            f"{min(hooks)}/{statistics.median(hooks):g}/{max(hooks)}, databag writes "
            f"{min(writes)}/{statistics.median(writes):g}/{max(writes)}, "
            f"bridge units {min(r[1] for r in rows)}-{max(r[1] for r in rows)}"
        )
