"""The annotations histogram computations give rise to (``util/annotations``).

Functions here return ``Note`` members instead of messages: the engine knows the metric name
and position, and ``Note.message`` writes the text as Prometheus does.
"""

from __future__ import annotations

import json
from enum import Enum


class Note(Enum):
    """An annotation: its Prometheus text (after ``PromQL info: ``/``PromQL warning: ``)."""

    QUANTILE_NAN_RESULT = "input to histogram_quantile has NaN observations, result is NaN"
    QUANTILE_NAN_SKEW = "input to histogram_quantile has NaN observations, result is skewed higher"
    FRACTION_NANS = (
        "input to histogram_fraction has NaN observations, which are excluded from all fractions"
    )
    NOT_COUNTER = "this native histogram metric is not a counter:"
    NOT_GAUGE = "this native histogram metric is not a gauge:"
    MIXED_EXPONENTIAL_CUSTOM = (
        "vector contains a mix of histograms with exponential and custom buckets schemas for "
        "metric name"
    )
    MISMATCHED_CUSTOM_BUCKETS_SUB = "mismatched custom buckets were reconciled during subtraction"
    MISMATCHED_CUSTOM_BUCKETS_ADD = "mismatched custom buckets were reconciled during addition"
    MISMATCHED_CUSTOM_BUCKETS_AGG = "mismatched custom buckets were reconciled during aggregation"
    COUNTER_RESET_COLLISION_ADD = "conflicting counter resets during histogram addition"
    COUNTER_RESET_COLLISION_SUB = "conflicting counter resets during histogram subtraction"
    COUNTER_RESET_COLLISION_AGG = "conflicting counter resets during histogram aggregation"

    @property
    def is_warning(self) -> bool:
        """Prometheus reports these as warnings; the others as infos."""
        return self in _WARNINGS

    def message(self, metric_name: str = "") -> str:
        """Prometheus's full message, e.g. ``PromQL info: input to histogram_quantile has NaN
        observations, result is NaN for metric name "x"``. Go's ``%q`` quoting is
        approximated with JSON's, which agrees for printable names."""
        quoted = json.dumps(metric_name, ensure_ascii=False)
        if self in (Note.NOT_COUNTER, Note.NOT_GAUGE, Note.MIXED_EXPONENTIAL_CUSTOM):
            text = f"{self.value} {quoted}"
        elif metric_name and self in (
            Note.QUANTILE_NAN_RESULT,
            Note.QUANTILE_NAN_SKEW,
            Note.FRACTION_NANS,
        ):
            text = f"{self.value} for metric name {quoted}"
        else:
            text = self.value
        return ("PromQL warning: " if self.is_warning else "PromQL info: ") + text


_WARNINGS = frozenset(
    {
        Note.NOT_COUNTER,
        Note.NOT_GAUGE,
        Note.MIXED_EXPONENTIAL_CUSTOM,
        Note.COUNTER_RESET_COLLISION_ADD,
        Note.COUNTER_RESET_COLLISION_SUB,
        Note.COUNTER_RESET_COLLISION_AGG,
    }
)
