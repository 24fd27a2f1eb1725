"""Which samples ``topk``/``bottomk`` keep among equal values, and in what order, exactly as
Prometheus's engine decides it (``aggregationK``): samples enter a bounded binary heap in
input order (Go's ``container/heap``; a sample replaces the heap's top only when strictly
better, so the first of equal values stays), and an instant result is the heap sorted by
Go's ``sort.Sort(sort.Reverse(heap))``. NaN counts as the smallest value for the heap's
order and loses to any number.
"""

from __future__ import annotations

import math
from collections.abc import Callable

Less = Callable[[int, int], bool]


def _up(h: list[int], j: int, less: Less) -> None:
    while True:
        i = (j - 1) // 2
        if j <= 0 or i == j or not less(h[j], h[i]):
            break
        h[i], h[j] = h[j], h[i]
        j = i


def _down(h: list[int], i0: int, n: int, less: Less) -> bool:
    i = i0
    while True:
        j1 = 2 * i + 1
        if j1 >= n:
            break
        j = j1
        j2 = j1 + 1
        if j2 < n and less(h[j2], h[j1]):
            j = j2
        if not less(h[j], h[i]):
            break
        h[i], h[j] = h[j], h[i]
        i = j
    return i > i0


def _insertion_sort(h: list[int], less: Less) -> None:
    for i in range(1, len(h)):
        j = i
        while j > 0 and less(h[j], h[j - 1]):
            h[j], h[j - 1] = h[j - 1], h[j]
            j -= 1


def heap_select(vals: list[float], k: int, *, top: bool) -> list[int]:
    """Indices into ``vals`` (the present samples of one group at one step, in input order)
    that ``topk`` (``top``) or ``bottomk`` keeps with parameter ``k`` (>= 1), best first."""

    def heap_less(a: int, b: int) -> bool:  # vectorByValueHeap / vectorByReverseValueHeap
        va, vb = vals[a], vals[b]
        if math.isnan(va):
            return True
        return va < vb if top else va > vb

    h: list[int] = []
    for idx, v in enumerate(vals):
        if len(h) < k:
            h.append(idx)
            _up(h, len(h) - 1, heap_less)
            continue
        head = vals[h[0]]
        better = head < v if top else head > v
        if better or (math.isnan(head) and not math.isnan(v)):
            h[0] = idx
            if not _down(h, 0, len(h), heap_less):
                _up(h, 0, heap_less)
    # sort.Reverse: Less(i, j) is the heap's Less(j, i). Go sorts up to 12 elements by
    # insertion sort; longer heaps are sorted the same way here (pdqsort could order equal
    # values differently there, which only matters for k > 12 with ties).
    _insertion_sort(h, lambda a, b: heap_less(b, a))
    return h
