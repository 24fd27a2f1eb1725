"""The errors a query can end with, each carrying the Prometheus API ``errorType`` it maps to.

The HTTP layer turns ``error_type`` into the status code and JSON envelope; keeping the mapping
on the exception means no caller has to know which failure is which.
"""

from __future__ import annotations


class PromQLError(Exception):
    error_type = "internal"


class ParseError(PromQLError):
    """The query text is not valid PromQL (or is valid syntax the engine rejects up front)."""

    error_type = "bad_data"


class EvaluationError(PromQLError):
    """The query is valid but its evaluation failed (e.g. many-to-many matching)."""

    error_type = "execution"


class TooManySamplesError(EvaluationError):
    def __init__(self, message: str = "") -> None:
        super().__init__(
            message
            or "query processing would load too many samples into memory in query execution"
        )


class QueryTimeoutError(PromQLError):
    error_type = "timeout"

    def __init__(self, message: str = "") -> None:
        super().__init__(message or "query timed out in query execution")


class QueryCanceledError(PromQLError):
    error_type = "canceled"

    def __init__(self, message: str = "") -> None:
        super().__init__(message or "query was canceled in query execution")
