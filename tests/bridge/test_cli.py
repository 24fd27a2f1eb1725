"""The ``grafana-agent-bridge`` command: check-config, serve's flag handling, query, dispatch."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import requests
from test_api_http import start_daemon

from grafana_agent_bridge import cli
from grafana_agent_bridge.remote_write import REMOTE_WRITE_HEADERS, encode_write_request
from grafana_agent_bridge.storage import SeriesBatch

BRIDGE = [sys.executable, "-m", "grafana_agent_bridge"]


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*BRIDGE, *args], check=False, capture_output=True, text=True, timeout=60
    )


def test_check_config_accepts_a_valid_file_and_names_the_bad_key(tmp_path: Path) -> None:
    good = tmp_path / "good.yaml"
    good.write_text("listen_address: 127.0.0.1:9100\ncollect:\n  interval: 30s\n")
    r = run("check-config", str(good))
    assert r.returncode == 0 and "OK" in r.stdout
    r = run("check-config", "--print", str(good))
    assert "127.0.0.1:9100" in r.stdout and "30s" in r.stdout
    bad = tmp_path / "bad.yaml"
    bad.write_text("collect:\n  interval: 15x\nstorage:\n  nope: 1\n")
    r = run("check-config", str(bad))
    assert r.returncode == 1
    assert "collect.interval" in r.stderr and "storage.nope: unknown key" in r.stderr
    r = run("check-config", str(tmp_path / "missing.yaml"))
    assert r.returncode == 1 and "cannot read" in r.stderr


def test_serve_flags_override_the_file(tmp_path: Path) -> None:
    f = tmp_path / "c.yaml"
    f.write_text(
        "listen_address: 0.0.0.0:1\ndata_dir: /x\nforward:\n  targets:\n"
        "    - url: http://old:9090/api/v1/write\n"
    )
    args = cli._parser().parse_args(
        [
            "serve",
            "--config",
            str(f),
            "--listen-address",
            "127.0.0.1:9999",
            "--data-dir",
            str(tmp_path),
            "--no-collect",
            "--forward-url",
            "http://a:9090/api/v1/write",
            "--forward-url",
            "https://b/api/v1/push",
            "--collect-interval",
            "3s",
        ]
    )
    config = cli.serve_config(args)
    assert config.listen == ("127.0.0.1", 9999)
    assert config.data_dir == str(tmp_path)
    assert not config.collect.host and not config.collect.self and not config.collect.scrape
    assert config.collect.interval.total_seconds() == 3
    assert [t.url for t in config.forward.targets] == [
        "http://a:9090/api/v1/write",
        "https://b/api/v1/push",
    ]


def test_serve_refuses_bad_flags_naming_the_key(tmp_path: Path) -> None:
    r = run("serve", "--data-dir", str(tmp_path), "--listen-address", "nowhere")
    assert r.returncode == 2 and "listen_address" in r.stderr
    r = run("serve", "--data-dir", str(tmp_path), "--forward-url", "ftp://x")
    assert r.returncode == 2 and "forward.targets[0].url" in r.stderr


def test_serve_exits_non_zero_when_the_port_is_taken(tmp_path: Path) -> None:
    daemon = start_daemon(tmp_path / "a")
    try:
        addr = daemon.listen_url().removeprefix("http://")
        r = run(
            "serve", "--data-dir", str(tmp_path / "b"), "--listen-address", addr, "--no-collect"
        )
        assert r.returncode == 1 and "Address already in use" in r.stderr
    finally:
        daemon.stop()


@pytest.fixture
def bridge(tmp_path: Path) -> Iterator[str]:
    daemon = start_daemon(tmp_path)
    url = daemon.listen_url()
    batch = SeriesBatch(
        (("__name__", "temp"), ("room", "hall")),
        np.array([1_700_000_000_000], np.int64),
        np.array([21.5]),
    )
    r = requests.post(
        f"{url}/api/v1/write", data=encode_write_request([batch]), headers=REMOTE_WRITE_HEADERS
    )
    assert r.status_code == 204
    try:
        yield url
    finally:
        daemon.stop()


def test_query_prints_a_table_or_json(bridge: str, capsys: pytest.CaptureFixture[str]) -> None:
    t = "1700000010"
    assert cli.main(["query", "temp", "--url", bridge, "--time", t]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].split() == ["SERIES", "VALUE", "TIME"]
    assert out[1].split() == ['temp{room="hall"}', "21.5", "2023-11-14T22:13:30.000Z"]
    assert cli.main(["query", "temp * 2", "--url", bridge, "--time", t, "-o", "json"]) == 0
    answer = json.loads(capsys.readouterr().out)
    assert answer["data"]["result"][0]["value"] == [1700000010, "43"]
    rng = ["query", "temp", "--url", bridge, "--start", "1700000000", "--end", t, "--step", "5"]
    assert cli.main(rng) == 0
    rows = capsys.readouterr().out.splitlines()[1:]
    assert [r.split()[1:] for r in rows] == [
        ["21.5", "2023-11-14T22:13:20.000Z"],
        ["21.5", "2023-11-14T22:13:25.000Z"],
        ["21.5", "2023-11-14T22:13:30.000Z"],
    ]
    assert cli.main(["query", "sum(", "--url", bridge]) == 1
    assert "bad_data" in capsys.readouterr().err
    assert cli.main(["query", "1", "--url", "http://127.0.0.1:9"]) == 1
    assert "cannot reach" in capsys.readouterr().err


def test_promql_test_and_plugin_are_dispatched(tmp_path: Path) -> None:
    case = tmp_path / "t.test"
    case.write_text("load 1m\n  x 1 2 3\n\neval instant at 2m x\n  x 3\n")
    r = run("promql-test", str(case))
    assert r.returncode == 0, r.stdout + r.stderr
    wrong = tmp_path / "wrong.test"
    wrong.write_text("load 1m\n  x 1 2 3\n\neval instant at 2m x\n  x 4\n")
    assert run("promql-test", str(wrong)).returncode != 0
    r = run("plugin", "--help")
    assert r.returncode == 0 and "usage" in r.stdout.lower()


def test_no_command_prints_help() -> None:
    r = run()
    assert r.returncode == 2 and "serve" in r.stderr


def test_query_reads_the_token_from_a_file_or_the_environment(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """``--token`` puts the token in every user's ``ps``: a file or the environment do not."""
    daemon = start_daemon(tmp_path, **{"query.auth_token": "t0ken"})
    url = daemon.listen_url()
    monkeypatch.delenv(cli.TOKEN_ENV, raising=False)
    try:
        assert cli.main(["query", "1", "--url", url]) == 1  # 401 without a token
        capsys.readouterr()
        token_file = tmp_path / "token"
        token_file.write_text("t0ken\n")
        assert cli.main(["query", "1", "--url", url, "--token-file", str(token_file)]) == 0
        assert "warning" not in capsys.readouterr().err
        monkeypatch.setenv(cli.TOKEN_ENV, "t0ken")
        assert cli.main(["query", "1", "--url", url]) == 0
        assert "warning" not in capsys.readouterr().err
        monkeypatch.delenv(cli.TOKEN_ENV)
        assert cli.main(["query", "1", "--url", url, "--token", "t0ken"]) == 0
        assert "--token-file" in capsys.readouterr().err  # still works, with a warning
        token_file.write_text(" \n")
        assert cli.main(["query", "1", "--url", url, "--token-file", str(token_file)]) == 2
        assert "is empty" in capsys.readouterr().err
        both = ["--token-file", str(token_file), "--token", "t0ken"]
        assert cli.main(["query", "1", "--url", url, *both]) == 2
        assert "not both" in capsys.readouterr().err
    finally:
        daemon.stop()


def test_check_config_print_masks_secrets(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text(
        "query: {auth_token: qtok3n}\n"
        "forward: {targets: [{url: 'http://u:fwdpw@m:9009/p?apikey=fwdkey'}]}\n"
    )
    r = run("check-config", "--print", str(path))
    assert r.returncode == 0, r.stderr
    assert "http://***@m:9009/p?apikey=***" in r.stdout
    assert not [s for s in ("qtok3n", "fwdpw", "fwdkey") if s in r.stdout], r.stdout


def test_a_forward_url_flag_with_credentials_warns(capsys: pytest.CaptureFixture[str]) -> None:
    args = cli._parser().parse_args(["serve", "--forward-url", "http://u:pw@m:9009/push"])
    (target,) = cli.serve_config(args).forward.targets
    assert target.name == "m_9009_push"
    assert "--config" in capsys.readouterr().err
    cli.serve_config(cli._parser().parse_args(["serve", "--forward-url", "http://m:9009/push"]))
    assert capsys.readouterr().err == ""
