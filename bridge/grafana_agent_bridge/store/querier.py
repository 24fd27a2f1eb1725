"""Reads over the head and the blocks together (Prometheus's ``querier.go``): the ``Querier``
contract of ``storage.py``. Selection holds the store's lock only to resolve series in the
index and copy head samples; blocks are immutable and are read after the lock is released.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable, Sequence

import numpy as np
import numpy.typing as npt

from ..histogram.model import FloatHistogram
from ..labels import Labels, Matcher
from ..storage import Exemplar, MetricMetadata, SeriesData
from . import histsamples
from .block import Block
from .blockset import BlockSet
from .head import Head

_Piece = tuple[npt.NDArray[np.int64], npt.NDArray[np.float64]]


Lookup = Callable[[int], FloatHistogram | None]


def _first_of(sources: list[Lookup]) -> Lookup:
    """The histogram at a timestamp from whichever part (block or head) holds it."""
    if len(sources) == 1:
        return sources[0]

    def lookup(t: int) -> FloatHistogram | None:
        for source in sources:
            h = source(t)
            if h is not None:
                return h
        return None

    return lookup


class StoreQuerier:
    def __init__(self, lock: threading.RLock, head: Head, blocks: BlockSet) -> None:
        self._lock = lock
        self._head = head
        self._blocks = blocks

    def select(self, matchers: Sequence[Matcher], mint: int, maxt: int) -> list[SeriesData]:
        with self._lock:
            index = self._head.index
            # In label order, so the result needs no sort of label tuples.
            sids = index.in_label_order(index.select(matchers))
            blocks = self._blocks.overlapping(mint, maxt)
            found: list[SeriesData] = []
            pending: list[tuple[int, Lookup]] = []
            head_parts: dict[int, _Piece] = {}
            hist_sources: dict[int, list[Lookup]] = {}
            labels: list[Labels] = []
            if blocks:
                head_parts, hist_sources = self._head_parts(sids, mint, maxt)
                labels_of = index.labels
                labels = [labels_of(sid) for sid in sids]
            else:
                found, pending = self._head_only(sids, mint, maxt)
        if not blocks:
            for i, lookup in pending:  # histograms are looked up outside the lock
                s = found[i]
                s.histograms = histsamples.aligned(s.timestamps, s.values, lookup)
            return found
        return self._merged(
            blocks,
            sids,
            labels=labels,
            head_parts=head_parts,
            hist_sources=hist_sources,
            mint=mint,
            maxt=maxt,
        )

    def _merged(
        self,
        blocks: list[Block],
        sids: list[int],
        *,
        labels: list[Labels],
        head_parts: dict[int, _Piece],
        hist_sources: dict[int, list[Lookup]],
        mint: int,
        maxt: int,
    ) -> list[SeriesData]:
        """Each series' pieces from the blocks and the head, joined in time order."""
        # Blocks are immutable: read them without holding up appends.
        parts: dict[int, list[_Piece]] = {}
        for b in blocks:
            for sid, tv in b.read(sids, mint, maxt).items():
                parts.setdefault(sid, []).append(tv)
                if b.has_histograms:
                    hist_sources.setdefault(sid, []).append(b.histograms(sid))
        for sid, tv in head_parts.items():
            parts.setdefault(sid, []).append(tv)
        # Blocks are cut from the head at aligned, disjoint ranges, so pieces simply follow
        # each other; only blocks that overlap (never written by this store) need a merge.
        disjoint = all(a.maxt <= b.mint for a, b in itertools.pairwise(blocks))
        out: list[SeriesData] = []
        for sid, lbls in zip(sids, labels):
            pieces = parts.get(sid)
            if not pieces:
                continue
            if len(pieces) == 1:
                t, v = pieces[0]
                if sid in hist_sources:
                    v = v.copy()  # a block's piece may share the group cache's arrays
            else:
                t = np.concatenate([p[0] for p in pieces])
                v = np.concatenate([p[1] for p in pieces])
                if not disjoint and not bool(np.all(t[1:] > t[:-1])):
                    t, first = np.unique(t, return_index=True)  # keep the first of each t
                    v = v[first]
            hists = None
            sources = hist_sources.get(sid)
            if sources:
                hists = histsamples.aligned(t, v, _first_of(sources))
            out.append(SeriesData(lbls, t, v, hists))
        return out

    def _head_parts(
        self, sids: list[int], mint: int, maxt: int
    ) -> tuple[dict[int, _Piece], dict[int, list[Lookup]]]:
        """The head's samples of ``sids`` in the window, and their histogram lookups."""
        head_parts: dict[int, _Piece] = {}
        hist_sources: dict[int, list[Lookup]] = {}
        head_get = self._head.series.get
        for sid in sids:
            hs = head_get(sid)
            if hs is not None and hs.first_t <= maxt and hs.last_t >= mint:
                t, v = hs.window(mint, maxt)
                if len(t):
                    head_parts[sid] = (t, v)
                    if hs.hists:
                        # No copy needed: appends only add entries, and a head cut
                        # replaces the table rather than changing this one.
                        hist_sources[sid] = [hs.hists.get]
        return head_parts, hist_sources

    def _head_only(
        self, sids: list[int], mint: int, maxt: int
    ) -> tuple[list[SeriesData], list[tuple[int, Lookup]]]:
        """``select`` when no block overlaps the window (recent dashboards): one pass over the
        series, no merging. Runs under the lock; it is the per-series cost of every query over
        many series, so it does no more per series than read the window and wrap it. Also
        returns (position, lookup) of the series whose histograms are still to be filled in."""
        head_get = self._head.series.get
        labels_of = self._head.index.labels
        out: list[SeriesData] = []
        with_hists: list[tuple[int, Lookup]] = []
        shared: dict[tuple[int, int, int], npt.NDArray[np.int64]] = {}  # read-only timestamps
        for sid in sids:
            hs = head_get(sid)
            if hs is None or hs.first_t > maxt or hs.last_t < mint:
                continue
            t, v = hs.window_views(mint, maxt, shared)
            if len(t):
                if hs.hists:
                    v = v.copy()  # ``histsamples.aligned`` may rewrite markers in it
                    # The table needs no copy: appends only add entries, and a head cut
                    # replaces the table rather than changing this one.
                    with_hists.append((len(out), hs.hists.get))
                out.append(SeriesData(labels_of(sid), t, v))
        return out, with_hists

    def _sids_in_window(self, matchers: Sequence[Matcher], mint: int, maxt: int) -> list[int]:
        with self._lock:
            sids = self._head.index.select(matchers)
            in_blocks: set[int] = set()
            for b in self._blocks.overlapping(mint, maxt):
                in_blocks |= b.sids_with_data(sids, mint, maxt)
            found = []
            head_get = self._head.series.get
            for sid in sids:
                hs = head_get(sid)
                if sid in in_blocks or (
                    hs is not None and len(hs) and hs.first_t <= maxt and hs.last_t >= mint
                ):
                    found.append(sid)
            return found

    def label_names(self, matchers: Sequence[Matcher], mint: int, maxt: int) -> list[str]:
        names: set[str] = set()
        with self._lock:
            labels = self._head.index.labels
            for sid in self._sids_in_window(matchers, mint, maxt):
                names.update(n for n, _ in labels(sid))
        return sorted(names)

    def label_values(
        self, name: str, matchers: Sequence[Matcher], mint: int, maxt: int
    ) -> list[str]:
        values: set[str] = set()
        with self._lock:
            labels = self._head.index.labels
            for sid in self._sids_in_window(matchers, mint, maxt):
                for n, v in labels(sid):
                    if n == name:
                        values.add(v)
        return sorted(values)

    def series(self, matchers: Sequence[Matcher], mint: int, maxt: int) -> list[Labels]:
        with self._lock:
            labels = self._head.index.labels
            return sorted(labels(sid) for sid in self._sids_in_window(matchers, mint, maxt))

    def exemplars(
        self, matchers: Sequence[Matcher], mint: int, maxt: int
    ) -> list[tuple[Labels, list[Exemplar]]]:
        with self._lock:
            index = self._head.index
            wanted = set(index.select(matchers))
            grouped: dict[int, list[Exemplar]] = {}
            for sid, ex in self._head.exemplars:
                if sid in wanted and mint <= ex.timestamp <= maxt:
                    grouped.setdefault(sid, []).append(ex)
            result = [
                (index.labels(sid), sorted(exs, key=lambda e: e.timestamp))
                for sid, exs in grouped.items()
                if index.get_labels(sid) is not None
            ]
        result.sort(key=lambda item: item[0])
        return result

    def metadata(self) -> dict[str, list[MetricMetadata]]:
        with self._lock:
            return {name: [m] for name, m in sorted(self._head.metadata.items())}
