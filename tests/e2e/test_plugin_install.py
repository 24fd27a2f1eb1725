"""``grafana-agent-bridge plugin install DIR`` as an operator runs it, then started as Grafana
starts it: the installed executable must speak the plugin protocol with nothing from the
installing environment (no ``PYTHONPATH``, only ``PATH`` and ``HOME``).

The operator's interpreter here is a bare virtualenv without the plugin's packages (no gRPC, no
Arrow): the install has to bring them itself, into the plugin directory. It runs the package
either from its source tree (a checkout) or as installed from a wheel (``pip install``), the two
places the install takes the package from.
"""

from __future__ import annotations

import os
import re
import select
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from forward_support import BridgeProcess
from grpc_health.v1 import health_pb2, health_pb2_grpc

import grafana_agent_bridge
from grafana_agent_bridge.plugin import install as plugin_install
from grafana_agent_bridge.plugin import pluginv2_pb2 as pb

HANDSHAKE = re.compile(r"^1\|2\|tcp\|127\.0\.0\.1:(\d+)\|grpc$")
GRAFANA_ENV = {
    "grafana_plugin_type": "datasource",
    "PLUGIN_PROTOCOL_VERSIONS": "2",
    "PLUGIN_MIN_PORT": "10000",
    "PLUGIN_MAX_PORT": "25000",
}
SOURCE = Path(grafana_agent_bridge.__file__).resolve().parent.parent  # the bridge/ tree
INSTALL_TIMEOUT_S = 600  # a fresh virtualenv with grpcio and pyarrow (~20 s with a pip cache)


def _wheel_install(root: Path) -> Path:
    """The bridge built as a wheel and installed (no dependencies) in a directory of its own."""
    source = shutil.copytree(
        SOURCE, root / "src", ignore=shutil.ignore_patterns("__pycache__", "build", "*.egg-info")
    )
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check"]
    wheels = root / "dist"
    build = [*pip, "wheel", "--quiet", "--no-deps", "--no-build-isolation", "-w", str(wheels)]
    subprocess.run([*build, str(source)], check=True, timeout=300)
    (wheel,) = wheels.glob("*.whl")
    site = root / "site"
    install = [*pip, "install", "--quiet", "--no-deps", "--target", str(site), str(wheel)]
    subprocess.run(install, check=True, timeout=300)
    return site


@pytest.fixture(scope="module", params=["source-tree", "wheel"])
def installed(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The plugin directory, installed by a bare interpreter running the CLI."""
    root = tmp_path_factory.mktemp("plugin-install")
    bare = root / "operator-python"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(bare)], check=True)
    target = root / "plugins" / plugin_install.PLUGIN_ID
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONHOME")}
    # The package itself, without any of its dependencies.
    package = SOURCE if request.param == "source-tree" else _wheel_install(root)
    env["PYTHONPATH"] = str(package)
    cli = [str(bare / "bin" / "python"), "-m", "grafana_agent_bridge.plugin.cli"]
    done = subprocess.run(
        [*cli, "install", str(target)],
        check=False,
        capture_output=True,
        text=True,
        env=env,
        timeout=INSTALL_TIMEOUT_S,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Installed the plugin" in done.stdout
    return target


@pytest.fixture(scope="module")
def bridge(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BridgeProcess]:
    proc = BridgeProcess(tmp_path_factory.mktemp("bridge") / "data", "--no-collect")
    try:
        proc.wait_ready()
        yield proc
    finally:
        proc.stop()


def test_installed_executable_speaks_the_plugin_protocol_from_a_bare_environment(
    installed: Path, bridge: BridgeProcess, tmp_path: Path
) -> None:
    launcher = installed / plugin_install.executable_name()
    assert (installed / "plugin.json").is_file()
    clean = {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": str(tmp_path), **GRAFANA_ENV}
    proc = subprocess.Popen(
        [str(launcher)],
        cwd=installed,
        env=clean,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None and proc.stderr is not None
        ready, _, _ = select.select([proc.stdout], [], [], 60)  # Grafana's handshake timeout
        line = proc.stdout.readline().rstrip("\n") if ready else ""
        match = HANDSHAKE.match(line)
        assert match, f"no handshake line (got {line!r}); stderr: {_stderr(proc)}"
        with grpc.insecure_channel(f"127.0.0.1:{match.group(1)}") as channel:
            health = health_pb2_grpc.HealthStub(channel)
            reply = health.Check(health_pb2.HealthCheckRequest(service="plugin"), timeout=10)
            assert reply.status == health_pb2.HealthCheckResponse.SERVING
            check = channel.unary_unary(
                "/pluginv2.Diagnostics/CheckHealth",
                request_serializer=pb.CheckHealthRequest.SerializeToString,
                response_deserializer=pb.CheckHealthResponse.FromString,
            )
            settings = pb.DataSourceInstanceSettings(id=1, uid="b", name="b", url=bridge.url)
            context = pb.PluginContext(
                orgId=1, pluginId=plugin_install.PLUGIN_ID, dataSourceInstanceSettings=settings
            )
            answer = check(pb.CheckHealthRequest(pluginContext=context), timeout=30)
            assert answer.status == pb.CheckHealthResponse.OK, answer.message
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _stderr(proc: subprocess.Popen[str]) -> str:
    proc.kill()
    _, err = proc.communicate(timeout=10)
    return err[-2000:]
