from __future__ import annotations

import pytest

from config import ConfigError, load

DEFAULTS = {
    "port": 9099,
    "datasource-url": "",
    "scrape-interval": "1m",
    "exemplar-trace-id-label": "trace_id",
}


def test_defaults():
    config = load(DEFAULTS)
    assert config.port == 9099
    assert config.datasource_url is None
    assert config.scrape_interval == "1m"
    assert config.exemplar_trace_id_label == "trace_id"


def test_url_override_is_trimmed():
    config = load({**DEFAULTS, "datasource-url": " https://b.example:8443/ "})
    assert config.datasource_url == "https://b.example:8443"


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("port", 0),
        ("port", 70000),
        ("port", True),
        ("datasource-url", "bridge:9099"),
        ("datasource-url", "ftp://bridge"),
        ("datasource-url", "http://"),
        ("datasource-url", "http://host:99999"),
        ("scrape-interval", "1 minute"),
        ("scrape-interval", "0s"),
        ("scrape-interval", ""),
        ("exemplar-trace-id-label", "trace-id"),
        ("exemplar-trace-id-label", "1abc"),
    ],
)
def test_invalid_values_name_the_option(key, value):
    with pytest.raises(ConfigError, match=f"^{key}:"):
        load({**DEFAULTS, key: value})


@pytest.mark.parametrize("interval", ["15s", "1m30s", "500ms", "2h"])
def test_prometheus_durations(interval):
    assert load({**DEFAULTS, "scrape-interval": interval}).scrape_interval == interval


def test_unit_placeholder():
    from config import unit_datasource_url

    config = load({**DEFAULTS, "datasource-url": "https://bridge-{unit}.example.com:9099"})
    assert config.datasource_url is not None
    assert unit_datasource_url(config.datasource_url, 3) == "https://bridge-3.example.com:9099"
    with pytest.raises(ConfigError, match="placeholder"):
        load({**DEFAULTS, "datasource-url": "https://{host}:9099"})
