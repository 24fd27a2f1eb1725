"""The configuration contract: defaults, each section's valid and invalid values, error wording."""

from __future__ import annotations

import typing
from datetime import timedelta
from pathlib import Path

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import BaseModel
from pydantic.fields import FieldInfo

from grafana_agent_bridge.config import (
    BridgeConfig,
    CollectConfig,
    ConfigError,
    ForwardConfig,
    ForwardTarget,
    IngestConfig,
    LogConfig,
    QueryConfig,
    ScrapeTarget,
    StorageConfig,
    TLSConfig,
    TracingConfig,
    duration_ms,
    format_duration,
    format_size,
    load_config,
    parse_config,
    parse_duration,
    parse_host_port,
    parse_size,
)
from grafana_agent_bridge.config.docs import BEGIN, END, render
from grafana_agent_bridge.config.docs import main as config_docs_main

_MODELS = (
    BridgeConfig,
    CollectConfig,
    ForwardConfig,
    ForwardTarget,
    IngestConfig,
    LogConfig,
    QueryConfig,
    ScrapeTarget,
    StorageConfig,
    TLSConfig,
    TracingConfig,
)
EXAMPLE = Path(__file__).resolve().parents[2] / "bridge/grafana_agent_bridge/config_example.yaml"


def error_of(text: str) -> str:
    with pytest.raises(ConfigError) as info:
        parse_config(text)
    message = str(info.value)
    assert "pydantic" not in message.lower()
    assert "Value error" not in message
    return message


# --- defaults -------------------------------------------------------------------------------


@pytest.mark.parametrize("text", ["", "\n", "# only a comment\n", "{}"])
def test_empty_file_means_embedded_defaults(text: str) -> None:
    cfg = parse_config(text)
    assert cfg == BridgeConfig()
    assert cfg.listen == ("0.0.0.0", 9099)
    assert cfg.collect.interval == timedelta(seconds=15)
    assert cfg.collect.host and cfg.collect.self
    assert cfg.forward.targets == []
    assert cfg.ingest.allowed_clients == []
    assert cfg.query.resolve_auth_token() == ""
    assert cfg.tracing.traces_url() == ""
    assert not cfg.tls.enabled


def test_empty_values_mean_the_defaults() -> None:
    cfg = parse_config(
        "log:\nforward:\n  # targets: []\ndata_dir: null\nstorage: {retention_time: 1d}\n"
    )
    assert cfg == BridgeConfig().with_overrides({"storage.retention_time": "1d"})


def test_no_file_means_embedded_defaults() -> None:
    assert load_config(None) == BridgeConfig()


def test_documented_defaults() -> None:
    cfg = BridgeConfig()
    assert cfg.storage.retention_time == timedelta(days=15)
    assert cfg.storage.retention_size == 0
    assert cfg.storage.block_duration == timedelta(hours=2)
    assert cfg.storage.wal_segment_size == 32 * 1024 * 1024
    assert cfg.ingest.max_body_bytes == 32 * 1024 * 1024
    assert cfg.query.timeout == timedelta(minutes=2)
    assert cfg.query.max_samples == 50_000_000
    assert cfg.query.lookback_delta == timedelta(minutes=5)
    assert cfg.query.max_points_per_series == 11_000
    assert cfg.forward.max_samples_per_send == 2000
    assert duration_ms(cfg.forward.min_backoff) == 30
    assert cfg.forward.max_backoff == timedelta(seconds=5)
    assert cfg.tracing.service_name == "grafana-agent-bridge"
    assert cfg.log.level == "info" and cfg.log.format == "text"


def test_to_yaml_round_trips_a_full_config() -> None:
    cfg = load_config(EXAMPLE)
    assert cfg != BridgeConfig()
    again = parse_config(cfg.to_yaml())
    assert again == cfg
    assert "retention_time: 30d" in cfg.to_yaml()


def test_example_file_sets_every_section() -> None:
    cfg = load_config(EXAMPLE)
    assert cfg.forward.targets and cfg.collect.scrape and cfg.ingest.allowed_clients
    assert cfg.tracing.otlp_endpoint


# --- value syntax ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "ms"),
    [
        ("0", 0),
        ("30ms", 30),
        ("15s", 15_000),
        ("1h30m", 5_400_000),
        ("15d", 15 * 86_400_000),
        ("2w", 14 * 86_400_000),
        ("1y", 365 * 86_400_000),
        ("1d2h3m4s5ms", 93_784_005),
    ],
)
def test_durations_use_prometheus_syntax(text: str, ms: int) -> None:
    assert duration_ms(parse_duration(text)) == ms
    assert duration_ms(parse_duration(format_duration(parse_duration(text)))) == ms


