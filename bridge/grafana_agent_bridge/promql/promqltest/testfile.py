"""Parser for Prometheus's PromQL test-file DSL (``promql/promqltest`` ``.test`` files).

Turns a file into commands (load, clear, eval) with the expected outcome of each eval; the
runner executes them. See ``../shared/facts/bridge-anchors.md`` §1.2 for the grammar.
"""

from __future__ import annotations

import math
import re
import struct
from dataclasses import dataclass, field

import promql_parser as pp

from ...config.units import match_duration_ms
from ...histogram.notation import HistogramPoint, NotationError, expand_series_values
from ...labels import METRIC_NAME, Labels, make_labels
from ...storage import STALE_NAN

OMIT = None

Value = float | HistogramPoint | None
"""One expanded value: a float (maybe the stale marker), a histogram, or None for ``_``."""


class TestFileError(Exception):
    pass


@dataclass
class LoadCmd:
    line: int
    step_ms: int
    series: list[tuple[Labels, list[Value]]]
    with_nhcb: bool = False
    start_timestamps: bool = False


@dataclass
class ClearCmd:
    line: int


@dataclass
class Expectation:
    kind: str  # "fail" | "warn" | "info" | "no_warn" | "no_info" | "ordered"
    msg: str | None = None
    regex: str | None = None


@dataclass
class EvalCmd:
    line: int
    expr: str
    instant: bool
    at_ms: int = 0
    start_ms: int = 0
    end_ms: int = 0
    step_ms: int = 0
    expects: list[Expectation] = field(default_factory=list)
    expected: list[tuple[Labels, list[Value]]] = field(default_factory=list)
    expected_scalar: float | None = None
    expected_string: str | None = None
    range_vector: tuple[int, int, int] | None = None
    raw_lines: list[str] = field(default_factory=list)

    def has(self, kind: str) -> bool:
        return any(e.kind == kind for e in self.expects)


Command = LoadCmd | ClearCmd | EvalCmd


def parse_duration(s: str) -> int:
    """A promqltest duration (``load 5m``, ``eval instant at 1h30m``): Prometheus's grammar."""
    ms = match_duration_ms(s.strip())
    if ms is None:
        raise TestFileError(f"bad duration {s!r}")
    return ms


