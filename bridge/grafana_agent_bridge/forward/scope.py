"""What every part of one target's sender shares (see ``sender.py``)."""

from __future__ import annotations

import threading
from dataclasses import dataclass

from .stats import ForwardStats


@dataclass(frozen=True)
class TargetScope:
    label: str
    """The target's name: in log lines and as the ``target`` label of its metrics."""
    stats: ForwardStats
    stop: threading.Event
    """Set once when the target stops: every loop of its parts waits on it."""


class TargetPart:
    """Base of the parts (reader, shard delivery, metadata sender): the scope at hand."""

    def __init__(self, scope: TargetScope) -> None:
        self._label = scope.label
        self._stats = scope.stats
        self._stop = scope.stop
