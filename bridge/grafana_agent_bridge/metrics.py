"""The bridge's own metrics, rendered at ``/metrics`` in the Prometheus text format (0.0.4).

A deliberately small registry (counters, gauges, histograms, each with optional labels) so that
every part of the bridge can count what it does without a client-library dependency. The
self-collector also reads the registry directly, so the bridge's own metrics are queryable
through its own API even when nothing scrapes it.

There is no process-wide registry: the daemon makes one at start-up and hands it to each part
that records metrics (each registers its own at construction), so a test makes its own and sees
only what it caused.
"""

from __future__ import annotations

import bisect
import logging
import math
import threading
from collections.abc import Callable, Iterator, Sequence

LabelValues = tuple[str, ...]

log = logging.getLogger(__name__)

DEFAULT_BUCKETS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


def _fmt(v: float) -> str:
    if math.isnan(v):
        return "NaN"
    if math.isinf(v):
        return "+Inf" if v > 0 else "-Inf"
    if v == int(v) and abs(v) < 1e15:
        return str(int(v))
    return repr(v)


def _escape(v: str) -> str:
    return v.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _label_str(names: Sequence[str], values: Sequence[str], extra: str = "") -> str:
    parts = [f'{n}="{_escape(v)}"' for n, v in zip(names, values)]
    if extra:
        parts.append(extra)
    return "{" + ",".join(parts) + "}" if parts else ""


class _Metric:
    type = "untyped"

    def __init__(self, name: str, help: str, labelnames: Sequence[str] = ()) -> None:
        self.name = name
        self.help = help
        self.labelnames = tuple(labelnames)
        self._lock = threading.Lock()

    def _key(self, labels: Sequence[str]) -> LabelValues:
        if len(labels) != len(self.labelnames):
            raise ValueError(f"{self.name} takes labels {self.labelnames}, got {labels}")
        return tuple(labels)

    def samples(self) -> Iterator[tuple[str, LabelValues, float, str]]:
        """(suffix, label values, value, extra label) for exposition and self-collection."""
        raise NotImplementedError

    def expose(self) -> str:
        lines = [f"# HELP {self.name} {self.help}", f"# TYPE {self.name} {self.type}"]
        for suffix, values, value, extra in self.samples():
            lines.append(
                f"{self.name}{suffix}{_label_str(self.labelnames, values, extra)} {_fmt(value)}"
            )
        return "\n".join(lines) + "\n"


class Counter(_Metric):
    type = "counter"

    def __init__(self, name: str, help: str, labelnames: Sequence[str] = ()) -> None:
        super().__init__(name, help, labelnames)
        self._values: dict[LabelValues, float] = {} if labelnames else {(): 0.0}

    def inc(self, amount: float = 1.0, *labels: str) -> None:
        if amount < 0:
            raise ValueError("counters only go up")
        key = self._key(labels)
        with self._lock:
            self._values[key] = self._values.get(key, 0.0) + amount

    def get(self, *labels: str) -> float:
        return self._values.get(self._key(labels), 0.0)

    def samples(self) -> Iterator[tuple[str, LabelValues, float, str]]:
        with self._lock:
            items = sorted(self._values.items())
        for key, value in items:
            yield "", key, value, ""


class Gauge(_Metric):
    type = "gauge"

    def __init__(
        self,
        name: str,
        help: str,
        labelnames: Sequence[str] = (),
        fn: Callable[[], float] | None = None,
    ) -> None:
        super().__init__(name, help, labelnames)
        self._values: dict[LabelValues, float] = {} if labelnames else {(): 0.0}
        self._fn = fn

    def set(self, value: float, *labels: str) -> None:
        with self._lock:
            self._values[self._key(labels)] = value

    def inc(self, amount: float = 1.0, *labels: str) -> None:
        key = self._key(labels)
        with self._lock:
            self._values[key] = self._values.get(key, 0.0) + amount

    def get(self, *labels: str) -> float:
        if self._fn is not None:
            return self._fn()
        return self._values.get(self._key(labels), 0.0)

    def samples(self) -> Iterator[tuple[str, LabelValues, float, str]]:
        if self._fn is not None:
            yield "", (), self._fn(), ""
            return
        with self._lock:
            items = sorted(self._values.items())
        for key, value in items:
            yield "", key, value, ""


