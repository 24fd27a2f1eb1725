"""The bridge's PromQL engine: ``promql-parser`` for syntax, numpy for evaluation.

``Engine.instant``/``Engine.range`` return a ``QueryResult`` or raise a ``PromQLError`` whose
``error_type`` is the Prometheus API error type.
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
