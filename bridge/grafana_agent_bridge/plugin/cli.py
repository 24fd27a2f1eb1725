"""``grafana-agent-bridge plugin ...``: run as, or install, a Grafana backend datasource plugin."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="grafana-agent-bridge plugin",
        description="Grafana backend datasource plugin mode.",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser(
        "serve",
        help="run the plugin (Grafana starts this; it needs Grafana's environment)",
    )
    install = commands.add_parser("install", help="lay out a Grafana plugin directory")
    install.add_argument(
        "dir",
        type=Path,
        help="the plugin's own directory, e.g. "
        "/var/lib/grafana/plugins/canonical-agentbridge-datasource",
    )
    install.add_argument("--arch", help="GOARCH for the executable's name (default: this machine)")
    install.add_argument(
        "--python",
        help="absolute path of the interpreter that creates the plugin's virtualenv "
        "(with --no-venv: that the plugin runs); default: this one",
    )
    install.add_argument(
        "--source",
        type=Path,
        help="the bridge's wheel or source directory to install into the plugin's virtualenv "
        "(default: where the running package comes from)",
    )
    install.add_argument(
        "--wheelhouse",
        type=Path,
        help="install offline: take every package from the wheels in this directory",
    )
    install.add_argument(
        "--no-venv",
        action="store_true",
        help="make no virtualenv: run --python as it is (it must have the plugin extra)",
    )
    return parser


def main(argv: list[str]) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "serve":
        # Imported here so that `install` works without the plugin extra's gRPC packages.
        from grafana_agent_bridge.plugin.server import serve

        return serve()
    from grafana_agent_bridge.plugin.install import VENV, InstallError, grafana_setting, install

    pip_args = ["--no-index", f"--find-links={args.wheelhouse}"] if args.wheelhouse else []
    if not args.no_venv:
        print(
            f"Installing the plugin's own Python packages into {args.dir / VENV} "
            "(gRPC, Arrow: a few hundred MB; this can take a minute)...",
            flush=True,
        )
    try:
        launcher = install(
            args.dir,
            arch=args.arch,
            python=args.python,
            own_env=not args.no_venv,
            source=args.source,
            pip_args=pip_args,
        )
    except (InstallError, OSError, ValueError) as exc:
        print(f"install failed, the plugin was not installed: {exc}", file=sys.stderr)
        return 1
    print(f"Installed the plugin in {args.dir} (executable {launcher.name}).")
    print("Grafana loads it unsigned only with this setting in grafana.ini:")
    print(grafana_setting())
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
