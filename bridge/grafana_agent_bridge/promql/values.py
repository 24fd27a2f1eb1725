"""The engine's internal value types, shaped for evaluating every step of a query at once.

An instant vector is held as a dense ``series x steps`` array of values plus a presence mask,
so a range query over all steps is a handful of numpy operations instead of a Python loop per
step. A range vector keeps the raw samples of all its series in flat arrays and, for every
``(series, step)``, the slice ``[lo, hi)`` of samples in that step's window.

Native histograms come as a parallel column beside the floats: ``Vector.hists`` (a
``series x steps`` object array of ``FloatHistogram | None``) and ``Matrix.hvals`` (a flat one
beside ``vals``), each None when the value holds floats only, which is the common case and
keeps the numpy paths untouched. ``present`` still says where a sample is; where a histogram
sits, the float value is NaN and means nothing, so an operator must look at the column first.
"""

from __future__ import annotations

from bisect import bisect_left
from contextvars import ContextVar
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from ..labels import METRIC_NAME, Labels
from .errors import EvaluationError

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]
Bool = npt.NDArray[np.bool_]
ObjArr = npt.NDArray[np.object_]


def hist_mask(arr: ObjArr) -> Bool:
    """Where an object array of ``FloatHistogram | None`` holds a histogram."""
    return np.not_equal(arr, np.array(None, dtype=object))


def where_hist(mask: Bool, arr: ObjArr) -> ObjArr:
    """``arr`` where ``mask`` is set, None elsewhere (an object-array ``np.where``)."""
    out = np.full(mask.shape, None, dtype=object)
    out[mask] = arr[mask]
    return out


def take_rows(v: Vector, idx: object) -> Vector:
    """The rows ``idx`` (indices or a boolean mask) of ``v``, histogram column included."""
    rows = np.flatnonzero(np.asarray(idx)) if np.asarray(idx).dtype == bool else np.asarray(idx)
    return Vector(
        [v.labels[int(i)] for i in rows],
        v.values[rows],
        v.present[rows],
        None if v.sample_ts is None else v.sample_ts[rows],
        None if v.hists is None else v.hists[rows],
    )


@dataclass
class Vector:
    labels: list[Labels]
    values: F64  # (S, N)
    present: Bool  # (S, N)
    sample_ts: I64 | None = None
    """Sample timestamps (ms) when the vector came straight from a selector (for timestamp())."""
    hists: ObjArr | None = None
    """(S, N) ``FloatHistogram | None``: the histogram samples, None if there are none."""

    def is_hist(self) -> Bool:
        """(S, N) mask of the cells holding a histogram sample."""
        if self.hists is None:
            return np.zeros(self.values.shape, dtype=bool)
        return hist_mask(self.hists)

    def float_present(self) -> Bool:
        """``present`` without the histogram cells."""
        if self.hists is None:
            return self.present
        return self.present & ~hist_mask(self.hists)

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
    hvals: ObjArr | None = None
    """Flat ``FloatHistogram | None`` beside ``vals``; None if there is no histogram sample."""

    @property
    def nsteps(self) -> int:
        return self.lo.shape[1]


Value = Vector | Scalar | String | Matrix


NAME_LABELS = frozenset({METRIC_NAME, "__type__", "__unit__"})
"""What an operation that yields a new quantity drops: the name, and with it the type and unit
labels Prometheus 3.x attaches when type-and-unit labels are enabled."""


_NAME_KEY = (METRIC_NAME,)


DROPPED = "\x00dropped_name"
"""A label only the engine sees (it sorts first, and no valid label name can equal it):
with delayed name removal, a series whose name an operation dropped keeps ``__name__``
and carries this mark until the query's result is finished (``finish_names``)."""

DELAYED_NAME_REMOVAL: ContextVar[bool] = ContextVar("delayed_name_removal", default=False)
"""Set by the engine per query (Prometheus's ``EnableDelayedNameRemoval``, off by default
there): ``drop_name`` then marks instead of removing, so ``label_replace`` and
``by (__name__)`` still see the name, and names go only from the final result."""


