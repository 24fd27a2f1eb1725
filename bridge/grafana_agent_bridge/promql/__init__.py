"""The bridge's PromQL engine: ``promql-parser`` for syntax, numpy for evaluation.

``Engine.instant``/``Engine.range`` return a ``QueryResult`` or raise a ``PromQLError`` whose
``error_type`` is the Prometheus API error type.

Layout, imports pointing down only: ``engine`` (the facade) -> ``evaluator`` (walks the tree,
selects through ``storage.Querier`` via ``selection``, evaluates every operand) -> the
operators ``functions/`` (one module per family), ``aggregations``, ``binops`` and ``info``,
which get values and a ``context.EvalContext`` -> ``numeric`` (Prometheus's float maths),
``values`` (the value types), ``parser`` (text to checked syntax tree). ``promqltest/`` runs
Prometheus's test files against any store that meets the storage contract.
"""

from .engine import Engine, QueryResult
from .errors import (
    EvaluationError,
    ParseError,
    PromQLError,
    QueryCanceledError,
    QueryTimeoutError,
    TooManySamplesError,
)

__all__ = [
    "Engine",
    "EvaluationError",
    "ParseError",
    "PromQLError",
    "QueryCanceledError",
    "QueryResult",
    "QueryTimeoutError",
    "TooManySamplesError",
]
