"""One vocabulary: the configuration, the HTTP API and the promqltest harness read durations
with one grammar (Prometheus's); the schema alone says which keys are secret; every limit is
a snap key."""

from __future__ import annotations

from datetime import timedelta

import pytest

from grafana_agent_bridge.api.params import parse_duration_ms
from grafana_agent_bridge.config import BridgeConfig, parse_config, secret_paths
from grafana_agent_bridge.config.snapkeys import LIMIT_PATHS, SNAP_KEYS
from grafana_agent_bridge.config.units import PROMETHEUS_MAX_DURATION_MS, match_duration_ms
from grafana_agent_bridge.promql.promqltest import testfile
from grafana_agent_bridge.snapconfig import build_config

GRAMMAR = {
    "0": 0,
    "1ms": 1,
    "90s": 90_000,
    "1h30m": 5_400_000,
    "1y2w3d4h5m6s7ms": 31_536_000_000 + 14 * 86_400_000 + 3 * 86_400_000 + 14_706_007,
    "": None,
    "s": None,
    "30m1h": None,  # units largest first
    "1h1h": None,  # each at most once
    "1.5h": None,
    "-1s": None,
    "1H": None,
    "1h ": None,  # nothing around it
    "1h\n": None,
    "٣s": None,  # ASCII digits only, as Go's [0-9]
}


@pytest.mark.parametrize(("text", "ms"), GRAMMAR.items())
def test_the_api_and_the_test_files_read_durations_with_the_one_grammar(
    text: str, ms: int | None
) -> None:
    assert match_duration_ms(text) == ms
    if ms is None:
        with pytest.raises(ValueError, match="to a valid duration"):
            parse_duration_ms(text)
        if text.strip() == text:
            with pytest.raises(testfile.TestFileError, match="bad duration"):
                testfile.parse_duration(text)
    else:
        assert parse_duration_ms(text) == ms
        assert testfile.parse_duration(text) == ms


def test_an_api_duration_beyond_int64_nanoseconds_is_refused_not_a_crash() -> None:
    """Prometheus holds durations as int64 nanoseconds and calls longer ones out of range; a
    number of years too large for a float must get the same 400 answer, not an exception."""
    assert parse_duration_ms("292y") == 292 * 365 * 86_400_000
    assert 292 * 365 * 86_400_000 <= PROMETHEUS_MAX_DURATION_MS < 293 * 365 * 86_400_000
    for text in ("293y", "1" + "0" * 400 + "ms"):
        with pytest.raises(ValueError, match=f'cannot parse "{text}" to a valid duration'):
            parse_duration_ms(text)
    assert parse_duration_ms("1.5") == 1500.0  # float seconds still come first


def test_the_schema_names_every_secret() -> None:
    assert set(secret_paths(BridgeConfig)) == {
        "query.auth_token",
        "forward.targets[].headers",
        "forward.targets[].bearer_token",
    }


def test_every_key_the_schema_calls_secret_is_masked_when_shown() -> None:
    """Set every secret the schema declares to a marker: no shown form may contain one, and
    the daemon's own file keeps them all. Masking follows the types, so a secret added to the
    schema is covered without touching any list."""
    cfg = parse_config(
        """
        query: {auth_token: marker-query}
        forward:
          targets:
            - url: http://mimir:9009/api/v1/push
              headers: {X-Scope-OrgID: marker-header}
              bearer_token: marker-bearer
        """
    )
    paths = set(secret_paths(BridgeConfig))
    assert len(paths) == 3  # one marker per declared secret above
    shown = cfg.redacted_yaml() + repr(cfg) + str(cfg)
    assert "marker-" not in shown
    assert cfg.to_yaml().count("marker-") == 3
    snap_secrets = {key.name for key in SNAP_KEYS if key.secret}
    assert snap_secrets == {"query-auth-token"}


@pytest.mark.parametrize("path", LIMIT_PATHS)
def test_every_limit_is_a_snap_key_that_reaches_its_config_key(path: str) -> None:
    (key,) = [k for k in SNAP_KEYS if k.path == path]
    section, leaf = path.split(".")
    default = getattr(getattr(BridgeConfig(), section), leaf)
    value, expected = ("7s", timedelta(seconds=7)) if isinstance(default, timedelta) else ("3", 3)
    cfg = build_config({key.name: value}, data_dir="/d")
    assert getattr(getattr(cfg, section), leaf) == expected != default
    assert key.example and key.help.endswith(".")
