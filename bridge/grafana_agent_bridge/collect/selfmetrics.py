"""The bridge's own metrics, read straight from the registry (no HTTP round trip to /metrics)."""

from __future__ import annotations

from ..metrics import Registry
from .families import Collected


class SelfCollector:
    def __init__(self, registry: Registry) -> None:
        self.registry = registry

    def collect(self) -> Collected:
        out = Collected()
        for metric in self.registry.metrics():
            out.family(metric.name, metric.type, metric.help)
            for suffix, values, value, extra in metric.samples():
                labels = dict(zip(metric.labelnames, values))
                if extra:
                    name, _, quoted = extra.partition("=")
                    labels[name] = quoted.strip('"')
                out.add(metric.name + suffix, value, **labels)
        return out