@pytest.mark.parametrize("text", ["", "15x", "1.5h", "-1s", "30m1h", "s", "1 h", "15"])
def test_bad_durations_are_rejected(text: str) -> None:
    with pytest.raises(ValueError, match="invalid duration"):
        parse_duration(text)


@pytest.mark.parametrize(
    ("text", "size"),
    [
        ("0", 0),
        ("0B", 0),
        ("1024", 1024),
        ("512KB", 512 << 10),
        ("512KiB", 512 << 10),
        ("32MiB", 32 << 20),
        ("10GB", 10 << 30),
        ("1.5GiB", 3 << 29),
        ("2TB", 2 << 40),
        ("7mb", 7 << 20),
    ],
)
def test_sizes_accept_units(text: str, size: int) -> None:
    assert parse_size(text) == size
    assert parse_size(format_size(size)) == size


@pytest.mark.parametrize("text", ["", "MB", "10XB", "-1GB", "1,5GB", "ten"])
def test_bad_sizes_are_rejected(text: str) -> None:
    with pytest.raises(ValueError, match="invalid size"):
        parse_size(text)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("0.0.0.0:9099", ("0.0.0.0", 9099)),
        ("127.0.0.1:1", ("127.0.0.1", 1)),
        (":9099", ("", 9099)),
        ("[::]:9099", ("::", 9099)),
        ("[::1]:80", ("::1", 80)),
        ("localhost:65535", ("localhost", 65535)),
    ],
)
def test_host_port(text: str, expected: tuple[str, int]) -> None:
    assert parse_host_port(text) == expected


@pytest.mark.parametrize(
    "text",
    ["9099", "host:", "host:0", "host:65536", "host:http", "::1:80", "[nothost]:80", "a b:1"],
)
def test_bad_host_port(text: str) -> None:
    with pytest.raises(ValueError, match="invalid address"):
        parse_host_port(text)


# --- each section: valid values -------------------------------------------------------------


def test_valid_values_of_every_section() -> None:
    cfg = parse_config(
        """
listen_address: "[::]:9200"
data_dir: /var/lib/bridge
log: {level: debug, format: json}
storage: {retention_time: 30d, retention_size: 10GB, block_duration: 1h, wal_segment_size: 1MiB}
ingest: {allowed_clients: [10.1.2.3, 192.168.0.0/16, "fd00::/8"], max_body_bytes: 1048576}
query:
  auth_token_file: /etc/token
  timeout: 30s
  max_samples: 1000
  lookback_delta: 1m
  max_points_per_series: 500
collect:
  interval: 1m
  host: false
  self: false
  scrape:
    - {job_name: app, url: "http://127.0.0.1:8080/metrics", interval: 30s, timeout: 5s}
    - {job_name: other, url: "https://example.com/metrics"}
forward:
  targets:
    - url: http://mimir:9009/api/v1/push
      headers: {X-Scope-OrgID: tenant}
      bearer_token: secret
      timeout: 10s
      tls_insecure_skip_verify: true
    - {name: second, url: "http://prom:9090/api/v1/write"}
  max_samples_per_send: 500
  min_backoff: 100ms
  max_backoff: 1m
tracing: {otlp_endpoint: "http://tempo:4318", service_name: my-bridge, sample_ratio: 0.25}
tls: {cert_file: /c.pem, key_file: /k.pem}
"""
    )
    assert cfg.listen == ("::", 9200)
    assert cfg.log.format == "json"
    assert cfg.storage.retention_size == 10 << 30
    assert [str(n) for n in cfg.ingest.allowed_networks()] == [
        "10.1.2.3/32",
        "192.168.0.0/16",
        "fd00::/8",
    ]
    assert cfg.query.timeout == timedelta(seconds=30)
    app, other = cfg.collect.scrape
    assert cfg.collect.scrape_interval(app) == timedelta(seconds=30)
    assert cfg.collect.scrape_timeout(app) == timedelta(seconds=5)
    assert cfg.collect.scrape_interval(other) == timedelta(minutes=1)
    assert cfg.collect.scrape_timeout(other) == timedelta(seconds=10)
    first, second = cfg.forward.targets
    assert first.name == "mimir_9009_api_v1_push"  # derived from the URL, stable across order
    assert second.name == "second"
    assert first.header_values() == {"X-Scope-OrgID": "tenant"}
    assert cfg.tracing.traces_url() == "http://tempo:4318/v1/traces"
    assert cfg.tls.enabled


