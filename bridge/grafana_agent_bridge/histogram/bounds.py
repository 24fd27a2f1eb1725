"""Bucket boundaries of native histograms (Prometheus ``model/histogram/generic.go``).

Exponential schema ``s`` (-4..8) puts boundaries at ``2**(k * 2**-s)``: bucket ``i`` is
``(bound(i-1), bound(i)]`` for positive values. Schema -53 (custom buckets, "NHCB") takes its
upper bounds from ``custom_values``; the bucket past the last value reaches +Inf.

The fractional parts of the boundaries of schemas 0..8 are Prometheus's own float values
(``_fractions``), so that boundaries match it bit for bit.
"""

from __future__ import annotations

import math

from ._fractions import FRACTIONS as _FRACTIONS

EXPONENTIAL_SCHEMA_MIN = -4
EXPONENTIAL_SCHEMA_MAX = 8
EXPONENTIAL_SCHEMA_MIN_RESERVED = -9
EXPONENTIAL_SCHEMA_MAX_RESERVED = 52
CUSTOM_BUCKETS_SCHEMA = -53


def is_custom_buckets(schema: int) -> bool:
    return schema == CUSTOM_BUCKETS_SCHEMA


def is_exponential(schema: int) -> bool:
    return EXPONENTIAL_SCHEMA_MIN <= schema <= EXPONENTIAL_SCHEMA_MAX


def is_valid_schema(schema: int) -> bool:
    return is_custom_buckets(schema) or is_exponential(schema)


def is_known_schema(schema: int) -> bool:
    """Schemas Prometheus accepts on ingest: valid ones, and exponential schemas in the
    reserved range -9..52, which are reduced to the nearest valid one."""
    return is_custom_buckets(schema) or (
        EXPONENTIAL_SCHEMA_MIN_RESERVED <= schema <= EXPONENTIAL_SCHEMA_MAX_RESERVED
    )


def _ldexp(frac: float, exp: int) -> float:
    try:
        return math.ldexp(frac, exp)
    except OverflowError:  # Go's math.Ldexp gives +Inf
        return math.inf


def exponential_bound(idx: int, schema: int) -> float:
    """The upper bound of positive bucket ``idx`` in exponential ``schema``.

    As in Prometheus, the bucket just below the one that counts ±Inf observations ends at
    the largest float rather than at +Inf.
    """
    if schema < 0:
        exp = idx << -schema
        if exp == 1024:
            return float.fromhex("0x1.fffffffffffffp+1023")
        return _ldexp(1.0, exp)
    frac = _FRACTIONS[(idx & ((1 << schema) - 1)) << (8 - schema)]
    exp = (idx >> schema) + 1
    if frac == 0.5 and exp == 1025:
        return float.fromhex("0x1.fffffffffffffp+1023")
    return _ldexp(frac, exp)


def bucket_bound(idx: int, schema: int, custom_values: tuple[float, ...]) -> float:
    """Upper bound of positive bucket ``idx``; for custom buckets -1 is -Inf and
    ``len(custom_values)`` is +Inf."""
    if schema == CUSTOM_BUCKETS_SCHEMA:
        n = len(custom_values)
        if idx == n:
            return math.inf
        if idx == -1:
            return -math.inf
        if idx < -1 or idx > n:
            raise IndexError(f"index {idx} out of bounds for {n} custom bounds")
        return custom_values[idx]
    return exponential_bound(idx, schema)


def target_index(idx: int, origin_schema: int, target_schema: int) -> int:
    """The bucket in ``target_schema`` (coarser) that bucket ``idx`` of ``origin_schema``
    falls into: boundary 1 is shared by all schemas, so index 1 maps to 1."""
    return ((idx - 1) >> (origin_schema - target_schema)) + 1
