"""Prometheus's JSON encodings, byte for byte where Grafana depends on them.

Grafana parses every sample value as a JSON *string* with Go's ``ParseFloat`` and every
timestamp as a JSON *number* of seconds truncated to milliseconds; a bare number as a value or
a string as a timestamp is a parse error there. So the result bodies are written here by hand
(values via ``format_value``, timestamps via ``format_timestamp``) rather than left to
``json.dumps``, which would also be slower on large matrices.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Sequence
from decimal import Decimal

import numpy as np

from ..histogram.jsonenc import histogram_json
from ..histogram.model import FloatHistogram
from ..labels import Labels
from ..storage import Exemplar, SeriesData


def format_value(x: float) -> str:
    """Go's ``strconv.FormatFloat(x, 'f', -1, 64)``, switching to ``'e'`` where Prometheus does.

    Prometheus (``util/jsonutil``) uses the exponent form for ``|x| < 1e-6`` and
    ``|x| >= 1e21``; both forms use the shortest digits that round-trip, which Python's
    ``repr`` also produces.
    """
    if math.isnan(x):
        return "NaN"
    if math.isinf(x):
        return "+Inf" if x > 0 else "-Inf"
    s = repr(float(x))
    a = abs(x)
    if a != 0 and (a < 1e-6 or a >= 1e21):
        return s  # repr is already in e-form here, with Go's two-digit exponent (1e-07)
    if "e" in s:
        s = format(Decimal(s), "f")
    if s.endswith(".0"):
        s = s[:-2]
    return s


def format_timestamp(t_ms: int) -> str:
    """Milliseconds as a JSON number of seconds with at most three decimals (``4``, ``1.5``)."""
    sec, ms = divmod(int(t_ms), 1000)
    if ms == 0:
        return str(sec)
    if sec < 0:  # divmod floors; Prometheus writes -1.5 for -1500 ms, not "-2.500"
        sec, ms = sec + 1, 1000 - ms
        head = "-0" if sec == 0 else str(sec)
    else:
        head = str(sec)
    return f"{head}.{ms:03d}".rstrip("0")


def _labels_json(labels: Labels) -> str:
    return json.dumps(dict(labels), ensure_ascii=False, separators=(",", ":"))


def _pair(t_ms: int, v: float) -> str:
    return f'[{format_timestamp(t_ms)},"{format_value(v)}"]'


def _histogram_pair(t_ms: int, h: FloatHistogram) -> str:
    return f"[{format_timestamp(t_ms)},{histogram_json(h, format_value)}]"


def _sample_json(lb: Labels, t: int, v: float | FloatHistogram) -> str:
    if isinstance(v, FloatHistogram):
        return f'{{"metric":{_labels_json(lb)},"histogram":{_histogram_pair(t, v)}}}'
    return f'{{"metric":{_labels_json(lb)},"value":{_pair(t, v)}}}'


def vector_json(samples: Iterable[tuple[Labels, int, float | FloatHistogram]]) -> str:
    """An instant vector: a float sample has ``value``, a native histogram ``histogram``."""
    return "[" + ",".join(_sample_json(lb, t, v) for lb, t, v in samples) + "]"


class _Stamps:
    """The timestamp texts of one matrix answer, shared by its series: a range answer's
    series mostly have the same steps, so each distinct list of steps is formatted once."""

    def __init__(self) -> None:
        self._text: dict[int, str] = {}
        self._prefixes: dict[bytes, list[str]] = {}

    def prefixes(self, timestamps: np.ndarray) -> list[str]:
        """``[<timestamp>,"`` for each timestamp: what precedes each value's text."""
        key = timestamps.tobytes()
        got = self._prefixes.get(key)
        if got is None:
            got = self._prefixes[key] = [f'[{t},"' for t in self._texts(timestamps)]
        return got

    def _texts(self, timestamps: np.ndarray) -> list[str]:
        # Timestamps on whole seconds (every range answer whose start and step are whole
        # seconds, Grafana's usual) are formatted as one numpy division; others go through
        # ``format_timestamp`` once per distinct step.
        if timestamps.dtype.kind == "i" and not (timestamps % 1000).any():
            return list(map(str, (timestamps // 1000).tolist()))
        out = []
        for t in timestamps.tolist():
            text = self._text.get(t)
            if text is None:
                text = self._text[t] = format_timestamp(t)
            out.append(text)
        return out


def _values_json(timestamps: np.ndarray, values: np.ndarray, stamps: _Stamps) -> str:
    """The ``values`` pairs of one series; the hot loop of range answers.

    Each pair is its step's shared ``[<t>,"`` prefix plus the value's text (``_value_texts``),
    joined by ``"],``: one C-level concatenation per point instead of formatting each pair.
    """
    if not len(values):
        return ""
    texts = _value_texts(values)
    return '"],'.join(map(str.__add__, stamps.prefixes(timestamps), texts)) + '"]'


_EXACT_INT = float(2**53)
"""Below this every whole float is an exact integer, and its shortest digits are that integer's."""
_EXACT_INT_I = 2**53


def _has_negative_zero(values: np.ndarray) -> bool:
    return bool((np.signbit(values) & (values == 0)).any())


def _value_texts(values: np.ndarray) -> list[str]:
    """``format_value`` of each value, without its per-value cost where that can be avoided.

    A series of whole numbers (byte and packet counts, gauges of sizes: most of what
    node_exporter sends) is written as integers in one pass, which is what Go writes for them
    and several times cheaper than ``repr`` (the shortest-digits search). Otherwise ``repr``
    already gives Go's digits for almost every value, so only the rare ones (integral
    values' ``.0``, exponent forms, NaN and infinities) are touched again.
    """
    if len(values) and float(values[0]).is_integer():  # the checks only where likely to pay
        with np.errstate(invalid="ignore"):  # NaN and infinities cast to garbage: not equal
            ints = values.astype(np.int64)
        lo, hi = int(ints.min()), int(ints.max())
        if (
            bool((ints == values).all())
            and lo > -_EXACT_INT_I
            and hi < _EXACT_INT_I
            and not (lo <= 0 and _has_negative_zero(values))  # Go writes -0 as "-0"
        ):
            return list(map(str, ints.tolist()))
    vals = values.tolist()
    texts = list(map(repr, vals))
    # Only these can need touching: repr ends whole numbers below 1e16 in ".0", writes an
    # exponent below 1e-4 and from 1e16 up, and "nan"/"inf". Finding them with numpy spares
    # looking at every text of full-precision series (most of a big answer).
    with np.errstate(invalid="ignore"):
        mags = np.abs(values)
        suspect = ~(mags < 1e16) | (mags < 1e-4) | (values == np.trunc(values))
    for i in np.flatnonzero(suspect).tolist():
        text = texts[i]
        if text[-2:] == ".0":
            texts[i] = text[:-2]
        elif "e" in text or "n" in text:
            texts[i] = format_value(vals[i])
    return texts


def _series_json(s: SeriesData, stamps: _Stamps) -> str:
    """One series of a matrix: its float samples under ``values`` and its native histograms
    under ``histograms``, each key only when it has samples (as Prometheus writes them)."""
    head = f'{{"metric":{_labels_json(s.labels)}'
    if s.histograms is None:
        return head + f',"values":[{_values_json(s.timestamps, s.values, stamps)}]}}'
    is_h = np.array([h is not None for h in s.histograms], dtype=bool)
    parts = [head]
    if not is_h.all():
        floats = _values_json(s.timestamps[~is_h], s.values[~is_h], stamps)
        parts.append(f',"values":[{floats}]')
    hs = [
        _histogram_pair(int(t), h)
        for t, h in zip(s.timestamps.tolist(), s.histograms)
        if h is not None
    ]
    if hs:
        parts.append(f',"histograms":[{",".join(hs)}]')
    return "".join(parts) + "}"


def matrix_json(series: Iterable[SeriesData]) -> str:
    stamps = _Stamps()
    return "[" + ",".join(_series_json(s, stamps) for s in series) + "]"


def result_json(result_type: str, value: object) -> str:
    """The ``data`` object of a query answer: ``{"resultType":...,"result":...}``."""
    if result_type == "vector":
        body = vector_json(value)  # type: ignore[arg-type]
    elif result_type == "matrix":
        body = matrix_json(value)  # type: ignore[arg-type]
    elif result_type == "scalar":
        t, v = value  # type: ignore[misc]
        body = _pair(t, v)
    elif result_type == "string":
        t, s = value  # type: ignore[misc]
        body = f"[{format_timestamp(t)},{json.dumps(s, ensure_ascii=False)}]"
    else:
        raise ValueError(f"unknown result type {result_type!r}")
    return f'{{"resultType":"{result_type}","result":{body}}}'


def exemplars_json(groups: Sequence[tuple[Labels, list[Exemplar]]]) -> str:
    parts = []
    for series_labels, exemplars in groups:
        items = ",".join(
            f'{{"labels":{_labels_json(e.labels)},"value":"{format_value(e.value)}",'
            f'"timestamp":{format_timestamp(e.timestamp)}}}'
            for e in exemplars
        )
        parts.append(f'{{"seriesLabels":{_labels_json(series_labels)},"exemplars":[{items}]}}')
    return "[" + ",".join(parts) + "]"


class RawJSON(str):
    """Already-encoded JSON text that ``envelope`` embeds as is."""


def _encode(value: object) -> str:
    if isinstance(value, RawJSON):
        return str(value)
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def success(data: object, warnings: Sequence[str] = (), infos: Sequence[str] = ()) -> bytes:
    """Prometheus's success envelope; empty ``warnings``/``infos`` are omitted as it does."""
    out = f'{{"status":"success","data":{_encode(data)}'
    if warnings:
        out += f',"warnings":{_encode(list(warnings))}'
    if infos:
        out += f',"infos":{_encode(list(infos))}'
    return (out + "}").encode()


def error(error_type: str, message: str, data: object = None) -> bytes:
    """Prometheus's error envelope (Grafana shows ``"<errorType>: <error>"``)."""
    body: dict[str, object] = {"status": "error", "errorType": error_type, "error": message}
    if data is not None:
        body["data"] = data
    return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()


ERROR_STATUS = {
    "bad_data": 400,
    "execution": 422,
    "canceled": 499,
    "timeout": 503,
    "internal": 500,
    "not_found": 404,
    "not_acceptable": 406,
    "unavailable": 503,
}
"""HTTP status per ``errorType``, as Prometheus's ``getDefaultErrorCode`` (else 500)."""
