"""OTLP metric and attribute names as Prometheus 3.x names them.

The rules are those of ``github.com/prometheus/otlptranslator`` (``metric_namer.go``,
``label_namer.go``, ``unit_namer.go``, ``strconv.go``), which Prometheus 3.x's OTLP receiver
uses; each function names the one it follows. Strategies (``otlp.translation_strategy``):

- ``UnderscoreEscapingWithSuffixes`` (Prometheus's default): names are escaped to
  ``[a-zA-Z0-9_:]`` and get unit suffixes and ``_total``/``_ratio``.
- ``UnderscoreEscapingWithoutSuffixes``: escaped, no suffixes.
- ``NoUTF8EscapingWithSuffixes``: names kept as sent (UTF-8), suffixes added.
- ``NoTranslation``: names kept as sent, no suffixes.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

STRATEGIES = (
    "UnderscoreEscapingWithSuffixes",
    "UnderscoreEscapingWithoutSuffixes",
    "NoUTF8EscapingWithSuffixes",
    "NoTranslation",
)


class Kind(Enum):
    """The OTLP metric kinds that decide a name's type suffix (``metric_type.go``)."""

    GAUGE = "gauge"
    MONOTONIC_COUNTER = "monotonic_counter"
    NON_MONOTONIC_COUNTER = "non_monotonic_counter"
    HISTOGRAM = "histogram"
    EXPONENTIAL_HISTOGRAM = "exponential_histogram"
    SUMMARY = "summary"


class InvalidNameError(ValueError):
    """A name that normalises to nothing usable (empty, or underscores only)."""


# otlptranslator unit_namer/metric_namer: UCUM units to Prometheus base-unit words.
_UNITS = {
    "d": "days",
    "h": "hours",
    "min": "minutes",
    "s": "seconds",
    "ms": "milliseconds",
    "us": "microseconds",
    "ns": "nanoseconds",
    "By": "bytes",
    "KiBy": "kibibytes",
    "MiBy": "mebibytes",
    "GiBy": "gibibytes",
    "TiBy": "tibibytes",
    "KBy": "kilobytes",
    "MBy": "megabytes",
    "GBy": "gigabytes",
    "TBy": "terabytes",
    "m": "meters",
    "V": "volts",
    "A": "amperes",
    "J": "joules",
    "W": "watts",
    "g": "grams",
    "Cel": "celsius",
    "Hz": "hertz",
    "1": "",
    "%": "percent",
}
_PER_UNITS = {
    "s": "second",
    "m": "minute",
    "h": "hour",
    "d": "day",
    "w": "week",
    "mo": "month",
    "y": "year",
}


def _metric_char(c: str) -> bool:
    return ("a" <= c <= "z") or ("A" <= c <= "Z") or ("0" <= c <= "9") or c == ":"


def _label_char(c: str) -> bool:
    return ("a" <= c <= "z") or ("A" <= c <= "Z") or ("0" <= c <= "9")


def _tokens(text: str, keep_underscore: bool) -> list[str]:
    """Go's ``strings.FieldsFunc``: runs of valid characters, split at the others."""
    out: list[str] = []
    current: list[str] = []
    for c in text:
        if _metric_char(c) or (keep_underscore and c == "_"):
            current.append(c)
        elif current:
            out.append("".join(current))
            current = []
    if current:
        out.append("".join(current))
    return out


def _collapse_underscores(text: str) -> str:
    out: list[str] = []
    for c in text:
        if c == "_" and out and out[-1] == "_":
            continue
        out.append(c)
    return "".join(out)


def unit_suffixes(unit: str) -> tuple[str, str]:
    """The main and ``per_`` unit words of a UCUM unit (``buildUnitSuffixes``): annotations in
    braces (``{request}``) give none; unknown units are used as they are."""
    main_text, slash, per_text = unit.partition("/")
    main = ""
    main_text = main_text.strip()
    if main_text and "{" not in main_text and "}" not in main_text:
        main = _UNITS.get(main_text, main_text)
    per = ""
    if slash and per_text:
        per_text = per_text.strip()
        if per_text and "{" not in per_text and "}" not in per_text:
            per = _PER_UNITS.get(per_text, per_text)
        if per:
            per = "per_" + per
    return main, per


def _clean_unit(unit: str) -> str:
    """``cleanUpUnit``: invalid characters to ``_``, runs collapsed, no leading ``_``."""
    return _collapse_underscores(
        "".join(c if _metric_char(c) else "_" for c in unit)
    ).removeprefix("_")


