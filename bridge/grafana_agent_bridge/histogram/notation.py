"""The promqltest notation for series values, histograms included.

As Prometheus's series-description grammar (``promql/parser/lex.go``, ``generated_parser.y``
``series_item``/``histogram_series_value``, ``parse.go`` ``buildHistogramFromMap`` and
``histogramsSeries``) reads it:

- ``1 -2.5 Inf stale _`` one value each (``_`` = no sample, ``stale`` = the stale marker);
- ``5x3`` the value 4 times; ``1+2x3`` / ``1-2x3`` 4 values stepping by 2; ``_x3`` 3 gaps;
- ``{{schema:1 sum:-0.3 count:3.1 z_bucket:7.1 z_bucket_w:0.05 buckets:[5.1 10 7] offset:-3
  n_buckets:[4.1 5] n_offset:-5 counter_reset_hint:gauge custom_values:[1 2 3]}}`` one
  histogram; ``{{...}}x2`` it 3 times; ``{{a}}+{{b}}x3`` a, a+b, a+2b, a+3b (``-`` subtracts).

Numbers are decimal only (series descriptions allow no hex: ``0x5`` is 0 six times), with
``_`` digit separators, Inf and NaN in any case.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from .model import STALE_NAN, FloatHistogram, Hint, Span
from .ops import add, sub


class NotationError(ValueError):
    """Text that is not valid series-value notation; the message says where."""


@dataclass(frozen=True, slots=True)
class HistogramPoint:
    """A histogram in a test file; ``hint_set`` tells whether it spelled out
    ``counter_reset_hint`` (promqltest compares the hint of a result only then)."""

    histogram: FloatHistogram
    hint_set: bool


SeriesValue = float | HistogramPoint | None
"""One expanded value: a float (maybe the stale marker), a histogram, or None for ``_``."""

_NUM = r"(?:(?:\d[\d_]*(?:\.[\d_]*)?|\.\d[\d_]*)(?:[eE][+-]?\d[\d_]*)?|[iI][nN][fF]|[nN][aA][nN])"
_FLOAT_ITEM = re.compile(rf"([+-]?{_NUM})(?:([+-]{_NUM})?x(\d+))?")
_HINTS = {
    "unknown": Hint.UNKNOWN,
    "reset": Hint.RESET,
    "not_reset": Hint.NOT_RESET,
    "gauge": Hint.GAUGE,
}
_KEYS = (
    "schema",
    "sum",
    "count",
    "z_bucket",
    "z_bucket_w",
    "buckets",
    "offset",
    "n_buckets",
    "n_offset",
    "custom_values",
    "counter_reset_hint",
)
MAX_EXPANSION = 1_000_000
"""Most values one line may expand to: ``1x999999999`` is refused rather than built."""


def parse_number(text: str) -> float:
    """A number as the promqltest parser reads it (``parser.number``): an integer literal
    first (a leading 0 means octal, as Go's ``ParseInt(s, 0, 64)``), else a float."""
    t = text.strip()
    low = t.lower().lstrip("+-")
    if low in ("inf", "nan"):
        v = math.inf if low == "inf" else math.nan
        return -v if t.startswith("-") else v
    if not re.fullmatch(rf"[+-]?{_NUM}", t):
        raise NotationError(f"bad number {text!r}")
    digits = t.replace("_", "")
    body = digits.lstrip("+-")
    if re.fullmatch(r"0[0-7]+", body):
        v = float(int(body, 8))
        return -v if digits.startswith("-") else v
    return float(digits)


def _parse_int(text: str, key: str) -> int:
    if not re.fullmatch(r"[+-]?\d+", text):
        raise NotationError(f"error parsing {key} number: {text!r}")
    return int(text)


def _parse_bucket_set(text: str, key: str) -> tuple[float, ...]:
    inner = text[1:-1].split()
    if not inner:
        raise NotationError(f"empty {key} list")
    return tuple(parse_number(v) for v in inner)


def _split_descriptor(body: str) -> dict[str, str]:
    """``key:value`` items of one ``{{...}}`` body; a value may be a ``[...]`` list."""
    fields: dict[str, str] = {}
    pos = 0
    item = re.compile(r"\s*([a-z_]+):(\[[^\]]*\]|[^\s\[\]]+)\s*")
    while pos < len(body):
        if body[pos:].strip() == "":
            break
        m = item.match(body, pos)
        if m is None:
            raise NotationError(
                f"unexpected {body[pos:].strip()[:20]!r} in histogram description, expected a "
                "histogram description key, e.g. buckets:[5 10 7]"
            )
        key, value = m.group(1), m.group(2)
        if key not in _KEYS:
            raise NotationError(f"unknown histogram description key {key!r}")
        if key in fields:
            raise NotationError(f'duplicate key "{key}" in histogram')
        fields[key] = value
        pos = m.end()
    return fields


def parse_histogram(text: str) -> HistogramPoint:
    """One ``{{...}}`` histogram description (fields left out are zero / empty)."""
    t = text.strip()
    if not (t.startswith("{{") and t.endswith("}}")):
        raise NotationError(f"histogram description must be enclosed in {{{{ }}}}: {text!r}")
    fields = _split_descriptor(t[2:-2])
    schema = _parse_int(fields["schema"], "schema") if "schema" in fields else 0
    number_fields = {}
    for key in ("sum", "count", "z_bucket", "z_bucket_w"):
        if key in fields:
            if key == "z_bucket_w" and fields[key].startswith(("-", "+")):
                raise NotationError(f"error parsing z_bucket_w number: {fields[key]!r}")
            number_fields[key] = parse_number(fields[key])
    lists = {}
    for key in ("buckets", "n_buckets", "custom_values"):
        if key in fields:
            if not fields[key].startswith("["):
                raise NotationError(f"error parsing {key} float array: {fields[key]!r}")
            lists[key] = _parse_bucket_set(fields[key], key)
    offsets = {k: _parse_int(fields[k], k) for k in ("offset", "n_offset") if k in fields}
    hint = Hint.UNKNOWN
    if "counter_reset_hint" in fields:
        word = fields["counter_reset_hint"]
        if word not in _HINTS:
            raise NotationError(f"error parsing counter_reset_hint: unknown value {word!r}")
        hint = _HINTS[word]

    def side(bkey: str, okey: str) -> tuple[tuple[Span, ...], tuple[float, ...]]:
        buckets = lists.get(bkey, ())
        if not buckets:
            return (), ()
        return (Span(offsets.get(okey, 0), len(buckets)),), buckets

    pos_spans, pos = side("buckets", "offset")
    neg_spans, neg = side("n_buckets", "n_offset")
    h = FloatHistogram(
        schema=schema,
        count=number_fields.get("count", 0.0),
        sum=number_fields.get("sum", 0.0),
        zero_threshold=number_fields.get("z_bucket_w", 0.0),
        zero_count=number_fields.get("z_bucket", 0.0),
        positive_spans=pos_spans,
        positive_buckets=pos,
        negative_spans=neg_spans,
        negative_buckets=neg,
        custom_values=lists.get("custom_values", ()),
        hint=hint,
    )
    return HistogramPoint(h, "counter_reset_hint" in fields)


def _split_items(text: str) -> list[str]:
    """Whitespace-separated items, keeping each ``{{...}}`` (which contains spaces) whole."""
    items: list[str] = []
    i, n = 0, len(text)
    while i < n:
        if text[i].isspace():
            i += 1
            continue
        j = i
        while j < n and not text[j].isspace():
            if text.startswith("{{", j):
                end = text.find("}}", j + 2)
                if end < 0:
                    raise NotationError(f"histogram description not closed: {text[j:][:40]!r}")
                j = end + 2
            else:
                j += 1
        items.append(text[i:j])
        i = j
    return items


def _times(text: str) -> int:
    n = int(text)
    if n > MAX_EXPANSION:
        raise NotationError(f"repetition x{n} over the limit of {MAX_EXPANSION}")
    return n


def _histogram_item(item: str) -> list[SeriesValue]:
    m = re.fullmatch(r"(\{\{.*?\}\})(?:([+-])(\{\{.*?\}\}))?(?:x(\d+))?", item, re.S)
    if m is None:
        raise NotationError(f"bad histogram series value {item[:60]!r}")
    base = parse_histogram(m.group(1))
    if m.group(3) is None:
        if m.group(4) is None:
            return [base]
        return [base] * (_times(m.group(4)) + 1)
    if m.group(4) is None:
        raise NotationError(f"histogram series {item[:60]!r} needs a repetition xN")
    inc = parse_histogram(m.group(3))
    combine = add if m.group(2) == "+" else sub
    out: list[SeriesValue] = [HistogramPoint(base.histogram, inc.hint_set)]
    cur = base.histogram
    for _ in range(_times(m.group(4))):
        if cur.schema > inc.histogram.schema:
            raise NotationError(
                f"error combining histograms: cannot merge from schema {inc.histogram.schema} "
                f"to {cur.schema}"
            )
        try:
            cur = combine(cur, inc.histogram).histogram
        except ValueError as e:
            raise NotationError(f"error combining histograms: {e}") from None
        out.append(HistogramPoint(cur, inc.hint_set))
    return out


def expand_series_values(text: str) -> list[SeriesValue]:
    """Every value a series line's value part stands for, in order (see the module doc)."""
    out: list[SeriesValue] = []
    for item in _split_items(text):
        if item.startswith("{{"):
            out.extend(_histogram_item(item))
        elif item == "_":
            out.append(None)
        elif item.startswith("_x") and item[2:].isdigit():
            out.extend([None] * _times(item[2:]))
        elif item == "stale":
            out.append(STALE_NAN)
        else:
            m = _FLOAT_ITEM.fullmatch(item)
            if m is None:
                raise NotationError(f'bad series value {item[:60]!r}: expected number or "stale"')
            start = parse_number(m.group(1))
            if m.group(3) is None:
                out.append(start)
                continue
            step = parse_number(m.group(2)) if m.group(2) else 0.0
            for _ in range(_times(m.group(3)) + 1):
                out.append(start)
                start += step
        if len(out) > MAX_EXPANSION:
            raise NotationError(f"series expands to more than {MAX_EXPANSION} values")
    return out
