"""A collected sample set, before the job/instance labels and the timestamp are attached."""

from __future__ import annotations

from dataclasses import dataclass, field

from ..storage import MetricMetadata


@dataclass
class Collected:
    """What one collection produced: ``(metric name, labels, value)`` plus family metadata."""

    samples: list[tuple[str, tuple[tuple[str, str], ...], float]] = field(default_factory=list)
    metadata: dict[str, MetricMetadata] = field(default_factory=dict)
    timestamps: dict[int, int] = field(default_factory=dict)
    """Explicit sample times (ms) by index into ``samples``, where the source gave one (an
    exposition line with a timestamp); the others take the collection time."""

    def family(self, name: str, mtype: str, help_text: str) -> None:
        if name not in self.metadata:
            self.metadata[name] = MetricMetadata(name, mtype, help_text)

    def add(self, name: str, value: float, /, **labels: str) -> None:
        self.samples.append((name, tuple(sorted(labels.items())), float(value)))
