"""The snap's configure hook, run as snapd would run it, with a fake ``snapctl`` on PATH.

snapd cannot run here, so ``snapctl`` is the one thing faked: a script that answers
``get -d KEYS`` from a JSON file of settings, ``services`` from a state file, and logs every
call. The hook script itself, the bridge's validator and the files on disk are all real.
"""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from grafana_agent_bridge.config import BridgeConfig, load_config
from grafana_agent_bridge.snapconfig import (
    SNAP_KEYS,
    SnapSettingError,
    build_config,
    write_if_changed,
)
from tests.fake_snap import FakeSnap, make_fake_snap


@pytest.fixture
def snap(tmp_path: Path) -> FakeSnap:
    return make_fake_snap(tmp_path)


def test_no_settings_writes_the_defaults_with_data_under_snap_common(snap: FakeSnap) -> None:
    result = snap.run_hook()
    assert result.returncode == 0, result.stderr
    cfg = load_config(snap.config_file)
    # The defaults, with data under $SNAP_COMMON, host filesystems seen through hostfs, and
    # loopback only (no token yet: fail closed).
    assert cfg == BridgeConfig().with_overrides(
        {
            "data_dir": str(snap.common / "data"),
            "collect.rootfs": "/var/lib/snapd/hostfs",
            "listen_address": "127.0.0.1:9099",
        }
    )
    assert stat.S_IMODE(snap.config_file.stat().st_mode) == 0o600  # may hold the query token


def test_a_fresh_install_serves_no_unauthenticated_api_beyond_loopback(snap: FakeSnap) -> None:
    # snapd runs the configure hook at install, before anyone `snap set`s a token.
    assert snap.run_hook().returncode == 0
    cfg = load_config(snap.config_file)
    assert cfg.listen == ("127.0.0.1", 9099)
    assert cfg.query.resolve_auth_token() == ""
    # Opening it is an explicit setting (the charm sets it together with the token).
    snap.set(listen_address="0.0.0.0:9099", query_auth_token="s3cret")
    assert snap.run_hook().returncode == 0
    cfg = load_config(snap.config_file)
    assert cfg.listen == ("0.0.0.0", 9099)
    assert cfg.query.resolve_auth_token() == "s3cret"
    # Unsetting it closes it again.
    settings = json.loads((snap.state / "settings.json").read_text())
    del settings["listen-address"]
    (snap.state / "settings.json").write_text(json.dumps(settings))
    assert snap.run_hook().returncode == 0
    assert load_config(snap.config_file).listen == ("127.0.0.1", 9099)


def test_valid_values_are_applied(snap: FakeSnap) -> None:
    snap.set(
        listen_address="127.0.0.1:9300",
        retention_time="30d",
        retention_size="20GB",
        forward_urls="http://mimir-0:9009/api/v1/push, http://mimir-1:9009/api/v1/push",
        allowed_clients="10.0.0.5,10.1.0.0/16",
        query_auth_token="s3cret",
        collect_host=False,  # `snap set ... collect-host=false` stores a JSON boolean
        collect_interval="30s",
        scrape_targets="app=http://127.0.0.1:8080/metrics",
        tracing_endpoint="http://tempo:4318",
        tracing_sample_ratio=0.5,
        log_format="json",
    )
    result = snap.run_hook()
    assert result.returncode == 0, result.stderr
    cfg = load_config(snap.config_file)
    assert cfg.listen == ("127.0.0.1", 9300)
    assert cfg.storage.retention_time.days == 30
    assert cfg.storage.retention_size == 20 << 30
    assert [t.url for t in cfg.forward.targets] == [
        "http://mimir-0:9009/api/v1/push",
        "http://mimir-1:9009/api/v1/push",
    ]
    assert cfg.ingest.allowed_clients == ["10.0.0.5", "10.1.0.0/16"]
    assert cfg.query.auth_token.get_secret_value() == "s3cret"
    assert not cfg.collect.host and cfg.collect.self
    assert cfg.collect.interval.total_seconds() == 30
    assert [(s.job_name, s.url) for s in cfg.collect.scrape] == [
        ("app", "http://127.0.0.1:8080/metrics")
    ]
    assert cfg.tracing.traces_url() == "http://tempo:4318/v1/traces"
    assert cfg.tracing.sample_ratio == 0.5
    assert cfg.log.format == "json"