def test_tracing_url_with_a_path_is_used_as_is() -> None:
    cfg = parse_config("tracing: {otlp_endpoint: 'https://t.example/otlp/v1/traces'}")
    assert cfg.tracing.traces_url() == "https://t.example/otlp/v1/traces"


def test_auth_token_file_is_read_and_stripped(tmp_path: Path) -> None:
    token = tmp_path / "token"
    token.write_text("  s3cret\n")
    cfg = parse_config(f"query: {{auth_token_file: {token}}}")
    assert cfg.query.resolve_auth_token() == "s3cret"
    token.unlink()
    with pytest.raises(ConfigError, match=r"^query\.auth_token_file: cannot read"):
        cfg.query.resolve_auth_token()


# --- each section: invalid values name the key ----------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("bogus: 1", "bogus: unknown key"),
        ("listen_address: 9099", "listen_address: expected a string, got 9099"),
        ("listen_address: 'x:99999'", 'listen_address: invalid address "x:99999"'),
        ("data_dir: ''", "data_dir: must not be empty"),
        ("log: {level: loud}", "log.level: must be one of"),
        ("log: {format: xml}", "log.format: must be one of"),
        ("log: {colour: true}", "log.colour: unknown key"),
        ("log: verbose", 'log: expected a mapping, got "verbose"'),
        ("storage: {retention_time: 15x}", 'storage.retention_time: invalid duration "15x"'),
        ("storage: {retention_time: 15}", "storage.retention_time: a duration needs a unit"),
        ("storage: {retention_size: 10XB}", 'storage.retention_size: invalid size "10XB"'),
        ("storage: {retention_size: -5}", "storage.retention_size: a size must be between 0"),
        ("storage: {block_duration: 10s}", "storage.block_duration: must be at least 1m"),
        ("storage: {wal_segment_size: 1KB}", "storage.wal_segment_size: must be at least 64KiB"),
        ("ingest: {allowed_clients: [10.0.0.1, foo]}", 'ingest.allowed_clients[1]: "foo" is'),
        ("ingest: {allowed_clients: 10.0.0.1}", "ingest.allowed_clients: expected a list"),
        ("ingest: {max_body_bytes: lots}", 'ingest.max_body_bytes: invalid size "lots"'),
        ("query: {auth_token: a, auth_token_file: b}", "query.auth_token and query.auth_token_f"),
        ("query: {timeout: 0s}", "query.timeout: must be greater than 0"),
        ("query: {max_samples: abc}", 'query.max_samples: expected an integer, got "abc"'),
        ("query: {max_samples: 0}", "query.max_samples: input should be greater than 0"),
        ("query: {max_points_per_series: 1.5}", "query.max_points_per_series: expected an int"),
        ("query: {lookback_delta: 0}", "query.lookback_delta: must be greater than 0"),
        ("collect: {interval: 0s}", "collect.interval: must be greater than 0"),
        ("collect: {host: maybe}", 'collect.host: expected true or false, got "maybe"'),
        ("collect: {scrape: [{url: 'http://x/m'}]}", "collect.scrape[0].job_name: required key"),
        (
            "collect: {scrape: [{job_name: a, url: 'ftp://x/m'}]}",
            'collect.scrape[0].url: invalid URL "ftp://x/m"',
        ),
        (
            "collect: {scrape: [{job_name: a, url: 'http://x/m'}, {job_name: a, url: 'http://y'}]}",
            'collect.scrape[1].job_name: duplicate job name "a"',
        ),
        (
            "collect: {scrape: [{job_name: a, url: 'http://x', interval: 5s, timeout: 6s}]}",
            "collect.scrape[0].timeout: must not exceed interval",
        ),
        ("forward: {targets: [{name: x}]}", "forward.targets[0].url: required key is missing"),
        ("forward: {targets: [{url: 'mimir:9009'}]}", "forward.targets[0].url: invalid URL"),
        (
            "forward: {targets: [{url: 'http://m/a'}, {url: 'http://m/a'}]}",
            'forward.targets[1].name: duplicate target name "m_a"',
        ),
        ("forward: {targets: [{url: 'http://m', name: 'a b'}]}", 'forward.targets[0].name: "a b'),
        (
            "forward: {targets: [{url: 'http://m', bearer_token: t, headers: {authorization: x}}]}",  # noqa: E501
            "forward.targets[0].bearer_token: conflicts",
        ),
        ("forward: {targets: [{url: 'http://m', timeout: 1}]}", "forward.targets[0].timeout: a"),
        ("forward: {min_backoff: 1s, max_backoff: 10ms}", "forward.max_backoff: must not be less"),
        ("forward: {max_samples_per_send: 0}", "forward.max_samples_per_send: input should be"),
        ("tracing: {otlp_endpoint: 'tempo:4318'}", "tracing.otlp_endpoint: invalid URL"),
        ("tracing: {sample_ratio: 2}", "tracing.sample_ratio: input should be less than or eq"),
        ("tracing: {service_name: ''}", "tracing.service_name: "),
        ("tls: {cert_file: /c.pem}", "tls.cert_file and tls.key_file: set both or neither"),
        ("storage: {retention_time: 99999999999999y}", 'storage.retention_time: duration "9'),
        ("storage: {retention_size: 1" + "0" * 400 + "PB}", 'storage.retention_size: size "1'),
        ("storage: {retention_size: 1" + "0" * 30 + "}", "storage.retention_size: a size must"),
        ("query: {max_samples: true}", "query.max_samples: expected a number, got true"),
        ("tracing: {sample_ratio: false}", "tracing.sample_ratio: expected a number, got false"),
        ("collect: {scrape: [null]}", "collect.scrape[0]: expected a mapping, got null"),
        ("ingest: {allowed_clients: [1]}", "ingest.allowed_clients[0]: expected a string, got 1"),
        ('log: {"a\\nb": 1}', 'log["a\\nb"]: unknown key'),
        ('storage: {retention_time: "1\\n2"}', 'storage.retention_time: invalid duration "1\\n2"'),
    ],
)
def test_invalid_values_name_the_key(text: str, expected: str) -> None:
    message = error_of(text)
    assert message.startswith(expected), message


