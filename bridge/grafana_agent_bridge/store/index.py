"""Label index: series id <-> label set, and postings (label name -> value -> series ids).

A selector is resolved here to the ids of the matching series before any sample is read, so a
query touches only matching series. Ids are small integers shared by the head, the blocks and
the WAL (a WAL series ref is the id), kept stable across restarts by WAL replay.

A posting list is a sorted Python list of ids, not a set: 8 bytes an entry instead of ~40,
which is ~400 bytes per series of ten labels, and new series (whose id is always the highest
yet) are appended. ``_by_pair`` reaches the list of a (name, value) pair in one lookup.
"""

from __future__ import annotations

from bisect import bisect_left, insort
from collections.abc import Iterable, Sequence
from typing import cast

from ..labels import Labels, Matcher, MatchType

_FEW_REMOVALS = 16
"""Ids leaving one posting list below which they are deleted in place rather than the list
rebuilt."""


_CHECK_RATIO = 16
"""Candidates are checked one by one once a further posting list is this many times longer
(checking a candidate's pairs costs about what intersecting with 16 posting entries does)."""
_FEW_CANDIDATES = 32
"""Candidates up to which a regex or negative matcher is checked on each candidate's labels
rather than by walking every value of its label name."""


class SeriesIndex:
    def __init__(self) -> None:
        self.by_labels: dict[Labels, int] = {}
        """Label set -> id; read directly on the ingest hot path."""
        self._labels: dict[int, Labels] = {}
        self._postings: dict[str, dict[str, list[int]]] = {}
        self._by_pair: dict[tuple[str, str], list[int]] = {}
        """(name, value) -> the same list as ``_postings[name][value]``."""
        self.next_id = 1
        self._rank: dict[int, int] | None = None

    def __len__(self) -> int:
        return len(self._labels)

    def get(self, labels: Labels) -> int | None:
        return self.by_labels.get(labels)

    def labels(self, sid: int) -> Labels:
        return self._labels[sid]

    def get_labels(self, sid: int) -> Labels | None:
        return self._labels.get(sid)

    def all_ids(self) -> Iterable[int]:
        return self._labels.keys()

    def add(self, labels: Labels, sid: int | None = None) -> int:
        """Register ``labels`` (idempotent); ``sid`` pins the id (WAL replay), else a new one."""
        existing = self.by_labels.get(labels)
        if existing is not None:
            return existing
        if sid is None or sid in self._labels:
            sid = self.next_id
        self.next_id = max(self.next_id, sid + 1)
        self._insert(labels, sid, ordered=False)
        return sid

    def add_new(self, labels: Labels) -> int:
        """Register ``labels``, known to be absent, under a new id (the append path)."""
        sid = self.next_id
        self.next_id = sid + 1
        found = list(map(self._by_pair.get, labels))
        # Every pair seen before (a posting list is never empty, so all() is False only for
        # a missing one): the usual new series, its id appended to each list, inline.
        if all(found):
            self.by_labels[labels] = sid
            self._labels[sid] = labels
            self._rank = None
            for ids in cast("list[list[int]]", found):
                ids.append(sid)
            return sid
        self._insert(labels, sid, ordered=True)
        return sid

    def _insert(self, labels: Labels, sid: int, *, ordered: bool) -> None:
        """``ordered``: ``sid`` is higher than every id indexed (a new id), so it goes at the
        end of its lists."""
        self.by_labels[labels] = sid
        self._labels[sid] = labels
        self._rank = None
        found = list(map(self._by_pair.get, labels))
        if ordered and None not in found:  # every pair seen before: the usual new series
            for ids in cast("list[list[int]]", found):
                ids.append(sid)
            return
        for pair, ids in zip(labels, found):
            if ids is None:
                self._new_posting(pair, sid)
            elif ordered or ids[-1] < sid:
                ids.append(sid)
            else:
                insort(ids, sid)

    def _new_posting(self, pair: tuple[str, str], sid: int) -> None:
        name, value = pair
        ids = self._by_pair[pair] = [sid]
        values = self._postings.get(name)
        if values is None:
            self._postings[name] = {value: ids}
        else:
            values[value] = ids

    def remove_all(self, sids: Iterable[int]) -> None:
        """Take ``sids`` out of the index (unknown ids are ignored).

        Deleting an id from a sorted posting list shifts the rest of the list, so a list that
        loses many ids (every series of a job gone with a deleted block) is rebuilt once
        instead: removing 250k series one by one cost ~6 s under the store lock.
        """
        gone: dict[tuple[str, str], list[int]] = {}
        doomed: set[int] = set()
        for sid in sids:
            labels = self._labels.pop(sid, None)
            if labels is None:
                continue
            doomed.add(sid)
            del self.by_labels[labels]
            for pair in labels:
                gone.setdefault(pair, []).append(sid)
        if not gone:
            return
        self._rank = None
        for pair, out in gone.items():
            ids = self._by_pair[pair]
            if len(out) <= _FEW_REMOVALS:
                for sid in out:
                    k = bisect_left(ids, sid)
                    if k < len(ids) and ids[k] == sid:
                        del ids[k]
            else:
                ids[:] = [i for i in ids if i not in doomed]  # same list: _postings shares it
            if not ids:
                name, value = pair
                del self._by_pair[pair]
                values = self._postings[name]
                del values[value]
                if not values:
                    del self._postings[name]

    def in_label_order(self, sids: Iterable[int]) -> list[int]:
        """``sids`` sorted by their label sets, through a rank table rebuilt only after the
        set of series changed (comparing label tuples for 10 k series costs ~40 ms)."""
        rank = self._rank
        if rank is None:
            order = sorted(self._labels, key=self._labels.__getitem__)
            rank = self._rank = {sid: i for i, sid in enumerate(order)}
        return sorted(sids, key=rank.__getitem__)

    def reserve(self, sid: int) -> None:
        """Never hand out ``sid`` again in this process (it is used in a retained WAL segment)."""
        self.next_id = max(self.next_id, sid + 1)

    def select(self, matchers: Sequence[Matcher]) -> list[int]:
        """Sorted ids of series matching every matcher (all series if there are none).

        The equality matchers' posting lists are taken shortest first: the shortest gives the
        candidates, and once they are few, each further matcher is checked on the candidates'
        own labels instead of reading its posting lists. A single-series selector
        (``metric{instance="a"}``) so costs the size of its shortest list, not of the
        metric's or the job's (tens of thousands of ids copied into sets)."""
        by_pair = self._by_pair
        lists: list[list[int]] = []
        rest: list[Matcher] = []
        for m in matchers:
            if m.type is MatchType.EQUAL and m.value != "":
                ids = by_pair.get((m.name, m.value))
                if ids is None:
                    return []
                lists.append(ids)
            else:
                rest.append(m)
        result: set[int] | None = None
        if lists:
            lists.sort(key=len)
            result = set(lists[0])
            for ids in lists[1:]:
                if len(result) * _CHECK_RATIO <= len(ids):
                    break  # the candidates are few: check them one by one below
                result.intersection_update(ids)
                if not result:
                    return []
            else:
                lists = []  # every list applied
            if lists:
                return self._checked(result, matchers)
        # Matchers that need the label present narrow fastest; apply them first.
        ordered = sorted(rest, key=lambda m: m.matches_empty())
        for m in ordered:
            if result is not None and len(result) <= _FEW_CANDIDATES:
                return self._checked(result, ordered)
            if m.matches_empty():
                # Series without the label match too: subtract those with a non-matching value.
                excluded = self._union(m.name, m, want=False)
                if result is None:
                    result = set(self._labels.keys())
                result -= excluded
            else:
                found = self._union(m.name, m, want=True)
                result = found if result is None else result & found
            if not result:
                return []
        if result is None:
            result = set(self._labels.keys())
        return sorted(result)

    def _checked(self, candidates: Iterable[int], matchers: Sequence[Matcher]) -> list[int]:
        """The sorted ``candidates`` whose own labels match every one of ``matchers``: an
        equality is a pair looked up in the label tuple (~0.1 us), other matchers read the
        value from the labels as a dict."""
        pairs = [(m.name, m.value) for m in matchers if m.type is MatchType.EQUAL and m.value]
        others = [m for m in matchers if not (m.type is MatchType.EQUAL and m.value)]
        labels_of = self._labels
        out = []
        for sid in candidates:
            labels = labels_of[sid]
            for pair in pairs:
                if pair not in labels:
                    break
            else:
                if others:
                    values = dict(labels)
                    if not all(m.matches(values.get(m.name, "")) for m in others):
                        continue
                out.append(sid)
        out.sort()
        return out

    def _union(self, name: str, m: Matcher, *, want: bool) -> set[int]:
        values = self._postings.get(name)
        if not values:
            return set()
        if m.type is MatchType.EQUAL and want:
            return set(values.get(m.value, ()))
        if m.type is MatchType.NOT_EQUAL and not want:
            return set(values.get(m.value, ()))
        out: set[int] = set()
        for value, ids in values.items():
            if m.matches(value) == want:
                out.update(ids)
        return out

    def label_names(self) -> list[str]:
        return sorted(self._postings)

    def label_values(self, name: str) -> list[str]:
        return sorted(self._postings.get(name, {}))