def parse_number(s: str) -> float:
    t = s.strip()
    low = t.lower()
    if low in ("inf", "+inf"):
        return math.inf
    if low == "-inf":
        return -math.inf
    if low == "nan":
        return math.nan
    if re.fullmatch(r"[+-]?0[xX][0-9a-fA-F]+", t):
        return float(int(t, 16))
    if not re.fullmatch(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?", t):
        raise TestFileError(f"bad number {s!r}")
    return float(t)


def _is_number(s: str) -> bool:
    try:
        parse_number(s)
    except TestFileError:
        return False
    return True


def expand_values(text: str) -> list[Value]:
    """Expanding notation: ``1 2 _ 3+1x4 5x2 _x3 stale Inf {{...}}x2``."""
    if "{{" in text:
        try:
            return expand_series_values(text)
        except NotationError as e:
            raise TestFileError(str(e)) from None
    out: list[Value] = []
    tokens = _split_values(text)
    for tok in tokens:
        if tok == "_":
            out.append(OMIT)
            continue
        if tok == "stale":
            out.append(STALE_NAN)
            continue
        m = re.fullmatch(r"(.+)x(\d+)", tok)
        if m is None:
            out.append(parse_number(tok))
            continue
        head, times = m.group(1), int(m.group(2))
        if head == "_":
            out.extend([OMIT] * times)
            continue
        if head == "stale":
            out.extend([STALE_NAN] * (times + 1))
            continue
        if _is_number(head):
            out.extend([parse_number(head)] * (times + 1))
            continue
        split = None
        for i in range(1, len(head)):
            if head[i] in "+-" and head[i - 1] not in "eE":
                a, b = head[:i], head[i + 1 :]
                if _is_number(a) and _is_number(b):
                    split = (parse_number(a), head[i], parse_number(b))
                    break
        if split is None:
            raise TestFileError(f"bad value {tok!r}")
        start, sign, inc = split
        if sign == "-":
            inc = -inc
        k = start
        for _ in range(times + 1):
            out.append(k)
            k += inc
    return out


def _split_values(text: str) -> list[str]:
    toks: list[str] = []
    i = 0
    n = len(text)
    while i < n:
        if text[i].isspace():
            i += 1
            continue
        j = i
        depth = 0
        while j < n and (depth > 0 or not text[j].isspace()):
            if text[j] == "{":
                depth += 1
            elif text[j] == "}":
                depth -= 1
            j += 1
        toks.append(text[i:j])
        i = j
    return toks


def split_series(line: str) -> tuple[str, str]:
    """Split ``metric{a="b c"} 1 2 3`` into the series part and the values part."""
    in_str = False
    depth = 0
    i = 0
    while i < len(line):
        c = line[i]
        if in_str:
            if c == "\\":
                i += 2
                continue
            if c == '"':
                in_str = False
        elif c == '"':
            in_str = True
        elif c == "{":
            depth += 1
        elif c == "}":
            depth -= 1
            if depth == 0:
                return line[: i + 1], line[i + 1 :]
        elif c.isspace() and depth == 0:
            return line[:i], line[i:]
        i += 1
    return line, ""


def parse_series(desc: str) -> Labels:
    desc = desc.strip()
    if desc == "{}":
        return ()
    try:
        e = pp.parse(desc)
    except Exception as ex:
        raise TestFileError(f"bad series {desc!r}: {ex}") from None
    if not isinstance(e, pp.VectorSelector):
        raise TestFileError(f"bad series {desc!r}")
    pairs = {}
    if e.name is not None:
        pairs[METRIC_NAME] = e.name
    for m in e.matchers.matchers:
        pairs[m.name] = m.value
    return make_labels(pairs)


_EVAL_INSTANT = re.compile(
    r"^eval(?:_(fail|warn|ordered|info))?\s+instant\s+(?:at\s+(.+?))?\s+(.+)$", re.S
)
_EVAL_RANGE = re.compile(
    r"^eval(?:_(fail|warn|info))?\s+range\s+from\s+(.+?)\s+to\s+(.+?)\s+step\s+(.+?)\s+(.+)$", re.S
)
_EXPECT = re.compile(
    r"^expect\s+(fail|warn|info|no_warn|no_info|ordered)(?:\s+(msg|regex):\s?(.*))?$"
)


def _unquote_go(s: str) -> str:
    s = s.strip()
    if s.startswith("`") and s.endswith("`"):
        return s[1:-1]
    if s.startswith('"') and s.endswith('"'):
        import json

        return json.loads(s)
    raise TestFileError(f"bad string {s!r}")


def parse_file(text: str) -> list[Command]:
    lines = text.split("\n")
    cmds: list[Command] = []
    i = 0
    n = len(lines)

    def is_blank(s: str) -> bool:
        t = s.strip()
        return not t or t.startswith("#")

    while i < n:
        raw = lines[i]
        if is_blank(raw):
            i += 1
            continue
        line = raw.strip()
        start_line = i + 1
        block: list[str] = []
        j = i + 1
        while j < n and not is_blank(lines[j]):
            block.append(lines[j].strip())
            j += 1
        word = line.split()[0].lower()
        if word == "clear":
            cmds.append(ClearCmd(start_line))
            i += 1  # a one-line command: the next line may start another one
            continue
        elif word.startswith("load"):
            m = re.match(r"^load(?:_(with_nhcb))?\s+(.+?)$", line)
            if not m:
                raise TestFileError(f"line {start_line}: bad load")
            step = parse_duration(m.group(2))
            series = []
            st = False
            for b in block:
                desc, vals = split_series(b)
                if vals.lstrip().startswith("@st") or desc.endswith("@st"):
                    st = True
                    continue
                series.append((parse_series(desc), expand_values(vals)))
            # A series defined twice in one block: the last definition wins (as upstream).
            merged = dict(series)
            cmds.append(LoadCmd(start_line, step, list(merged.items()), bool(m.group(1)), st))
        elif word.startswith("eval"):
            cmds.append(_parse_eval(start_line, line, block))
        else:
            raise TestFileError(f"line {start_line}: unknown command {word!r}")
        i = j
    return cmds


def _parse_eval(lineno: int, line: str, block: list[str]) -> EvalCmd:
    m = _EVAL_INSTANT.match(line)
    if m:
        cmd = EvalCmd(lineno, m.group(3).strip(), True, at_ms=parse_duration(m.group(2) or "0"))
        legacy = m.group(1)
    else:
        m = _EVAL_RANGE.match(line)
        if not m:
            raise TestFileError(f"line {lineno}: bad eval")
        cmd = EvalCmd(
            lineno,
            m.group(5).strip(),
            False,
            start_ms=parse_duration(m.group(2)),
            end_ms=parse_duration(m.group(3)),
            step_ms=parse_duration(m.group(4)),
        )
        legacy = m.group(1)
    if legacy:
        cmd.expects.append(Expectation(legacy))
    cmd.raw_lines = block
    for b in block:
        em = _EXPECT.match(b)
        if em:
            kind, how, val = em.group(1), em.group(2), em.group(3)
            exp = Expectation(kind)
            if how == "msg":
                exp.msg = (val or "").strip()
            elif how == "regex":
                exp.regex = (val or "").strip()
            cmd.expects.append(exp)
            continue
        if b.startswith("expected_fail_message"):
            cmd.expects = [e for e in cmd.expects if e.kind != "fail"]
            cmd.expects.append(Expectation("fail", msg=b[len("expected_fail_message") :].strip()))
            continue
        if b.startswith("expected_fail_regexp"):
            cmd.expects = [e for e in cmd.expects if e.kind != "fail"]
            cmd.expects.append(Expectation("fail", regex=b[len("expected_fail_regexp") :].strip()))
            continue
        rm = re.match(r"^expect\s+range\s+vector\s+from\s+(\S+)\s+to\s+(\S+)\s+step\s+(\S+)$", b)
        if rm:
            cmd.range_vector = (
                parse_duration(rm.group(1)),
                parse_duration(rm.group(2)),
                parse_duration(rm.group(3)),
            )
            continue
        sm = re.match(r"^expect\s+string\s+(.*)$", b)
        if sm:
            cmd.expected_string = _unquote_go(sm.group(1))
            continue
        if b.startswith("expect"):
            raise TestFileError(f"line {lineno}: unknown expectation {b!r}")
        if _is_number(b) or re.fullmatch(r"[+-]?0[xX][0-9a-fA-F]+", b):
            try:
                cmd.expected_scalar = float(int(b, 0))
            except ValueError:
                cmd.expected_scalar = parse_number(b)
            continue
        desc, vals = split_series(b)
        cmd.expected.append((parse_series(desc), expand_values(vals)))
    return cmd


def stale_bits(v: float) -> bool:
    return struct.pack("<d", v) == struct.pack("<d", STALE_NAN)
