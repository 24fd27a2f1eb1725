"""What an operator may use of the query it runs in: its bounds, its budget, its annotations.

The evaluator walks the syntax tree and evaluates every operand itself; functions,
aggregations and binary operators get values plus this context, never the evaluator. So an
operator cannot load data or evaluate a sub-expression behind the evaluator's back, and the
import graph runs one way: evaluator -> operators -> context/values.
"""

from __future__ import annotations

import threading
import time

from .errors import QueryCanceledError, QueryTimeoutError, TooManySamplesError

DEFAULT_MAX_MEMORY_BYTES = 1 << 30
CELL_BYTES = 64
"""Peak bytes the evaluator holds per cell (one series at one step) of a dense series x steps
result while building it: window bounds, the picked values, timestamps and masks, and their
temporaries (measured on instant selectors and subqueries; numpy allocates them all at once)."""
SAMPLE_BYTES = 48
"""Bytes per loaded sample: the store's arrays, their concatenation and the window keys."""
HISTOGRAM_SAMPLE_BYTES = 1024
"""Extra bytes per loaded native histogram sample: the ``FloatHistogram`` object with its
span and bucket tuples (about 0.5 KiB for a typical 10-20 bucket histogram) and the copies
the operators make of it."""


class EvalContext:
    """One query's bounds (start, end, step), limits (deadline, cancellation, samples, memory)
    and the warnings and infos it collects, each once, in the order first raised."""

    def __init__(
        self,
        *,
        start_ms: int,
        end_ms: int,
        step_ms: int,
        max_samples: int,
        deadline: float,
        cancel: threading.Event | None = None,
        max_memory_bytes: int = DEFAULT_MAX_MEMORY_BYTES,
    ) -> None:
        self.start_ms = start_ms
        self.end_ms = end_ms
        self.step_ms = step_ms
        self.max_samples = max_samples
        self.deadline = deadline
        self.cancel = cancel
        self.samples = 0
        self.max_memory_bytes = max_memory_bytes
        self.memory_bytes = 0
        """Estimated bytes of the arrays built so far; never decreases (a conservative bound of
        the peak, since intermediate results live until the node that uses them returns)."""
        self.warnings: list[str] = []
        self.infos: list[str] = []

    def check(self) -> None:
        """Stop a cancelled or overdue query: long loops call this every so often."""
        if self.cancel is not None and self.cancel.is_set():
            raise QueryCanceledError()
        if time.monotonic() > self.deadline:
            raise QueryTimeoutError()

    def count_samples(self, n: int) -> None:
        """Charge ``n`` samples to the query's ``max_samples`` budget."""
        self.samples += n
        if self.samples > self.max_samples:
            raise TooManySamplesError()

    def reserve_bytes(self, n: int) -> None:
        """Charge ``n`` bytes to the query's memory budget before allocating them."""
        self.memory_bytes += n
        if self.memory_bytes > self.max_memory_bytes:
            raise TooManySamplesError(
                "query processing would load too many samples into memory in query execution "
                f"(estimated {self.memory_bytes >> 20} MiB, over query.max_memory "
                f"{self.max_memory_bytes >> 20} MiB)"
            )

    def reserve_cells(self, rows: int, steps: int) -> None:
        """Charge a dense ``rows x steps`` result (and its temporaries) before building it."""
        self.reserve_bytes(rows * steps * CELL_BYTES)

    def warn(self, msg: str) -> None:
        if msg not in self.warnings:
            self.warnings.append(msg)

    def info(self, msg: str) -> None:
        if msg not in self.infos:
            self.infos.append(msg)
