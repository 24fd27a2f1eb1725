"""Attacks on the daemon's secrets: credentials it must never show, and ways to start it unsafe.

Every test runs the real daemon as a child process on loopback. A forward URL points at a
closed loopback port, so sends fail (and get logged) without anything leaving the machine.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import yaml
from attack_support import Target
from forward_support import http_get, wait_until

from tests.support import free_port

PASSWORD = "secretpass"
API_KEY = "SECRETapikey"
BEARER = "SECRETbearer"
HEADER = "SECRETheader"
SCRAPE_PASSWORD = "SECRETscrape"
SECRETS = (PASSWORD, API_KEY, BEARER, HEADER, SCRAPE_PASSWORD)
MAX_RSS_MIB = 200.0
EXIT_WITHIN_S = 20.0


def _serve(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """``serve`` that must refuse to start: its exit status and output, or a failure if it
    is still running after ``EXIT_WITHIN_S`` (it started, which is the bug)."""
    cmd = [sys.executable, "-m", "grafana_agent_bridge", "serve", "--config", str(config), *args]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        out, _ = proc.communicate(timeout=EXIT_WITHIN_S)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, _ = proc.communicate()
        raise AssertionError(
            f"the daemon started instead of refusing to:\n{out[-2000:]}"
        ) from None
    return subprocess.CompletedProcess(cmd, proc.returncode, out, "")


def _closed_port_url(userinfo: str = "", query: str = "") -> str:
    """A remote-write URL on loopback where nothing listens (the send fails at once)."""
    return f"http://{userinfo}127.0.0.1:{free_port()}/api/v1/push{query}"


def _config(data_dir: Path, port: int, extra: str) -> str:
    return (
        f"listen_address: 127.0.0.1:{port}\n"
        f"data_dir: {data_dir}\n"
        "collect:\n  host: false\n  self: false\n" + extra
    )


def _assert_no_secret(where: str, text: str) -> None:
    for secret in SECRETS:
        assert secret not in text, f"{secret!r} leaked in {where}: ...{_around(text, secret)}..."


def _around(text: str, needle: str) -> str:
    i = text.find(needle)
    return text[max(0, i - 120) : i + 60]


def test_forward_and_scrape_credentials_appear_nowhere(tmp_path: Path) -> None:
    """Credentials in URLs, bearer tokens and headers stay out of everything the daemon shows,
    logs and names, while the configuration it reports stays usable."""
    target = Target(tmp_path / "bridge")
    url = _closed_port_url(f"user:{PASSWORD}@", f"?apikey={API_KEY}&tenant=a")
    scrape = _closed_port_url(f"scraper:{SCRAPE_PASSWORD}@", f"?token={SCRAPE_PASSWORD}")
    bridge = target.bridge
    bridge.config.write_text(
        _config(
            bridge.data_dir,
            bridge.port,
            "  interval: 1s\n"
            f"  scrape:\n    - {{job_name: app, url: '{scrape}'}}\n"
            "forward:\n  min_backoff: 50ms\n  max_backoff: 200ms\n  targets:\n"
            f"    - url: '{url}'\n      bearer_token: {BEARER}\n"
            f"      headers: {{X-Api-Key: {HEADER}}}\n",
        )
    )
    target.start()
    try:
        # The probe samples make the forwarder try (and fail) to send; the scrape fails too.
        wait_until(lambda: "send failed" in bridge.log_text(), 15, "a failed send logged")
        wait_until(lambda: "scrape" in bridge.log_text(), 15, "a failed scrape logged")
        shown = {}
        for path in ("/", "/metrics", "/api/v1/status/config", "/api/v1/status/flags"):
            status, body = http_get(bridge.url, path)
            assert status == 200, (path, status, body[:300])
            shown[path] = body.decode()
            _assert_no_secret(path, shown[path])
        # status/config is still the configuration, with the secrets masked, not dropped.
        reported = yaml.safe_load(json.loads(shown["/api/v1/status/config"])["data"]["yaml"])
        (fwd,) = reported["forward"]["targets"]
        assert fwd["url"].startswith("http://***@127.0.0.1:"), fwd["url"]
        assert "apikey=***" in fwd["url"] and "tenant=***" in fwd["url"], fwd["url"]
        assert fwd["bearer_token"] and fwd["headers"] == {"X-Api-Key": fwd["bearer_token"]}
        assert 'target="127.0.0.1_' in shown["/metrics"]  # labelled by the derived name
        files = "\n".join(str(p.relative_to(bridge.data_dir)) for p in bridge.data_dir.rglob("*"))
        assert "forward-127.0.0.1_" in files, files  # the cursor exists, under a safe name
        _assert_no_secret("file names under the data dir", files)
        target.assert_survived(MAX_RSS_MIB)
    finally:
        assert target.stop() == 0
    _assert_no_secret("the daemon's log", bridge.log_text())


def test_whitespace_token_file_refuses_to_start(tmp_path: Path) -> None:
    """A token file holding only whitespace would mean "no authentication": fail closed."""
    token = tmp_path / "token"
    token.write_text("  \n\t \n")
    config = tmp_path / "bridge.yaml"
    config.write_text(
        _config(tmp_path / "data", free_port(), f"query:\n  auth_token_file: {token}\n")
    )
    result = _serve(config)
    assert result.returncode != 0, result.stdout
    assert "query.auth_token_file" in result.stdout and "empty" in result.stdout, result.stdout
    assert "Traceback" not in result.stdout, result.stdout


def test_control_characters_in_urls_are_config_errors(tmp_path: Path) -> None:
    """CR/LF/TAB in a URL would forge log lines (and header lines): rejected by validation."""
    forged = "\r\n2026-01-01T00:00:00.000Z INFO  FORGED: all good"
    for i, bad in enumerate(
        [_closed_port_url(query=f"?a=1{forged}"), "http://127.0.0.1:1/api/v1/\tpush"]
    ):
        config = tmp_path / f"bridge{i}.yaml"
        config.write_text(
            _config(
                tmp_path / "data",
                free_port(),
                f"forward:\n  targets:\n    - url: {json.dumps(bad)}\n",
            )
        )
        result = _serve(config)
        assert result.returncode == 2, result.stdout
        assert "forward.targets[0].url" in result.stdout, result.stdout
        assert "control character" in result.stdout, result.stdout
        assert "\nFORGED" not in result.stdout and "\n2026-01-01" not in result.stdout
    # The same through the command line: --forward-url.
    config = tmp_path / "plain.yaml"
    config.write_text(_config(tmp_path / "data", free_port(), ""))
    result = _serve(config, "--forward-url", _closed_port_url(query=f"?a{forged}"))
    assert result.returncode == 2, result.stdout
    assert "forward.targets[0].url" in result.stdout and "FORGED" not in result.stdout


def test_second_daemon_on_the_data_dir_names_the_first(tmp_path: Path) -> None:
    """The lock error names the process holding the data directory, without a traceback."""
    first = Target(tmp_path / "first").start()
    try:
        t0 = time.monotonic()
        result = _serve(first.bridge.config, "--listen-address", f"127.0.0.1:{free_port()}")
        took = time.monotonic() - t0
        assert result.returncode != 0, result.stdout
        assert "Traceback" not in result.stdout, result.stdout
        assert f"PID {first.pid}" in result.stdout, result.stdout
        assert "grafana_agent_bridge" in result.stdout, result.stdout  # its command line
        print(f"second daemon refused in {took:.2f}s")
        first.assert_survived(MAX_RSS_MIB)
    finally:
        assert first.stop() == 0


def test_config_errors_do_not_echo_secrets(tmp_path: Path) -> None:
    """A secret of the wrong type, or a URL that is invalid, is reported by key, not by value."""
    bad = [
        f"query:\n  auth_token: [{API_KEY}]\n",
        f"query:\n  auth_token: {{k: {API_KEY}}}\n",
        "forward:\n  targets:\n    - url: http://127.0.0.1:1/push\n"
        "      bearer_token: 9876543210\n",
        "forward:\n  targets:\n    - url: http://127.0.0.1:1/push\n"
        f"      headers: 'Authorization: Bearer {BEARER}'\n",
        "forward:\n  targets:\n    - url: http://127.0.0.1:1/push\n"
        "      headers: {X-Api-Key: 12345678901}\n",
        f"forward:\n  targets:\n    - url: 'http://u:{PASSWORD}@127.0.0.1:notaport/push'\n",
        f"forward:\n  targets:\n    - url: 'ftp://u:{PASSWORD}@127.0.0.1/push?k={API_KEY}'\n",
        f'forward:\n  targets:\n    - url: "http://u:{PASSWORD}@127.0.0.1/p?k={API_KEY}\\n"\n',
        f"forward:\n  targets:\n    - url: http://127.0.0.1/p\n"
        f'      bearer_token: "a\\n{BEARER}"\n',
        f"forward:\n  targets:\n    - url: http://127.0.0.1/p\n"
        f'      headers: {{X-A: "\\r{HEADER}"}}\n',
        f'query:\n  auth_token: "{API_KEY}\\t"\n',
        f"tracing:\n  otlp_endpoint: 'http://u:{PASSWORD}@127.0.0.1:bad?k={API_KEY}'\n",
    ]
    for i, text in enumerate(bad):
        config = tmp_path / f"bad{i}.yaml"
        config.write_text(_config(tmp_path / "data", free_port(), text))
        result = _serve(config)
        assert result.returncode == 2, (text, result.stdout)
        assert "invalid configuration" in result.stdout, result.stdout
        _assert_no_secret(f"the error for {text!r}", result.stdout)
        for number in ("9876543210", "12345678901"):
            assert number not in result.stdout, result.stdout
