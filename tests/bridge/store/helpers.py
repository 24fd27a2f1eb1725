"""Builders shared by the store tests (imported as ``store.helpers`` from ``tests/bridge``)."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from grafana_agent_bridge.labels import Labels, Matcher, MatchType, make_labels
from grafana_agent_bridge.storage import SeriesBatch, SeriesData


def lbl(name: str = "m", **labels: str) -> Labels:
    return make_labels({"__name__": name, **labels})


def batch(labels: Labels, ts: Iterable[int], values: Iterable[float]) -> SeriesBatch:
    return SeriesBatch(labels, np.array(list(ts), np.int64), np.array(list(values), np.float64))


def eq(name: str, value: str) -> Matcher:
    return Matcher(name, MatchType.EQUAL, value)


def as_dict(series: Iterable[SeriesData]) -> dict[Labels, list[tuple[int, float]]]:
    return {
        s.labels: list(zip(s.timestamps.tolist(), s.values.tolist(), strict=True)) for s in series
    }


def write_scrapes(store, n_series: int, scrapes: Iterable[int], step_ms: int = 15_000) -> int:
    """Append one sample per series per scrape (like a remote-write sender); returns samples."""
    total = 0
    for k in scrapes:
        t = k * step_ms
        store.append(
            [batch(lbl("load", i=str(i)), [t], [float(i * 1000 + k)]) for i in range(n_series)]
        )
        total += n_series
    return total
