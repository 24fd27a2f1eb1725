"""Label sets and label matchers: the vocabulary that ingest, store, PromQL and forwarding share.

A label set is a plain tuple of ``(name, value)`` pairs sorted by name. Tuples are hashable,
cheap to compare and need no wrapper class, which matters on the ingest hot path where every
series of every remote-write request becomes one.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import cast

Labels = tuple[tuple[str, str], ...]
"""Sorted by name, names unique, no empty values (an empty value means "label absent")."""

METRIC_NAME = "__name__"

EMPTY_LABELS: Labels = ()


def make_labels(pairs: Mapping[str, str] | Iterable[tuple[str, str]]) -> Labels:
    """Build a canonical label set: sorted by name, empty values dropped.

    Duplicate names are a caller error (remote-write validation reports them before this).
    """
    if isinstance(pairs, Mapping):
        items: Iterable[tuple[str, str]] = cast("Mapping[str, str]", pairs).items()
    else:
        items = pairs
    return tuple(sorted((n, v) for n, v in items if v != ""))


def get_label(labels: Labels, name: str) -> str:
    """The value of ``name`` in ``labels``; ``""`` when absent, as Prometheus treats it."""
    for n, v in labels:
        if n == name:
            return v
    return ""


def labels_to_dict(labels: Labels) -> dict[str, str]:
    return dict(labels)


class MatchType(enum.Enum):
    EQUAL = "="
    NOT_EQUAL = "!="
    REGEX = "=~"
    NOT_REGEX = "!~"


@dataclass(frozen=True)
class Matcher:
    """One label matcher of a selector, with Prometheus semantics.

    Regexes are fully anchored and ``.`` matches newlines (Prometheus 3.x). An absent label
    matches as the empty string, so ``{foo=""}`` selects series without ``foo``.
    """

    name: str
    type: MatchType
    value: str
    _regex: re.Pattern[str] | None = field(default=None, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.type in (MatchType.REGEX, MatchType.NOT_REGEX):
            # Raises re.error for an invalid pattern; callers turn that into a bad_data error.
            object.__setattr__(self, "_regex", re.compile(f"(?:{self.value})", re.DOTALL))

    def matches(self, value: str) -> bool:
        if self.type is MatchType.EQUAL:
            return value == self.value
        if self.type is MatchType.NOT_EQUAL:
            return value != self.value
        assert self._regex is not None
        hit = self._regex.fullmatch(value) is not None
        return hit if self.type is MatchType.REGEX else not hit

    def matches_empty(self) -> bool:
        """Whether a series *without* this label is selected; drives index lookups."""
        return self.matches("")


def matches_all(labels: Labels, matchers: Iterable[Matcher]) -> bool:
    d = dict(labels)
    return all(m.matches(d.get(m.name, "")) for m in matchers)
