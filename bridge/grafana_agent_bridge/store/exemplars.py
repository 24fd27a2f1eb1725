"""Exemplars kept in memory: one circular buffer for all series, newest kept (as Prometheus's
``tsdb/exemplar.go`` does), plus each series' newest exemplar time for the append rule that
ignores exemplars older than the last one kept."""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator

from ..storage import Exemplar
from .memseries import NO_TIMESTAMP


class ExemplarBuffer:
    def __init__(self, capacity: int) -> None:
        self._items: deque[tuple[int, Exemplar]] = deque(maxlen=capacity)
        self._last_t: dict[int, int] = {}

    def last_t(self, sid: int) -> int:
        """Time of the newest exemplar ever kept for ``sid`` (NO_TIMESTAMP if none)."""
        return self._last_t.get(sid, NO_TIMESTAMP)

    def add(self, sid: int, ex: Exemplar) -> None:
        self._items.append((sid, ex))
        self._last_t[sid] = max(self._last_t.get(sid, ex.timestamp), ex.timestamp)

    def __iter__(self) -> Iterator[tuple[int, Exemplar]]:
        return iter(self._items)
