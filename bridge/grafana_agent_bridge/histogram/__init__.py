"""Native histograms: the model, its arithmetic and statistics, and its encodings.

Self-contained (no imports from ``store``, ``promql`` or ``api``) so that ingest, storage,
the engine and the API can all build on it:

- ``model``: ``FloatHistogram`` (immutable), ``Span``, ``Bucket``, ``Hint``, the stale marker;
- ``ops``: ``add``/``sub`` (with the annotations they cause), ``mul``/``div``, ``compact``,
  ``reduce_resolution``, ``detect_reset``, ``equals``, ``promqltest_equal`` (promqltest's compare);
- ``stats``: ``histogram_quantile``/``fraction``/``count``/``sum``/``avg``/``stddev``/``stdvar``;
- ``rate``: ``histogram_increase``, the core of ``rate``/``increase``/``delta``;
- ``kahan``: compensated ``kahan_add``, ``sum_histograms``/``mean_histograms`` (sum, avg,
  ``*_over_time``);
- ``classic``: classic histogram series → custom-bucket histograms (``load_with_nhcb``);
- ``statsview``: the hint-setting, bucket-dropping view ``histogram_count``/``sum``/``avg`` read;
- ``binop``: binary operators with a histogram operand, with the sample-drop rules;
- ``notes``: the annotations all of these report, with Prometheus's text;
- ``notation``: the promqltest series notation, ``{{...}}`` histograms included;
- ``readback``: the counter-reset hint a stored sample reads back with (Prometheus's chunks);
- ``codec``: remote-write 1.0 ``prometheus.Histogram`` decode (validated) and encode;
- ``jsonenc``: the Prometheus HTTP API's JSON form.
"""

from .model import STALE_NAN, Bucket, FloatHistogram, Hint, HistogramError, Span, stale_histogram

__all__ = [
    "STALE_NAN",
    "Bucket",
    "FloatHistogram",
    "Hint",
    "HistogramError",
    "Span",
    "stale_histogram",
]
