"""Runs the collectors on their intervals and writes what they return through the Appender.

Series get ``job`` and ``instance`` labels the way a Prometheus scrape would set them (a
target's own ``job``/``instance`` labels become ``exported_job``/``exported_instance``), plus
``up``, ``scrape_duration_seconds`` and ``scrape_samples_scraped``; a series that disappears
between two collections gets a staleness marker, so queries stop returning it at once instead
of five minutes later.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from ..labels import METRIC_NAME, Labels
from ..metrics import Counter, Registry
from ..storage import (
    STALE_NAN,
    Appender,
    MetricMetadata,
    SeriesBatch,
    ShuttingDownError,
    StorageFullError,
)
from .families import Collected

log = logging.getLogger(__name__)


def collections_counter(registry: Registry) -> Counter:
    return registry.counter(
        "bridge_collections_total",
        "Collection runs, by collection job and outcome.",
        ("target", "outcome"),
    )


@dataclass
class Job:
    """One thing to collect: its ``job``/``instance`` labels, how, and how often."""

    job: str
    instance: str
    collect: Callable[[], Collected]
    interval_s: float


_SCRAPE_META = (
    MetricMetadata("up", "gauge", "1 if the target was collected successfully, else 0."),
    MetricMetadata("scrape_duration_seconds", "gauge", "Duration of the collection."),
    MetricMetadata("scrape_samples_scraped", "gauge", "Samples the collection returned."),
)


class JobRunner:
    """Collects one job on its interval in its own thread, writing each result at once."""

    def __init__(
        self,
        job: Job,
        appender: Appender,
        stop: threading.Event,
        collections: Counter | None = None,
    ) -> None:
        """``collections`` counts runs by outcome (``collections_counter``; none: uncounted)."""
        self.job = job
        self.appender = appender
        self.stop_event = stop
        self._collections = collections
        self._previous: set[Labels] = set()
        self._sent_metadata: set[MetricMetadata] = set()
        self._last_error = ""
        self.thread = threading.Thread(target=self._loop, name=f"collect-{job.job}", daemon=True)

    def _loop(self) -> None:
        interval = self.job.interval_s
        next_run = time.monotonic()
        while not self.stop_event.is_set():
            self.run_once()
            next_run += interval
            now = time.monotonic()
            if next_run < now:  # fell behind (a slow scrape): skip the missed runs
                next_run = now + interval - ((now - next_run) % interval)
            self.stop_event.wait(next_run - now)

    def run_once(self, now_ms: int | None = None) -> int:
        """Collect and append once; returns the number of series written."""
        t = int(time.time() * 1000) if now_ms is None else now_ms
        started = time.perf_counter()
        try:
            collected = self.job.collect()
            up = 1.0
            if self._last_error:
                log.info("collection of job %s recovered", self.job.job)
                self._last_error = ""
        except Exception as e:  # a failed scrape is data (up 0), not a crash
            collected = Collected()
            up = 0.0
            if str(e) != self._last_error:
                log.warning("collection of job %s failed: %s", self.job.job, e)
                self._last_error = str(e)
        duration = time.perf_counter() - started
        if self._collections is not None:
            self._collections.inc(1, self.job.job, "success" if up else "failure")
        series = self._label(collected)
        target = (("instance", self.job.instance), ("job", self.job.job))
        scraped = float(len(collected.samples))
        for name, value in (
            ("up", up),
            ("scrape_duration_seconds", duration),
            ("scrape_samples_scraped", scraped),
        ):
            series[((METRIC_NAME, name), *target)] = value
        current = set(series)
        stamped = self._explicit_times(collected)
        batches = [_one(lb, stamped.get(lb, t), v) for lb, v in series.items()]
        batches += [_one(lb, t, STALE_NAN) for lb in self._previous - current]
        metadata = [m for m in (*collected.metadata.values(), *_SCRAPE_META)]
        new_metadata = [m for m in metadata if m not in self._sent_metadata]
        try:
            result = self.appender.append(batches, new_metadata)
        except (StorageFullError, ShuttingDownError) as e:
            log.warning("collection of job %s not stored: %s", self.job.job, e)
            return 0
        self._sent_metadata.update(new_metadata)
        self._previous = current
        if result.rejections:
            log.debug(
                "collection of job %s: %d rejected, e.g. %s",
                self.job.job,
                len(result.rejections),
                result.rejections[0].reason,
            )
        return len(batches)

    def _explicit_times(self, collected: Collected) -> dict[Labels, int]:
        if not collected.timestamps:
            return {}
        keys = [self._target_labels(name, labels) for name, labels, _ in collected.samples]
        return {keys[i]: ts for i, ts in collected.timestamps.items()}

    def _label(self, collected: Collected) -> dict[Labels, float]:
        return {
            self._target_labels(name, labels): value for name, labels, value in collected.samples
        }

    def _target_labels(self, name: str, labels: Labels) -> Labels:
        pairs = dict(labels)
        for key in ("job", "instance"):
            if key in pairs:
                pairs[f"exported_{key}"] = pairs.pop(key)
        pairs[METRIC_NAME] = name
        pairs["job"] = self.job.job
        pairs["instance"] = self.job.instance
        return tuple(sorted((k, v) for k, v in pairs.items() if v))


def _one(labels: Labels, t: int, value: float) -> SeriesBatch:
    return SeriesBatch(labels, np.array([t], dtype=np.int64), np.array([value], dtype=np.float64))


class Collection:
    """All collection jobs of the daemon; ``start`` runs each in its own thread."""

    def __init__(self, jobs: Sequence[Job], appender: Appender, registry: Registry) -> None:
        self._stop = threading.Event()
        counter = collections_counter(registry)
        self.runners = [JobRunner(job, appender, self._stop, counter) for job in jobs]

    def start(self) -> None:
        for r in self.runners:
            r.thread.start()

    def stop(self, timeout_s: float = 10.0) -> None:
        self._stop.set()
        deadline = time.monotonic() + timeout_s
        for r in self.runners:
            if r.thread.is_alive():
                r.thread.join(max(0.0, deadline - time.monotonic()))
