"""Label sets and label matchers: the vocabulary that ingest, store, PromQL and forwarding share.

A label set is a plain tuple of ``(name, value)`` pairs sorted by name. Tuples are hashable,
cheap to compare and need no wrapper class, which matters on the ingest hot path where every
series of every remote-write request becomes one.
"""

from __future__ import annotations

import enum
import itertools
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import cast

from .regex import compile_matcher

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


def is_valid_label_name(name: str) -> bool:
    """Prometheus 3.x's rule for a label name (UTF-8 names, ``model.LabelName.IsValid``):
    not empty and valid UTF-8. A name holding U+FFFD is refused too: that is what the query
    parser puts in place of bytes that were not UTF-8, so such a name came from invalid input.
    """
    if not name or "\ufffd" in name:
        return False
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate
        return False
    return True


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
    _regex: Callable[[str], bool] | None = field(
        default=None, init=False, repr=False, compare=False
    )

    def __post_init__(self) -> None:
        if self.type in (MatchType.REGEX, MatchType.NOT_REGEX):
            # RE2 (linear time), as Prometheus. Raises RegexError (a ValueError) for an
            # invalid pattern; callers turn that into a bad_data error.
            object.__setattr__(self, "_regex", compile_matcher(self.value))

    def matches(self, value: str) -> bool:
        if self.type is MatchType.EQUAL:
            return value == self.value
        if self.type is MatchType.NOT_EQUAL:
            return value != self.value
        assert self._regex is not None
        hit = self._regex(value)
        return hit if self.type is MatchType.REGEX else not hit

    def matches_empty(self) -> bool:
        """Whether a series *without* this label is selected; drives index lookups."""
        return self.matches("")


def matches_all(labels: Labels, matchers: Iterable[Matcher]) -> bool:
    d = dict(labels)
    return all(m.matches(d.get(m.name, "")) for m in matchers)


# --- limits on what a series may carry ------------------------------------------------------

_SHOWN = 50
"""Characters of an offending label name or value repeated in a reason (like Prometheus's
``%.50s``): enough to find it, bounded so the reason stays short."""


def _clip(text: str, n: int = _SHOWN) -> str:
    return text if len(text) <= n else text[:n] + "…"


_UNBOUNDED = 2**62
_FINE_PAIRS = 100_000
"""Label pairs a ``LabelLimits`` remembers as passing (``_fine``) before starting over: a few
MB at most, and about the distinct pairs of 100k series of a usual exporter."""


def _bytes_over(text: str, limit: int) -> int:
    """The UTF-8 size of ``text`` when it is over ``limit`` (0: unlimited), else 0.

    len() of a str counts characters and a UTF-8 character is at most 4 bytes, so the cheap
    test lets nearly every label through without encoding it."""
    if not limit or len(text) * 4 <= limit:
        return 0
    size = len(text.encode("utf-8", "surrogatepass"))
    return size if size > limit else 0


@dataclass(frozen=True)
class LabelViolation:
    """Why a label set is refused: ``kind`` is a fixed word (a metric label), ``reason`` the
    sentence for the sender, naming the limit and its configuration key."""

    kind: str
    reason: str


@dataclass(frozen=True)
class LabelLimits:
    """Bounds on the labels of a series and of an exemplar; 0 switches a bound off.

    Lengths of label names and values are UTF-8 bytes, as Prometheus's scrape limits
    (``label_name_length_limit``, ``label_value_length_limit``) count them. The exemplar bound
    counts characters of names and values together, as Prometheus's
    ``ExemplarMaxLabelSetLength`` (128) does. Without these a single series could pin
    megabytes in the label index for as long as it is retained.
    """

    max_labels_per_series: int = 64
    max_label_name_length: int = 1024
    max_label_value_length: int = 2048
    max_exemplar_labels_length: int = 128
    _fits: tuple[int, int] = field(init=False, repr=False, compare=False, default=(0, 0))
    """(labels, characters of any name or value) that pass every bound without a closer look:
    one comparison each for nearly every label set, as each new series is checked."""
    _fine: set[tuple[str, str]] = field(
        init=False, repr=False, compare=False, hash=False, default_factory=set
    )
    """Label pairs already found well inside the length bounds. New series share nearly all
    their pairs with earlier ones (``job``, ``instance``, the metric name...), so a label set
    made only of such pairs passes with one set lookup per pair, in C: a fifth of measuring
    every name and value again. Bounded (``_FINE_PAIRS``); only ever holds pairs that pass."""

    def __post_init__(self) -> None:
        name_limit, value_limit = self.max_label_name_length, self.max_label_value_length
        # A character is at most 4 UTF-8 bytes.
        chars = min(name_limit or _UNBOUNDED, value_limit or _UNBOUNDED) // 4
        object.__setattr__(self, "_fits", (self.max_labels_per_series or _UNBOUNDED, chars))

    def check_count(self, count: int) -> LabelViolation | None:
        """The label-count bound alone: callers check it before decoding any label."""
        limit = self.max_labels_per_series
        if limit and count > limit:
            return LabelViolation(
                "labels_per_series",
                f"series has {count} labels, over the limit of {limit} "
                "(storage.max_labels_per_series)",
            )
        return None

    def check(self, labels: Labels) -> LabelViolation | None:
        """The first bound ``labels`` (a series' label set) breaks, or None."""
        count, chars = self._fits
        if len(labels) <= count:
            fine = self._fine
            if fine.issuperset(labels):
                return None
            if max(map(len, itertools.chain.from_iterable(labels)), default=0) <= chars:
                if len(fine) >= _FINE_PAIRS:
                    fine.clear()
                fine.update(labels)
                return None
        problem = self.check_count(len(labels))
        if problem is not None:
            return problem
        name_limit, value_limit = self.max_label_name_length, self.max_label_value_length
        # Nearly every label set is far inside both bounds: one pass over the lengths in C
        # settles that (a character is at most 4 UTF-8 bytes), without a call per label.
        bound = min(name_limit or _UNBOUNDED, value_limit or _UNBOUNDED)
        if max(map(len, itertools.chain.from_iterable(labels)), default=0) * 4 <= bound:
            return None
        for name, value in labels:
            size = _bytes_over(name, name_limit)
            if size:
                return LabelViolation(
                    "label_name_length",
                    f"label name {_clip(name)!r} is {size} bytes long, over the limit of "
                    f"{name_limit} (storage.max_label_name_length)",
                )
            size = _bytes_over(value, value_limit)
            if size:
                return LabelViolation(
                    "label_value_length",
                    f"label {_clip(name)!r} has a value {size} bytes long, over the limit "
                    f"of {value_limit} (storage.max_label_value_length)",
                )
        return None

    def check_exemplar(self, labels: Labels) -> LabelViolation | None:
        """Whether an exemplar's labels fit the exemplar budget (characters, names + values)."""
        limit = self.max_exemplar_labels_length
        if not limit:
            return None
        length = sum(len(n) + len(v) for n, v in labels)
        if length > limit:
            return LabelViolation(
                "exemplar_labels_length",
                f"exemplar labels are {length} characters long, over the limit of {limit} "
                "(storage.max_exemplar_labels_length); exemplar dropped, sample kept",
            )
        return None