def _normalize(name: str, unit: str, kind: Kind) -> str:
    """``normalizeName`` (escaping with suffixes)."""
    tokens = _tokens(name, keep_underscore=False)
    main, per = unit_suffixes(unit)
    main, per = _clean_unit(main), _clean_unit(per)
    # addUnitTokens: a unit word already among the name's tokens is not added again.
    if main in tokens:
        main = ""
    if per == "per_":
        per = ""
    else:
        per = per.removesuffix("_")
        if per in tokens:
            per = ""
    if per:
        main = main.removesuffix("_")
    if main:
        tokens.append(main)
    if per:
        tokens.append(per)
    if kind is Kind.MONOTONIC_COUNTER:
        tokens = [t for t in tokens if t != "total"] + ["total"]
    if unit == "1" and kind is Kind.GAUGE:
        tokens = [t for t in tokens if t != "ratio"] + ["ratio"]
    normalized = "_".join(tokens)
    if normalized and normalized[0].isdigit():
        normalized = "_" + normalized
    return normalized


def _trim_suffix(name: str, suffix: str) -> str:
    """``trimSuffixAndDelimiter``."""
    if name.endswith(suffix) and len(name) > len(suffix) + 1:
        return name[: -(len(suffix) + 1)]
    return name


def _utf8_with_suffixes(name: str, unit: str, kind: Kind) -> str:
    """``buildMetricName`` with suffixes: the name kept, suffixes trimmed and re-appended."""
    after: list[str] = []
    if unit == "1" and kind is Kind.GAUGE:
        name = _trim_suffix(name, "ratio")
        after.insert(0, "_ratio")
    if kind is Kind.MONOTONIC_COUNTER:
        name = _trim_suffix(name, "total")
        after.insert(0, "_total")
    main, per = unit_suffixes(unit)
    if per:
        name = _trim_suffix(name, per)
        after.insert(0, "_" + per)
    if main and not name.endswith(main):
        name = name + "_" + main
    return name + "".join(after)


@dataclass(frozen=True)
class Namer:
    """Metric and label names under one translation strategy."""

    strategy: str = "UnderscoreEscapingWithSuffixes"

    @property
    def utf8(self) -> bool:
        return self.strategy in ("NoUTF8EscapingWithSuffixes", "NoTranslation")

    @property
    def suffixes(self) -> bool:
        return self.strategy in ("UnderscoreEscapingWithSuffixes", "NoUTF8EscapingWithSuffixes")

    def metric(self, name: str, unit: str, kind: Kind) -> str:
        """``MetricNamer.Build``; ``InvalidNameError`` for a name that escapes to nothing."""
        if self.utf8:
            built = _utf8_with_suffixes(name, unit, kind) if self.suffixes else name
            if not built:
                raise InvalidNameError(f"metric name {name[:64]!r} is empty")
            return built
        if self.suffixes:
            built = _normalize(name, unit, kind)
        else:
            built = "_".join(_tokens(name, keep_underscore=True))
            if built and built[0].isdigit():
                built = "_" + built
        if not built:
            raise InvalidNameError(
                f"normalization for metric {name[:64]!r} resulted in empty name"
            )
        if built != name and not built.strip("_"):
            raise InvalidNameError(
                f"normalization for metric {name[:64]!r} resulted in invalid name {built!r}"
            )
        return built

    def label(self, name: str) -> str:
        """``LabelNamer.Build``: invalid characters to ``_`` with runs collapsed (reserved
        ``__x__`` names keep their underscores), a leading digit prefixed with ``key_``."""
        if not name:
            raise InvalidNameError("label name is empty")
        if self.utf8:
            if not name.strip("_"):
                raise InvalidNameError(f"label name {name[:64]!r} contains only underscores")
            return name
        normalized = sanitize_label(name)
        if normalized[0].isdigit():
            normalized = "key_" + normalized
        if not normalized.strip("_"):
            raise InvalidNameError(
                f"normalization for label name {name[:64]!r} resulted in invalid name "
                f"{normalized!r}"
            )
        return normalized


def sanitize_label(name: str) -> str:
    """``sanitizeLabelName`` (``strconv.go``): every character outside ``[a-zA-Z0-9]``
    becomes ``_`` and runs of them one ``_``; a reserved ``__x__`` keeps its outer pairs."""
    reserved = len(name) >= 4 and name.startswith("__") and name.endswith("__")
    inner = name[2:-2] if reserved else name
    out: list[str] = []
    underscore = False
    for c in inner:
        if _label_char(c):
            out.append(c)
            underscore = False
        elif not underscore:
            out.append("_")
            underscore = True
    text = "".join(out)
    return f"__{text}__" if reserved else text
