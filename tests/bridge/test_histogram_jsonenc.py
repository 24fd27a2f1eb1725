"""Histograms in the Prometheus HTTP API's JSON (``util/jsonutil`` ``MarshalHistogram``)."""

from __future__ import annotations

import json

from histogram_helpers import fh

from grafana_agent_bridge.api.encoding import format_value
from grafana_agent_bridge.histogram.jsonenc import histogram_json, json_buckets


def test_matches_prometheus_codec_test():
    """``web/api/v1/json_codec_test.go``: schema 2 with zero bucket and both signs; the
    expected object is Prometheus's, byte for byte (bounds included)."""
    h = fh(
        schema=2,
        zt=0.001,
        zc=12,
        count=10,
        total=20,
        pos=[(3, 2), (1, 3)],
        pb=[1, 2, 2, 1, 1],
        neg=[(2, 2)],
        nb=[2, 1],
    )
    assert histogram_json(h, format_value) == (
        '{"count":"10","sum":"20","buckets":[[1,"-1.6817928305074288","-1.414213562373095","1"],'
        '[1,"-1.414213562373095","-1.189207115002721","2"],[3,"-0.001","0.001","12"],'
        '[0,"1.414213562373095","1.6817928305074288","1"],[0,"1.6817928305074288","2","2"],'
        '[0,"2.378414230005442","2.82842712474619","2"],'
        '[0,"2.82842712474619","3.3635856610148576","1"],[0,"3.3635856610148576","4","1"]]}'
    )


def test_empty_buckets_and_no_buckets():
    """Empty buckets are not shown; with none left, ``buckets`` is absent."""
    assert histogram_json(fh(count=0, total=0, pos=[(0, 2)], pb=[0, 0]), format_value) == (
        '{"count":"0","sum":"0"}'
    )


def test_custom_buckets_rules():
    """NHCB: the first bucket is closed (rule 3, from -Inf), the others (lower, upper]."""
    h = fh(schema=-53, count=6, total=3, pos=[(0, 3)], pb=[1, 2, 3], cv=[0.5, 1])
    got = json.loads(histogram_json(h, format_value))
    assert got["buckets"] == [
        [3, "-Inf", "0.5", "1"],
        [0, "0.5", "1", "2"],
        [0, "1", "+Inf", "3"],
    ]
    assert [b.rule for b in json_buckets(h)] == [3, 0, 0]
