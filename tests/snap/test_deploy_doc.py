"""docs/deploy.md: every ``juju`` and ``snap`` command in it agrees with what it deploys.

Each command line of the guide's ``sh`` blocks is parsed: our endpoints, config options (and
their values, through the charm's own validator), actions and their parameters, and resources
must be in ``charmcraft.yaml``; integrations must join endpoints of the same interface in
opposite roles (COS's side from the table below); offers must be consumed before use; snap keys
and values must pass the snap's configure-hook validator; plugs must be the daemon's; channels
must be the charm's default. A command the test does not know fails it, so the guide cannot
drift into commands nobody checked.
"""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Any

import pytest
import yaml

from grafana_agent_bridge.snapconfig import SNAP_KEYS, build_config
from tests.deploy_doc import DOC, ROOT, commands
from tests.deploy_doc import placeholder as _placeholder

APP = "grafana-agent-bridge"
SNAP = "grafana-agent-bridge"

# The other side of each integration, as published by those charms (role, interface):
# grafana-k8s, prometheus-k8s, mimir-coordinator-k8s, tempo-coordinator-k8s (tempo-operators),
# opentelemetry-collector and grafana-agent machine charms (shared/facts/juju-charm.md,
# ecosystem-2026.md, and their charmcraft.yaml files).
REMOTE: dict[str, tuple[str, str]] = {
    "grafana:grafana-source": ("requires", "grafana_datasource"),
    "prometheus:receive-remote-write": ("provides", "prometheus_remote_write"),
    "mimir:receive-remote-write": ("provides", "prometheus_remote_write"),
    "prometheus:send-datasource": ("provides", "grafana_datasource_exchange"),
    "mimir:send-datasource": ("provides", "grafana_datasource_exchange"),
    "tempo:receive-datasource": ("requires", "grafana_datasource_exchange"),
    "tempo:tracing": ("provides", "tracing"),
    "otelcol:send-remote-write": ("requires", "prometheus_remote_write"),
    "otelcol:juju-info": ("requires", "juju-info"),
    "otelcol:send-otlp": ("requires", "otlp"),
    "otelcol:cos-agent": ("requires", "cos_agent"),
    "grafana-agent:send-remote-write": ("requires", "prometheus_remote_write"),
    "grafana-agent:juju-info": ("requires", "juju-info"),
    "grafana-agent:cos-agent": ("requires", "cos_agent"),
}
AUTO_CONNECTED = {"network", "network-bind"}


