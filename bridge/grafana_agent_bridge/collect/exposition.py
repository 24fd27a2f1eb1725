"""A parser for the Prometheus text exposition format (0.0.4), for scrape targets.

Strict enough that a malformed page fails the whole scrape (``up`` 0), as Prometheus does,
rather than storing half of it.
"""

from __future__ import annotations

import re

from .families import Collected

_NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
_LABEL_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")
_TYPES = {"counter", "gauge", "histogram", "summary", "untyped", "unknown", "info", "stateset"}
_SUFFIXES = ("_bucket", "_sum", "_count", "_total", "_created", "_info")


class ExpositionError(ValueError):
    pass


def _unescape(text: str, quote: bool) -> str:
    def repl(m: re.Match[str]) -> str:
        c = m.group(1)
        if c == "n":
            return "\n"
        if c == "\\":
            return "\\"
        if c == '"' and quote:
            return '"'
        return "\\" + c

    return re.sub(r"\\(.)", repl, text)


def parse_float(text: str) -> float:
    low = text.lower()
    if low in ("nan", "+inf", "-inf", "inf", "+nan", "-nan"):
        return float(low)
    if not re.fullmatch(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?|[+-]?0[xX][0-9a-fA-F]+", text):
        raise ValueError(text)
    return float.fromhex(text) if "x" in low else float(text)


def parse(text: str) -> Collected:
    """Samples and metadata of an exposition page.

    Raises:
        ExpositionError: naming the line that is malformed.
    """
    out = Collected()
    types: dict[str, str] = {}
    helps: dict[str, str] = {}
    for lineno, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line:
            continue
        if line.startswith("#"):
            parts = line[1:].split(None, 2)
            if len(parts) >= 2 and parts[0] in ("HELP", "TYPE"):
                name = parts[1]
                rest = parts[2] if len(parts) > 2 else ""
                if parts[0] == "HELP":
                    helps[name] = _unescape(rest, quote=False)
                else:
                    if rest.lower() not in _TYPES:
                        raise ExpositionError(f"line {lineno}: unknown metric type {rest!r}")
                    types[name] = rest.lower()
            continue
        try:
            name, labels, value, ts = _sample(line)
        except (ValueError, IndexError) as e:
            raise ExpositionError(f"line {lineno}: malformed sample {raw[:200]!r} ({e})") from None
        if ts is not None:  # honoured, as Prometheus's honor_timestamps default does
            out.timestamps[len(out.samples)] = ts
        out.samples.append((name, labels, value))
    for family in {*types, *helps}:
        mtype = types.get(family, "unknown")
        out.family(family, "unknown" if mtype == "untyped" else mtype, helps.get(family, ""))
    return out


def _sample(line: str) -> tuple[str, tuple[tuple[str, str], ...], float, int | None]:
    m = _NAME.match(line)
    if m is None:
        raise ValueError("no metric name")
    name = m.group(0)
    i = m.end()
    labels: dict[str, str] = {}
    if i < len(line) and line[i] == "{":
        i += 1
        while True:
            while i < len(line) and line[i] in " \t":
                i += 1
            if line[i] == "}":
                i += 1
                break
            lm = _LABEL_NAME.match(line, i)
            if lm is None:
                raise ValueError("bad label name")
            lname = lm.group(0)
            i = lm.end()
            while line[i] in " \t":
                i += 1
            if line[i] != "=":
                raise ValueError("expected '='")
            i += 1
            while line[i] in " \t":
                i += 1
            if line[i] != '"':
                raise ValueError("expected '\"'")
            j = i + 1
            buf = []
            while line[j] != '"':
                if line[j] == "\\":
                    buf.append(line[j : j + 2])
                    j += 2
                else:
                    buf.append(line[j])
                    j += 1
            if lname in labels:
                raise ValueError(f"duplicate label {lname}")
            labels[lname] = _unescape("".join(buf), quote=True)
            i = j + 1
            while i < len(line) and line[i] in " \t":
                i += 1
            if line[i] == ",":
                i += 1
            elif line[i] != "}":
                raise ValueError("expected ',' or '}'")
    rest = line[i:].split()
    if not rest or len(rest) > 2:
        raise ValueError("expected a value and an optional timestamp")
    value = parse_float(rest[0])
    ts = int(rest[1]) if len(rest) == 2 else None
    return name, tuple(sorted((k, v) for k, v in labels.items() if v)), value, ts


def family_of(name: str, known: dict[str, object]) -> str:
    """The metric family a sample name belongs to (``x_bucket`` → ``x`` when ``x`` is typed)."""
    if name in known:
        return name
    for suffix in _SUFFIXES:
        if name.endswith(suffix) and name[: -len(suffix)] in known:
            return name[: -len(suffix)]
    return name
