"""The histogram codec and JSON encoding against a real Prometheus (Debian's 2.42, native
histograms enabled) as the oracle.

Histograms encoded as the forwarder encodes them (``remote_write.encode_write_request``, which
uses ``histogram.codec``) are remote-written to Prometheus; what its HTTP API then answers must
be exactly what ``histogram.jsonenc`` writes for the same histograms (every
bucket boundary included, bit for bit), and its ``histogram_count``/``histogram_sum`` the
model's. ``histogram_quantile`` is compared where Prometheus 2.x (linear interpolation) and 3.x
(exponential) agree: quantiles that fall on a bucket boundary.
"""

from __future__ import annotations

import json
import time
import urllib.parse
from collections.abc import Sequence
from pathlib import Path

from forward_support import Prometheus, http_get, http_post

from grafana_agent_bridge.api.encoding import format_value
from grafana_agent_bridge.histogram.codec import HistogramSample
from grafana_agent_bridge.histogram.jsonenc import histogram_json
from grafana_agent_bridge.histogram.model import FloatHistogram, Span
from grafana_agent_bridge.histogram.stats import histogram_quantile
from grafana_agent_bridge.remote_write import (
    REMOTE_WRITE_HEADERS,
    HistogramSeries,
    encode_write_request,
)


def _h(
    schema: int,
    pos: Sequence[float],
    offset: int,
    neg: Sequence[float] = (),
    *,
    zero: float = 0.0,
    total: float = 7.25,
    noffset: int = 0,
) -> FloatHistogram:
    """A histogram whose count is the sum of its buckets (as Prometheus requires of an
    integer histogram)."""
    return FloatHistogram(
        schema=schema,
        count=zero + sum(pos) + sum(neg),
        sum=total,
        zero_threshold=0.001 if zero else 0.0,
        zero_count=zero,
        positive_spans=(Span(offset, len(pos)),) if pos else (),
        positive_buckets=tuple(pos),
        negative_spans=(Span(noffset, len(neg)),) if neg else (),
        negative_buckets=tuple(neg),
    )


CASES: dict[str, tuple[FloatHistogram, bool]] = {
    "h_schema0": (_h(0, [1, 2, 1], 0), True),
    "h_schema3_zero_neg": (_h(3, [4, 0, 3, 1, 9], -7, [2, 5], zero=3, noffset=2), True),
    "h_schema_minus2": (_h(-2, [1, 1], 1, [1], noffset=-1), True),
    "h_float": (_h(1, [0.5, 1.25, 2.0], 2, zero=0.75, total=-3.5), False),
    "h_schema8": (_h(8, [1, 2, 3, 4], 100), True),
}


def _post(url: str, t_ms: int) -> None:
    """All cases in one request, encoded as the forwarder encodes histograms."""
    series = [
        HistogramSeries((("__name__", name),), [HistogramSample(t_ms, h, integer)])
        for name, (h, integer) in CASES.items()
    ]
    body = encode_write_request([], histograms=series)
    status, answer = http_post(url, "/api/v1/write", body, REMOTE_WRITE_HEADERS)
    assert status == 204, answer[:500]


def _query(url: str, expr: str, t_ms: int) -> list:
    q = urllib.parse.urlencode({"query": expr, "time": f"{t_ms / 1000:.3f}"})
    status, body = http_get(url, f"/api/v1/query?{q}")
    assert status == 200, body[:500]
    return json.loads(body)["data"]["result"]


def test_prometheus_reads_back_what_the_codec_wrote(tmp_path: Path) -> None:
    prom = Prometheus(tmp_path, features=("native-histograms",))
    try:
        t_ms = int(time.time() * 1000) - 60_000
        _post(prom.write_url.removesuffix("/api/v1/write"), t_ms)
        for name, (h, _) in CASES.items():
            (item,) = _query(prom.url, name, t_ms)
            got_t, got_h = item["histogram"]
            assert round(float(got_t) * 1000) == t_ms
            assert got_h == json.loads(histogram_json(h, format_value)), name
            (count,) = _query(prom.url, f"histogram_count({name})", t_ms)
            assert float(count["value"][1]) == h.count
            (total,) = _query(prom.url, f"histogram_sum({name})", t_ms)
            assert float(total["value"][1]) == h.sum
        # On boundaries 2.x and 3.x agree: 1 of 4 observations at or below 1, 3 of 4 at or
        # below 2 in buckets:[1 2 1] of schema 0.
        h0 = CASES["h_schema0"][0]
        for q, bound in ((0.25, 1.0), (0.75, 2.0)):
            (res,) = _query(prom.url, f"histogram_quantile({q}, h_schema0)", t_ms)
            assert float(res["value"][1]) == bound
            assert histogram_quantile(q, h0)[0] == bound
    finally:
        prom.stop()