class Histogram(_Metric):
    type = "histogram"

    def __init__(
        self,
        name: str,
        help: str,
        labelnames: Sequence[str] = (),
        buckets: Sequence[float] = DEFAULT_BUCKETS,
    ) -> None:
        super().__init__(name, help, labelnames)
        self.buckets = tuple(sorted(buckets))
        self._counts: dict[LabelValues, list[int]] = {}
        self._sums: dict[LabelValues, float] = {}

    def observe(self, value: float, *labels: str) -> None:
        key = self._key(labels)
        i = bisect.bisect_left(self.buckets, value)
        with self._lock:
            counts = self._counts.setdefault(key, [0] * (len(self.buckets) + 1))
            counts[i] += 1
            self._sums[key] = self._sums.get(key, 0.0) + value

    def count(self, *labels: str) -> int:
        return sum(self._counts.get(self._key(labels), ()))

    def samples(self) -> Iterator[tuple[str, LabelValues, float, str]]:
        with self._lock:
            items = sorted((k, list(v)) for k, v in self._counts.items())
            sums = dict(self._sums)
        for key, counts in items:
            cumulative = 0
            for bound, c in zip((*self.buckets, math.inf), counts):
                cumulative += c
                yield "_bucket", key, float(cumulative), f'le="{_fmt(bound)}"'
            yield "_sum", key, sums[key], ""
            yield "_count", key, float(cumulative), ""


class Registry:
    def __init__(self) -> None:
        self._metrics: dict[str, _Metric] = {}
        self._refreshers: list[Callable[[], None]] = []
        self._lock = threading.Lock()

    def on_read(self, refresh: Callable[[], None]) -> None:
        """Run ``refresh`` before every read of the registry.

        For gauges that are cheap to compute but go stale between a part's own updates: a
        scrape that follows an ingest must see the samples it added to a forwarding backlog,
        or whoever waits for "pending == 0" stops waiting one batch too early.
        """
        with self._lock:
            self._refreshers.append(refresh)

    def register(self, metric: _Metric) -> _Metric:
        with self._lock:
            existing = self._metrics.get(metric.name)
            if existing is not None:
                if type(existing) is not type(metric) or existing.labelnames != metric.labelnames:
                    raise ValueError(f"metric {metric.name} registered twice, differently")
                return existing
            self._metrics[metric.name] = metric
            return metric

    def counter(self, name: str, help: str, labelnames: Sequence[str] = ()) -> Counter:
        m = self.register(Counter(name, help, labelnames))
        assert isinstance(m, Counter)
        return m

    def gauge(
        self,
        name: str,
        help: str,
        labelnames: Sequence[str] = (),
        fn: Callable[[], float] | None = None,
    ) -> Gauge:
        m = self.register(Gauge(name, help, labelnames, fn))
        assert isinstance(m, Gauge)
        return m

    def histogram(
        self,
        name: str,
        help: str,
        labelnames: Sequence[str] = (),
        buckets: Sequence[float] = DEFAULT_BUCKETS,
    ) -> Histogram:
        m = self.register(Histogram(name, help, labelnames, buckets))
        assert isinstance(m, Histogram)
        return m

    def metrics(self) -> list[_Metric]:
        """Every metric, sorted by name, after the refreshers have run."""
        with self._lock:
            refreshers = list(self._refreshers)
        for refresh in refreshers:
            try:
                refresh()
            except Exception:  # a stale gauge beats a failed scrape
                log.debug("metrics: a refresher failed", exc_info=True)
        with self._lock:
            return [self._metrics[k] for k in sorted(self._metrics)]

    def expose(self) -> str:
        """The whole registry in the text exposition format."""
        return "".join(m.expose() for m in self.metrics())
