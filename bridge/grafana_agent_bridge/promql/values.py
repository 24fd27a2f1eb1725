"""The engine's internal value types, shaped for evaluating every step of a query at once.

An instant vector is held as a dense ``series x steps`` array of values plus a presence mask,
so a range query over all steps is a handful of numpy operations instead of a Python loop per
step. A range vector keeps the raw samples of all its series in flat arrays and, for every
``(series, step)``, the slice ``[lo, hi)`` of samples in that step's window.
"""

from __future__ import annotations

from bisect import bisect_left
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from ..labels import METRIC_NAME, Labels

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]
Bool = npt.NDArray[np.bool_]


@dataclass
class Vector:
    labels: list[Labels]
    values: F64  # (S, N)
    present: Bool  # (S, N)
    sample_ts: I64 | None = None
    """Sample timestamps (ms) when the vector came straight from a selector (for timestamp())."""

    @property
    def nsteps(self) -> int:
        return self.values.shape[1]

    @staticmethod
    def empty(nsteps: int) -> Vector:
        return Vector([], np.zeros((0, nsteps)), np.zeros((0, nsteps), dtype=bool))


@dataclass
class Scalar:
    values: F64  # (N,)


@dataclass
class String:
    value: str


@dataclass
class Matrix:
    """A range vector: per series flat samples and, per step, the window ``[lo, hi)``."""

    labels: list[Labels]
    ts: I64  # flat sample timestamps of all series, series after series
    vals: F64
    offsets: I64  # (S + 1,) start of each series in the flat arrays
    lo: I64  # (S, N)
    hi: I64  # (S, N)
    range_ms: int
    window_end: I64  # (N,) right edge of each step's window (eval time - offset, or @)
    extra: dict[str, object] = field(default_factory=dict)

    @property
    def nsteps(self) -> int:
        return self.lo.shape[1]


Value = Vector | Scalar | String | Matrix


NAME_LABELS = frozenset({METRIC_NAME, "__type__", "__unit__"})
"""What an operation that yields a new quantity drops: the name, and with it the type and unit
labels Prometheus 3.x attaches when type-and-unit labels are enabled."""


_NAME_KEY = (METRIC_NAME,)


def drop_name(labels: Labels) -> Labels:
    # Labels are sorted, so __name__ (and __type__/__unit__ next to it) is found by bisection:
    # this runs once per series of every rate() and arithmetic result.
    i = bisect_left(labels, _NAME_KEY)
    n = len(labels)
    if i == n or not labels[i][0].startswith("__"):
        return labels
    if labels[i][0] == METRIC_NAME and (i + 1 == n or not labels[i + 1][0].startswith("__")):
        return labels[:i] + labels[i + 1 :]
    return tuple(p for p in labels if p[0] not in NAME_LABELS)