class Checker:
    def __init__(self, charm: dict[str, Any]) -> None:
        self.charm = charm
        self.endpoints: dict[str, tuple[str, str]] = {"juju-info": ("provides", "juju-info")}
        for role in ("provides", "requires"):
            for name, spec in charm.get(role, {}).items():
                self.endpoints[name] = (role, spec["interface"])
        self.options: dict[str, Any] = charm["config"]["options"]
        self.offers: dict[str, str] = {}  # offer name -> application:endpoint
        self.saas: dict[str, str] = {}  # local name -> application:endpoint
        self.config: dict[str, Any] = {}
        self.snap_settings: dict[str, str] = {}
        self.seen: set[str] = set()

    # -- juju -------------------------------------------------------------------------------

    def juju(self, argv: list[str]) -> None:
        sub, args = argv[1], argv[2:]
        self.seen.add(f"juju {sub}")
        handler = getattr(self, "juju_" + sub.replace("-", "_"), None)
        assert handler is not None, f"unchecked juju command: {shlex.join(argv)}"
        handler(args)

    def juju_switch(self, args: list[str]) -> None:
        assert len(args) == 1

    def juju_ssh(self, args: list[str]) -> None:
        assert args[0].startswith(f"{APP}/"), args

    def juju_expose(self, args: list[str]) -> None:
        assert args == [APP]

    def juju_deploy(self, args: list[str]) -> None:
        charm, rest = args[0], args[1:]
        if charm == APP or charm.endswith(".charm"):
            if charm.endswith(".charm"):
                assert Path(charm).name.startswith(f"{APP}_"), charm
            for i, arg in enumerate(rest):
                if arg == "--resource":
                    self._resource(rest[i + 1])
                elif arg == "--config":
                    self._config_item(rest[i + 1])
                elif arg == "--channel":
                    pytest.fail(
                        f"the charm's channel is left to Juju's default, not {rest[i + 1]}"
                    )
        else:
            assert f"{rest[0] if rest else charm}:send-remote-write" in REMOTE, args

    def juju_config(self, args: list[str]) -> None:
        assert args[0] == APP, args
        for item in args[1:]:
            self._config_item(item)

    def _config_item(self, item: str) -> None:
        key, sep, value = item.partition("=")
        assert sep, item
        assert key in self.options, f"no charm option {key!r}"
        kind = self.options[key]["type"]
        typed: object = value
        if kind == "int":
            typed = int(value)
        elif kind == "boolean":
            assert value in ("true", "false"), item
            typed = value == "true"
        self.config[key] = typed

    def _resource(self, item: str) -> None:
        name, sep, path = item.partition("=")
        assert sep and path, item
        assert name in self.charm["resources"], f"no resource {name!r}"
        assert path.endswith(".snap"), path

    def juju_attach_resource(self, args: list[str]) -> None:
        assert args[0] == APP, args
        self._resource(args[1])

    def juju_offer(self, args: list[str]) -> None:
        endpoint, name = args
        assert endpoint in REMOTE, f"offer of an endpoint the guide does not explain: {endpoint}"
        self.offers[name] = endpoint

    def juju_consume(self, args: list[str]) -> None:
        url = args[0]
        offer = url.rsplit(".", 1)[1]
        assert offer in self.offers, f"{url}: consumed before `juju offer ... {offer}`"
        self.saas[args[1] if len(args) > 1 else offer] = self.offers[offer]

    def juju_integrate(self, args: list[str]) -> None:
        assert len(args) == 2, args
        ours = [a for a in args if a.split(":")[0] == APP]
        if not ours:  # a sender onto its principal: only its own side can be checked
            assert all(_placeholder(a) or a in REMOTE for a in args), args
            return
        assert len(ours) == 1, f"{APP} integrated with itself: {args}"
        theirs = next(a for a in args if a not in ours)
        endpoint = ours[0].split(":", 1)[1]
        assert endpoint in self.endpoints, f"{APP} has no endpoint {endpoint!r}"
        if _placeholder(theirs):
            return
        remote = self.saas.get(theirs, theirs)
        assert remote in REMOTE, f"unknown other side {theirs!r} (consume the offer first?)"
        role, interface = self.endpoints[endpoint]
        their_role, their_interface = REMOTE[remote]
        assert interface == their_interface, f"{args}: {interface} != {their_interface}"
        assert role != their_role, f"{args}: both sides {role}"

    def juju_run(self, args: list[str]) -> None:
        unit, action, *params = args
        assert unit.startswith(f"{APP}/"), unit
        spec = self.charm["actions"].get(action)
        assert spec is not None, f"no action {action!r}"
        given = {p.partition("=")[0] for p in params}
        declared = set(spec.get("params", {}))
        assert given <= declared, f"{action}: unknown parameters {given - declared}"
        assert set(spec.get("required", [])) <= given, f"{action}: missing required parameters"

    # -- snap -------------------------------------------------------------------------------

    def snap(self, argv: list[str], plugs: list[str]) -> None:
        sub, args = argv[1], argv[2:]
        self.seen.add(f"snap {sub}")
        if sub == "install":
            if "--dangerous" in args:
                (path,) = [a for a in args if a != "--dangerous"]
                assert Path(path).name.startswith(f"{SNAP}_") and path.endswith(".snap"), path
            else:
                assert args[0] == SNAP, args
                channel = args[args.index("--channel") + 1]
                assert channel == self.options["snap-channel"]["default"], channel
        elif sub == "connect":
            (plug,) = args
            name, _, plug_name = plug.partition(":")
            assert name == SNAP and plug_name in plugs, plug
            assert plug_name not in AUTO_CONNECTED, f"{plug_name} is connected automatically"
        elif sub == "set":
            assert args[0] == SNAP, args
            names = {k.name for k in SNAP_KEYS}
            for item in args[1:]:
                key, sep, value = item.partition("=")
                assert sep and key in names, f"no snap key {key!r}"
                self.snap_settings[key] = "x" * 32 if _placeholder(value) else value
        elif sub in ("get", "services"):
            assert args == [SNAP], args
        elif sub == "logs":
            assert args[-1] == f"{SNAP}.daemon", args
        else:
            pytest.fail(f"unchecked snap command: {shlex.join(argv)}")


@pytest.fixture(scope="module")
def checked() -> Checker:
    charm = yaml.safe_load((ROOT / "charmcraft.yaml").read_text())
    snapcraft = yaml.safe_load((ROOT / "snap" / "snapcraft.yaml").read_text())
    plugs = snapcraft["apps"]["daemon"]["plugs"]
    checker = Checker(charm)
    for argv in commands(DOC.read_text()):
        if argv[0] == "juju":
            checker.juju(argv)
        else:
            checker.snap(argv, plugs)
    return checker


def test_every_command_matches_the_charm_and_the_snap(checked: Checker) -> None:
    # The guide covers what the issue asks for: deploy, resource, offers, consumes,
    # integrations, actions, snap install/connect/set.
    for needed in (
        "juju deploy",
        "juju attach-resource",
        "juju offer",
        "juju consume",
        "juju integrate",
        "juju run",
        "juju config",
        "snap install",
        "snap connect",
        "snap set",
    ):
        assert needed in checked.seen, f"the guide has no `{needed}`"


def test_the_charm_options_it_sets_are_valid(checked: Checker) -> None:
    from config import load  # the charm's own validator (src/config.py)

    options = checked.options
    raw = {k: v["default"] for k, v in options.items() if "default" in v}
    raw.update(checked.config)
    load(raw)
    channel = checked.config.get("snap-channel")
    if channel is not None:  # a channel other than the default must be one the option names
        assert channel in options["snap-channel"]["description"], channel


def test_the_snap_settings_it_sets_are_valid(checked: Checker, tmp_path: Path) -> None:
    assert checked.snap_settings
    build_config(checked.snap_settings, str(tmp_path))  # raises SnapSettingError if not


def test_every_endpoint_of_ours_that_talks_to_cos_is_integrated(checked: Checker) -> None:
    text = DOC.read_text()
    for endpoint in checked.endpoints:
        if endpoint in ("juju-info",):
            continue
        assert f"{APP}:{endpoint}" in text, f"the guide never integrates {endpoint}"


def test_the_readme_links_the_guide_at_its_top() -> None:
    top = (ROOT / "README.md").read_text()[:2000]
    assert "(docs/deploy.md)" in top