def test_every_problem_is_reported_one_per_line() -> None:
    message = error_of("storage: {retention_time: 1x}\nquery: {max_samples: -1}\nnope: 1\n")
    lines = message.splitlines()
    assert len(lines) == 3
    assert {line.split(":")[0] for line in lines} == {
        "storage.retention_time",
        "query.max_samples",
        "nope",
    }


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("a: 1\na: 2\n", 'invalid YAML: duplicate key "a" (line 2'),
        ("storage: [1, 2", "invalid YAML: "),
        ("- 1\n- 2\n", "the top level must be a mapping, got a list"),
        ("? [1, 2]\n: x\n", "invalid YAML: found an unhashable key (line 1"),
        ("just text", "the top level must be a mapping, got a string"),
    ],
)
def test_malformed_yaml(text: str, expected: str) -> None:
    assert error_of(text).startswith(expected)


def test_load_config_reports_file_problems(tmp_path: Path) -> None:
    missing = tmp_path / "missing.yaml"
    with pytest.raises(ConfigError, match=r"cannot read config file .*missing\.yaml"):
        load_config(missing)
    broken = tmp_path / "broken.yaml"
    broken.write_text("a: [\n")
    with pytest.raises(ConfigError, match=r"broken\.yaml: invalid YAML"):
        load_config(broken)
    bad = tmp_path / "bad.yaml"
    bad.write_text("collect: {interval: soon}\n")
    with pytest.raises(ConfigError, match=r'^collect\.interval: invalid duration "soon"'):
        load_config(str(bad))


def test_config_error_lists_paths_for_programs() -> None:
    with pytest.raises(ConfigError) as info:
        parse_config("query: {timeout: x}\nlog: {level: x}")
    assert sorted(path for path, _ in info.value.errors) == ["log.level", "query.timeout"]


# --- overrides (CLI flags, snap settings) ---------------------------------------------------


def test_overrides_are_validated() -> None:
    cfg = BridgeConfig().with_overrides(
        {"listen_address": "127.0.0.1:9300", "collect.host": False}
    )
    assert cfg.listen == ("127.0.0.1", 9300)
    assert not cfg.collect.host
    assert cfg.collect.self
    with pytest.raises(ConfigError, match=r"^listen_address: invalid address"):
        BridgeConfig().with_overrides({"listen_address": "nowhere"})
    with pytest.raises(ConfigError, match=r"^collect\.nothing: unknown key"):
        BridgeConfig().with_overrides({"collect.nothing": 1})
    with pytest.raises(ConfigError, match=r"^nothing\.x: unknown key"):
        BridgeConfig().with_overrides({"nothing.x": 1})


