"""PromQL's functions, one module per family, dispatched by name.

The evaluator looks a function up here before evaluating its arguments (an unsupported one
costs nothing), evaluates them, and calls the implementation with a ``Call`` of values.
``info()`` is not here: like Prometheus, the evaluator runs it (it selects series itself).
"""

from __future__ import annotations

from ..errors import EvaluationError
from . import histograms, labelfuncs, mathfuncs, over_time, rates, timefuncs
from .common import Call, FuncImpl

FUNCTIONS: dict[str, FuncImpl] = {
    **rates.FUNCTIONS,
    **over_time.FUNCTIONS,
    **mathfuncs.FUNCTIONS,
    **timefuncs.FUNCTIONS,
    **labelfuncs.FUNCTIONS,
    **histograms.FUNCTIONS,
}


def lookup(name: str) -> FuncImpl:
    """The implementation of function ``name``.

    Raises:
        EvaluationError: the engine does not implement it.
    """
    fn = FUNCTIONS.get(name)
    if fn is not None:
        return fn
    raise EvaluationError(f"function {name}() is not supported")


__all__ = ["FUNCTIONS", "Call", "FuncImpl", "lookup"]