def drop_name(labels: Labels) -> Labels:
    """The labels of a new quantity derived from a series: without ``__name__`` (and the
    type and unit labels), or, with delayed name removal, marked to lose them at the end."""
    if not DELAYED_NAME_REMOVAL.get():
        return strip_name(labels)
    if labels and labels[0][0] == DROPPED:
        return labels
    if not any(p[0] in NAME_LABELS for p in labels):
        return labels
    return ((DROPPED, ""), *labels)


def drop_names(labels: list[Labels]) -> list[Labels]:
    """``drop_name`` of each: the usual label set, with ``__name__`` first and no other
    ``__`` label after it, loses it by a slice without a call per series (``rate`` over
    10 k series)."""
    if DELAYED_NAME_REMOVAL.get():
        return [drop_name(lb) for lb in labels]
    return [
        lb[1:]
        if lb and lb[0][0] == METRIC_NAME and (len(lb) == 1 or lb[1][0][:2] != "__")
        else strip_name(lb)
        for lb in labels
    ]


def is_marked(labels: Labels) -> bool:
    return bool(labels) and labels[0][0] == DROPPED


def finish_names(labels: Labels) -> Labels:
    """A result's labels: a marked series loses its name now (``cleanupMetricLabels``)."""
    return strip_name(labels) if is_marked(labels) else labels


def strip_name(labels: Labels) -> Labels:
    """``labels`` without ``__name__``, ``__type__``, ``__unit__`` and the mark, at once
    (what matching signatures and ``without`` groups use in either mode)."""
    if labels and labels[0][0] == DROPPED:
        labels = labels[1:]
    # Labels are sorted, so __name__ (and __type__/__unit__ next to it) is found by bisection:
    # this runs once per series of every rate() and arithmetic result.
    i = bisect_left(labels, _NAME_KEY)
    n = len(labels)
    if i == n or not labels[i][0].startswith("__"):
        return labels
    if labels[i][0] == METRIC_NAME and (i + 1 == n or not labels[i + 1][0].startswith("__")):
        return labels[:i] + labels[i + 1 :]
    return tuple(p for p in labels if p[0] not in NAME_LABELS)


def kept(labels: list[Labels], keep: object) -> list[Labels]:
    """The labels of the rows where the boolean mask ``keep`` is set."""
    return [labels[i] for i in np.flatnonzero(np.asarray(keep))]


def merge_rows(
    labels: list[Labels],
    values: F64,
    present: Bool,
    message: str = "vector cannot contain metrics with the same labelset",
    hists: ObjArr | None = None,
) -> Vector:
    """A vector of these rows, rows that ended up with the same labels combined (they must not
    overlap in time: an operation that dropped the name may have made two series one)."""
    if hists is not None and not hist_mask(hists).any():
        hists = None
    if len(set(labels)) == len(labels):  # the usual case, found without a Python loop
        return Vector(labels, values, present, hists=hists)
    index: dict[Labels, int] = {}
    out_labels: list[Labels] = []
    rows: list[list[int]] = []
    for i, lb in enumerate(labels):
        j = index.get(lb)
        if j is None:
            index[lb] = len(out_labels)
            out_labels.append(lb)
            rows.append([i])
        else:
            rows[j].append(i)
    nsteps = values.shape[1]
    out_v = np.zeros((len(out_labels), nsteps))
    out_p = np.zeros((len(out_labels), nsteps), dtype=bool)
    out_h = None if hists is None else np.full((len(out_labels), nsteps), None, dtype=object)
    for j, members in enumerate(rows):
        if len(members) == 1:
            out_v[j] = values[members[0]]
            out_p[j] = present[members[0]]
            if out_h is not None and hists is not None:
                out_h[j] = hists[members[0]]
            continue
        cnt = present[members].sum(axis=0)
        if (cnt > 1).any():
            raise EvaluationError(message)
        for i in members:
            p = present[i]
            out_v[j][p] = values[i][p]
            out_p[j] |= p
            if out_h is not None and hists is not None:
                out_h[j][p] = hists[i][p]
    keep = out_p.any(axis=1)
    return Vector(
        kept(out_labels, keep),
        out_v[keep],
        out_p[keep],
        hists=None if out_h is None else out_h[keep],
    )
