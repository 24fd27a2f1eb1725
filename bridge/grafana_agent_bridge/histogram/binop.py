"""Binary operators between samples when at least one is a histogram
(``promql/engine.go`` ``vectorElemBinop`` and how ``VectorBinop`` treats its outcome).

- histogram ``*`` float, float ``*`` histogram, histogram ``/`` float: scaled, compacted;
- histogram ``+``/``-`` histogram: added/subtracted and compacted (``-`` gives a gauge); a mix
  of exponential and custom buckets drops the sample with an "incompatible bucket layout"
  warning, conflicting counter-reset hints drop it with a warning, reconciled custom bounds
  keep it with an info;
- histogram ``==``/``!=`` histogram: filters on exact equality, keeping the left side;
- histogram ``</``/``>/`` float: the trim operators (``trim``); any other operand pair of
  a trim, floats included, is an incompatible pair;
- every other combination drops the sample with an "incompatible sample types" info.

``binop`` covers only pairs with a histogram; float-float stays with the engine.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace

from .model import FloatHistogram, Hint, IncompatibleSchemaError
from .notes import Note
from .ops import add, compact, div, equals, mul, sub
from .trim import trim_buckets

Value = float | FloatHistogram


@dataclass(frozen=True, slots=True)
class BinopResult:
    """``value`` None means the sample is dropped. ``keep`` is the comparison outcome (what
    ``bool`` turns into 1/0). ``note`` is the annotation's full text, if any."""

    value: Value | None
    keep: bool
    note: str | None = None
    note_is_warning: bool = False


def _kind(v: Value) -> str:
    return "histogram" if isinstance(v, FloatHistogram) else "float"


def _incompatible(op: str, lhs: Value, rhs: Value) -> BinopResult:
    text = (
        "PromQL info: incompatible sample types encountered for binary operator "
        f"{json.dumps(op)}: {_kind(lhs)} {op} {_kind(rhs)}"
    )
    return BinopResult(None, False, text)


def binop(op: str, lhs: Value, rhs: Value) -> BinopResult:
    """``lhs op rhs`` for ``op`` in + - * / ^ % == != > < >= <= atan2, one side a histogram."""
    if isinstance(lhs, FloatHistogram) and isinstance(rhs, FloatHistogram):
        return _both(op, lhs, rhs)
    if isinstance(rhs, FloatHistogram):
        if op == "*" and not isinstance(lhs, FloatHistogram):
            return BinopResult(compact(mul(rhs, lhs), 0), True)
        return _incompatible(op, lhs, rhs)
    if isinstance(lhs, FloatHistogram):
        if op == "*":
            return BinopResult(compact(mul(lhs, rhs), 0), True)
        if op == "/":
            return BinopResult(compact(div(lhs, rhs), 0), True)
        if op in ("</", ">/"):
            return BinopResult(trim_buckets(lhs, rhs, op == "</"), True)
        return _incompatible(op, lhs, rhs)
    if op in ("</", ">/"):
        return _incompatible(op, lhs, rhs)  # trims take a histogram on the left
    raise ValueError("binop needs a histogram on at least one side")


def _both(op: str, lhs: FloatHistogram, rhs: FloatHistogram) -> BinopResult:
    if op in ("+", "-"):
        try:
            res = add(lhs, rhs) if op == "+" else sub(lhs, rhs)
        except IncompatibleSchemaError:
            text = (
                f"PromQL warning: incompatible bucket layout encountered for binary operator {op}"
            )
            return BinopResult(None, False, text, note_is_warning=True)
        h = res.histogram if op == "+" else replace(res.histogram, hint=Hint.GAUGE)
        if res.counter_reset_collision:
            note = (
                Note.COUNTER_RESET_COLLISION_ADD if op == "+" else Note.COUNTER_RESET_COLLISION_SUB
            )
            return BinopResult(None, False, note.message(), note_is_warning=True)
        if res.nhcb_bounds_reconciled:
            note = (
                Note.MISMATCHED_CUSTOM_BUCKETS_ADD
                if op == "+"
                else Note.MISMATCHED_CUSTOM_BUCKETS_SUB
            )
            return BinopResult(compact(h, 0), True, note.message())
        return BinopResult(compact(h, 0), True)
    if op in ("==", "!="):
        same = equals(lhs, rhs)
        return BinopResult(lhs, same if op == "==" else not same)
    return _incompatible(op, lhs, rhs)