def test_models_are_immutable() -> None:
    cfg = BridgeConfig()
    with pytest.raises(ValueError, match="frozen"):
        cfg.listen_address = "x:1"  # type: ignore[misc]


# --- documentation --------------------------------------------------------------------------


def _all_fields(model: type[BaseModel]) -> list[tuple[str, FieldInfo]]:
    out = []
    for name, field in model.model_fields.items():
        out.append((f"{model.__name__}.{name}", field))
        for arg in (field.annotation, *typing.get_args(field.annotation)):
            if isinstance(arg, type) and issubclass(arg, BaseModel):
                out.extend(_all_fields(arg))
    return out


def test_every_key_is_documented() -> None:
    undocumented = [name for name, field in _all_fields(BridgeConfig) if not field.description]
    assert undocumented == []


def test_configuration_doc_is_current() -> None:
    doc = (Path(__file__).resolve().parents[2] / "docs" / "configuration.md").read_text()
    assert render(doc) == doc, (
        "docs/configuration.md is stale: run "
        "python -m grafana_agent_bridge.config.docs docs/configuration.md"
    )
    for name, _ in _all_fields(BridgeConfig):
        assert f"{name.split('.')[-1]}`" in doc


def test_doc_generator_rewrites_stale_blocks(tmp_path: Path) -> None:
    stale = tmp_path / "configuration.md"
    stale.write_text(
        "intro\n"
        + "\n".join(
            f"{BEGIN.format(name=n)}\nold rows\n{END.format(name=n)}"
            for n in ("CONFIG-REFERENCE", "SNAP-KEYS")
        )
        + "\noutro\n"
    )
    assert config_docs_main(["--check", str(stale)]) == 1
    assert config_docs_main([str(stale)]) == 0
    text = stale.read_text()
    assert "old rows" not in text and "`storage.retention_time` | duration | `15d`" in text
    assert "| `forward-urls` | `forward.targets` |" in text
    assert text.startswith("intro\n") and text.endswith("outro\n")
    assert config_docs_main(["--check", str(stale)]) == 0


# --- robustness -----------------------------------------------------------------------------

# Every key name of the schema, so random documents hit real sections as well as unknown keys.
_KEYS = sorted({name for m in _MODELS for name in m.model_fields} | {"bogus", "two\nlines"})

_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**30), max_value=10**30),
    st.floats(allow_nan=True),
    st.text(max_size=12),
    st.sampled_from(
        [
            "15s\n",
            "a\nb:1",
            "[::1]\n:80",
            "0",
            "1h30m",
            "32MiB",
            "http://x/y",
            "10.0.0.0/8",
            ":9099",
        ]
    ),
)
_values = st.recursive(
    _scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=3),
        st.dictionaries(st.sampled_from(_KEYS), children, max_size=4),
    ),
    max_leaves=12,
)


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(st.sampled_from(_KEYS), _values, max_size=5))
def test_any_structure_gives_a_config_or_a_config_error(data: dict[str, object]) -> None:
    """Arbitrary (mostly wrong) documents never crash the validator with anything else."""
    try:
        cfg = parse_config(yaml.safe_dump(data))
    except ConfigError as e:
        assert e.errors and all(msg for _, msg in e.errors)
        assert len(str(e).splitlines()) == len(e.errors)  # one line per problem
        assert "pydantic" not in str(e).lower()
    else:
        assert parse_config(cfg.to_yaml()) == cfg


# --- secrets ----------------------------------------------------------------------------------

_SECRET_CONFIG = """
query: {auth_token: qtok3n}
collect:
  scrape: [{job_name: app, url: "http://scr:scrpw@127.0.0.1:8080/metrics?t=scrtok"}]
forward:
  targets:
    - url: "https://fleet:fwdpw@mimir:9009/api/v1/push?apikey=fwdkey"
      bearer_token: b3arer
      headers: {X-Scope-OrgID: tenant}
tracing: {otlp_endpoint: "http://otel:otelpw@tempo:4318?k=otelkey"}
"""
_SECRETS = ("qtok3n", "scrpw", "scrtok", "fleet", "fwdpw", "fwdkey", "b3arer", "tenant")
_SECRETS += ("otelpw", "otelkey")