@pytest.mark.parametrize(
    ("settings", "expected"),
    [
        ({"retention-time": "15x"}, 'retention-time: invalid duration "15x"'),
        ({"retention-time": 15}, "retention-time: a duration needs a unit"),
        ({"retention-size": "lots"}, 'retention-size: invalid size "lots"'),
        ({"listen-address": "9099"}, 'listen-address: invalid address "9099"'),
        ({"forward-urls": "http://ok/api/v1/push,mimir:9009"}, "forward-urls: invalid URL"),
        ({"allowed-clients": "10.0.0.1,db.internal"}, 'allowed-clients: "db.internal" is not'),
        ({"collect-host": "maybe"}, 'collect-host: expected true or false, got "maybe"'),
        ({"scrape-targets": "http://x/metrics"}, "scrape-targets: expected JOB=URL items"),
        ({"tracing-sample-ratio": 3}, "tracing-sample-ratio: input should be less than or"),
        ({"log-level": "loud"}, "log-level: must be one of"),
        ({"tls-cert-file": "/c.pem"}, "tls-cert-file and tls-key-file: set both or neither"),
        ({"query-max-samples": {"a": 1}}, "query-max-samples: expected a single value"),
    ],
)
def test_invalid_values_are_rejected_naming_the_key_and_nothing_changes(
    snap: FakeSnap, settings: dict[str, object], expected: str
) -> None:
    snap.config_file.write_text("# the previous, valid configuration\n")
    before = snap.config_file.read_bytes()
    mtime = snap.config_file.stat().st_mtime_ns
    snap.set(**{k.replace("-", "_"): v for k, v in settings.items()})
    result = snap.run_hook()
    assert result.returncode == 1
    assert result.stderr.startswith(expected), result.stderr
    assert "Traceback" not in result.stderr
    assert snap.config_file.read_bytes() == before
    assert snap.config_file.stat().st_mtime_ns == mtime
    assert sorted(p.name for p in snap.common.iterdir()) == ["config.yaml"]  # no temp files
    assert snap.restarts() == []


def test_every_invalid_key_is_reported(snap: FakeSnap) -> None:
    snap.set(retention_time="1x", forward_urls="nope", query_timeout="soon")
    result = snap.run_hook()
    assert result.returncode == 1
    named = {line.split(":")[0] for line in result.stderr.splitlines()}
    assert named == {"retention-time", "forward-urls", "query-timeout"}
    assert not snap.config_file.exists()


def test_restart_only_when_the_config_changed_and_the_daemon_runs(snap: FakeSnap) -> None:
    service = ["restart", "grafana-agent-bridge.daemon"]
    assert snap.run_hook().returncode == 0
    assert snap.restarts() == [service]

    assert snap.run_hook().returncode == 0  # same settings again: nothing to do
    assert snap.restarts() == []

    snap.set(retention_time="7d")
    assert snap.run_hook().returncode == 0
    assert snap.restarts() == [service]

    snap.service("inactive")  # stopped (or not yet started at install): leave it so
    snap.set(retention_time="8d")
    assert snap.run_hook().returncode == 0
    assert snap.restarts() == []
    assert load_config(snap.config_file).storage.retention_time.days == 8


def test_parallel_instance_restarts_its_own_service(snap: FakeSnap) -> None:
    snap.env["SNAP_INSTANCE_NAME"] = "grafana-agent-bridge_two"
    assert snap.run_hook().returncode == 0
    assert snap.restarts() == [["restart", "grafana-agent-bridge_two.daemon"]]


def test_unset_key_returns_to_the_default(snap: FakeSnap) -> None:
    snap.set(collect_host=False)
    assert snap.run_hook().returncode == 0
    assert not load_config(snap.config_file).collect.host
    (snap.state / "settings.json").write_text("{}")  # `snap unset grafana-agent-bridge ...`
    assert snap.run_hook().returncode == 0
    assert load_config(snap.config_file).collect.host


def test_snapctl_failure_is_reported_and_writes_nothing(snap: FakeSnap) -> None:
    (snap.state / "fail").write_text("")
    result = snap.run_hook()
    assert result.returncode == 1
    assert result.stderr.startswith("cannot read the snap settings: error: snapd is not resp")
    assert not snap.config_file.exists()