def test_secrets_are_masked_when_shown_and_kept_for_the_daemon() -> None:
    cfg = parse_config(_SECRET_CONFIG)
    shown = cfg.redacted_yaml() + repr(cfg) + str(cfg)
    assert [s for s in _SECRETS if s in shown] == []
    data = yaml.safe_load(cfg.redacted_yaml())
    target = data["forward"]["targets"][0]
    assert target["url"] == "https://***@mimir:9009/api/v1/push?apikey=***"
    assert target["bearer_token"] == "***" and target["headers"] == {"X-Scope-OrgID": "***"}
    assert data["query"]["auth_token"] == "***"
    assert BridgeConfig().redacted_yaml().count("***") == 0  # empty secrets stay empty
    assert parse_config(cfg.to_yaml()) == cfg  # the daemon's own file keeps every secret
    assert all(s in cfg.to_yaml() for s in _SECRETS)
    assert cfg.with_overrides({"log.level": "debug"}).query.resolve_auth_token() == "qtok3n"


def test_the_derived_target_name_never_contains_credentials() -> None:
    (target,) = parse_config(_SECRET_CONFIG).forward.targets
    assert target.name == "mimir_9009_api_v1_push"  # as for the same URL without them
    twins = "forward: {targets: [{url: 'http://a:1@m/p'}, {url: 'http://b:2@m/p'}]}"
    with pytest.raises(ConfigError, match="need explicit names"):
        parse_config(twins)


@pytest.mark.parametrize(
    "text",
    [
        'forward: {targets: [{url: "http://m/p?x=1\\r\\nFORGED line"}]}',
        'forward: {targets: [{url: "http://m/p\\tq"}]}',
        'forward: {targets: [{url: "http://m/p\\u2028q"}]}',
        'collect: {scrape: [{job_name: a, url: "http://m/metrics\\n"}]}',
        'tracing: {otlp_endpoint: "http://tempo:4318\\r"}',
    ],
)
def test_control_characters_in_urls_are_rejected(text: str) -> None:
    with pytest.raises(ConfigError) as e:
        parse_config(text)
    assert "control character" in str(e.value)
    assert len(str(e.value).splitlines()) == 1  # the message itself cannot forge a line


def test_header_names_and_secret_values_must_be_one_line() -> None:
    bad = [
        ('forward: {targets: [{url: "http://m/p", headers: {"A B": c}}]}', "header name"),
        ('forward: {targets: [{url: "http://m/p", headers: {A: "c\\r\\nX: y"}}]}', "control"),
        ('forward: {targets: [{url: "http://m/p", bearer_token: "t\\n"}]}', "control"),
        ('query: {auth_token: "  "}', "only whitespace"),
    ]
    for text, expected in bad:
        with pytest.raises(ConfigError, match=expected):
            parse_config(text)


@pytest.mark.parametrize(
    "text",
    [
        "query: {auth_token: [s3cretvalue]}",
        "query: {auth_token: 123456789}",
        "query: s3cretvalue",
        "forward: {targets: [{url: 'http://m/p', bearer_token: 123456789}]}",
        "forward: {targets: [{url: 'http://m/p', headers: 'Authorization: s3cretvalue'}]}",
        "forward: {targets: [{url: 'http://m/p', headers: {A: 123456789}}]}",
        "forward: {targets: 's3cretvalue'}",
        "forward: {targets: [{url: 'http://u:s3cretvalue@m:port/p'}]}",
        "forward: {targets: [{url: 'ftp://m/p?k=s3cretvalue'}]}",
        "tracing: {otlp_endpoint: 'http://u:s3cretvalue@t:x'}",
    ],
)
def test_config_errors_never_echo_a_secret(text: str) -> None:
    with pytest.raises(ConfigError) as e:
        parse_config(text)
    message = str(e.value)
    assert "s3cretvalue" not in message and "123456789" not in message, message


def test_non_secret_values_are_still_quoted_in_errors() -> None:
    with pytest.raises(ConfigError, match='got "loud"'):
        parse_config("log: {level: loud}")


@pytest.mark.parametrize("content", ["", "   \n\t\n"])
def test_an_empty_token_file_is_an_error_not_no_authentication(
    tmp_path: Path, content: str
) -> None:
    token = tmp_path / "token"
    token.write_text(content)
    cfg = parse_config(f"query: {{auth_token_file: {token}}}")
    with pytest.raises(ConfigError, match=r"^query\.auth_token_file: .* is empty"):
        cfg.query.resolve_auth_token()