# --- the Python side, as the charm's tests and other callers use it -------------------------


def test_every_snap_key_maps_to_a_real_config_key() -> None:
    examples = {key.name: key.example for key in SNAP_KEYS if key.example}
    cfg = build_config(examples, data_dir="/d")
    for key in SNAP_KEYS:
        node: object = cfg
        for part in key.path.split("."):
            assert part in type(node).model_fields, f"{key.name} -> {key.path}"  # type: ignore[attr-defined]
            node = getattr(node, part)
    assert cfg != BridgeConfig(data_dir="/d")


def test_typed_values_from_the_snapd_api_are_accepted() -> None:
    cfg = build_config(
        {
            "forward-urls": ["http://a/api/v1/push", "http://b/api/v1/push"],
            "allowed-clients": ["10.0.0.1"],
            "collect-self": "false",
            "query-max-samples": 1000,
            "retention-size": 0,
        },
        data_dir="/d",
    )
    assert len(cfg.forward.targets) == 2
    assert cfg.ingest.allowed_clients == ["10.0.0.1"]
    assert not cfg.collect.self
    assert cfg.query.max_samples == 1000


def test_empty_list_setting_means_none() -> None:
    cfg = build_config({"forward-urls": "", "allowed-clients": " , "}, data_dir="/d")
    assert cfg.forward.targets == [] and cfg.ingest.allowed_clients == []


def test_build_config_errors_name_snap_keys() -> None:
    with pytest.raises(SnapSettingError, match=r"^forward-urls: invalid URL") as info:
        build_config({"forward-urls": "ftp://x"}, data_dir="/d")
    assert "forward.targets" not in str(info.value)


def test_interrupted_write_leaves_the_old_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "config.yaml"
    target.write_text("old: true\n")

    def crash(src: str, dst: str) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(OSError, match="No space left"):
        write_if_changed(target, "new: true\n")
    assert target.read_text() == "old: true\n"
    assert [p.name for p in tmp_path.iterdir()] == ["config.yaml"]


def test_write_if_changed_reports_change(tmp_path: Path) -> None:
    target = tmp_path / "sub" / "config.yaml"
    assert write_if_changed(target, "a: 1\n") is True
    assert write_if_changed(target, "a: 1\n") is False
    assert write_if_changed(target, "a: 2\n") is True
    assert target.read_text() == "a: 2\n"


_json = st.recursive(
    st.one_of(
        st.none(),
        st.booleans(),
        st.integers(),
        st.floats(allow_nan=False),
        st.text(max_size=20),
        st.sampled_from(["a=http://x/m", "http://x/y,ftp://z", "10.0.0.1,", "1h", "0B", "a\nb"]),
    ),
    lambda children: st.one_of(
        st.lists(children, max_size=3), st.dictionaries(st.text(max_size=5), children, max_size=3)
    ),
    max_leaves=6,
)


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(st.sampled_from([k.name for k in SNAP_KEYS]), _json, max_size=4))
def test_any_snap_values_give_a_config_or_a_keyed_error(settings_: dict[str, object]) -> None:
    try:
        build_config(settings_, data_dir="/d")
    except SnapSettingError as e:
        names = {k.name for k in SNAP_KEYS}
        assert len(str(e).splitlines()) <= len(settings_)  # one line per bad key
        for line in str(e).splitlines():
            assert line.split(":")[0].split(" and ")[0] in names, line


def test_the_daemon_cli_accepts_what_the_hook_writes(
    snap: FakeSnap, capsys: pytest.CaptureFixture[str]
) -> None:
    from grafana_agent_bridge import cli

    snap.set(forward_urls="http://mimir:9009/api/v1/push", query_auth_token="t", log_level="debug")
    assert snap.run_hook().returncode == 0
    assert cli.main(["check-config", str(snap.config_file)]) == 0
    assert capsys.readouterr().out.strip().endswith("OK")


def test_several_bad_values_of_one_list_key_make_one_line_naming_each() -> None:
    with pytest.raises(SnapSettingError) as e:
        build_config({"forward-urls": "mimir:9009,0,0"}, data_dir="/d")
    lines = str(e.value).splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("forward-urls: ")
    assert '"mimir:9009"' in lines[0]
    assert lines[0].count('"0"') == 1  # the same problem is said once
