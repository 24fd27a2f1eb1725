"""``grafana-agent-bridge``: the daemon (``serve``) and the operator commands.

Flags given to ``serve`` override the configuration file, which overrides the embedded
defaults; ``check-config`` validates a file without starting anything.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from . import __version__
from .config import BridgeConfig, ConfigError, load_config
from .redact import first_unsafe_char, redact_url

if TYPE_CHECKING:
    from .store import Store

DEFAULT_QUERY_URL = "http://localhost:9099"
TOKEN_ENV = "GRAFANA_AGENT_BRIDGE_TOKEN"
"""Environment variable holding the query API token for ``query`` (not in the process list)."""


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="grafana-agent-bridge",
        description="A per-machine Prometheus remote-write receiver, store and query API for "
        "Grafana, forwarding to COS.",
    )
    p.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")

    s = sub.add_parser("serve", help="run the bridge daemon")
    s.add_argument("--config", metavar="FILE", help="YAML configuration file")
    s.add_argument("--listen-address", metavar="HOST:PORT", help="HTTP listen address")
    s.add_argument("--data-dir", metavar="DIR", help="directory of the local store")
    s.add_argument(
        "--no-collect",
        action="store_true",
        help="collect nothing (host, own metrics and scrape targets off)",
    )
    s.add_argument("--collect-interval", metavar="DURATION", help="collection interval, e.g. 15s")
    s.add_argument(
        "--forward-url",
        metavar="URL",
        action="append",
        default=[],
        help="remote-write target to forward to (repeatable; replaces the file's targets)",
    )
    s.add_argument("--log-level", choices=("debug", "info", "warning", "error"))
    s.add_argument("--log-format", choices=("text", "json"))

    q = sub.add_parser("query", help="run a PromQL query against a running bridge")
    q.add_argument("expr", metavar="PROMQL")
    q.add_argument("--url", default=DEFAULT_QUERY_URL, help=f"bridge URL ({DEFAULT_QUERY_URL})")
    q.add_argument("--time", help="evaluation time (unix seconds or RFC 3339; default now)")
    q.add_argument("--start", help="range query: first evaluation time (with --end, --step)")
    q.add_argument("--end", help="range query: last evaluation time (default now)")
    q.add_argument("--step", default="15s", help="range query: resolution (default 15s)")
    q.add_argument(
        "--token-file",
        metavar="FILE",
        help=f"read the query API's bearer token from FILE (or set ${TOKEN_ENV})",
    )
    q.add_argument(
        "--token",
        default="",
        help="bearer token (avoid: other users see it in the process list; prefer "
        f"--token-file or ${TOKEN_ENV})",
    )
    q.add_argument("--output", "-o", choices=("table", "json"), default="table")

    c = sub.add_parser("check-config", help="validate a configuration file")
    c.add_argument("file", metavar="FILE")
    c.add_argument(
        "--print",
        action="store_true",
        help="print the effective configuration (secrets and URL credentials masked)",
    )

    sub.add_parser("promql-test", help="run PromQL test files (promqltest format)", add_help=False)
    sub.add_parser("plugin", help="Grafana backend-plugin commands", add_help=False)
    return p


def serve_config(args: argparse.Namespace) -> BridgeConfig:
    """The file's configuration with the command-line flags applied on top.

    Raises:
        ConfigError: the file or a flag value is invalid (naming the key).
    """
    config = load_config(args.config)
    overrides: dict[str, object] = {}
    if args.listen_address:
        overrides["listen_address"] = args.listen_address
    if args.data_dir:
        overrides["data_dir"] = args.data_dir
    if args.no_collect:
        overrides.update({"collect.host": False, "collect.self": False, "collect.scrape": []})
    if args.collect_interval:
        overrides["collect.interval"] = args.collect_interval
    if args.forward_url:
        overrides["forward.targets"] = [{"url": u} for u in args.forward_url]
        if any(redact_url(u) != u for u in args.forward_url):
            print(
                "warning: a --forward-url with credentials shows them to every user of this "
                "machine (ps); put the target in the --config file instead",
                file=sys.stderr,
            )
    if args.log_level:
        overrides["log.level"] = args.log_level
    if args.log_format:
        overrides["log.format"] = args.log_format
    return config.with_overrides(overrides) if overrides else config


def cmd_serve(args: argparse.Namespace) -> int:
    try:
        config = serve_config(args)
    except ConfigError as e:
        print(f"invalid configuration:\n{e}", file=sys.stderr)
        return 2
    from .logsetup import setup_logging

    setup_logging(config.log)
    from .daemon import run

    return run(config)


def cmd_check_config(args: argparse.Namespace) -> int:
    try:
        config = load_config(args.file)
    except ConfigError as e:
        print(f"{args.file}: invalid configuration:\n{e}", file=sys.stderr)
        return 1
    if args.print:
        print(config.redacted_yaml(), end="")
    else:
        print(f"{args.file}: OK")
    return 0


class TokenError(Exception):
    """The token given to ``query`` cannot be used; the message says why."""


def query_token(args: argparse.Namespace, environ: Mapping[str, str] | None = None) -> str:
    """The bearer token for ``query``: ``--token-file``, else ``--token`` (with a warning:
    anyone on the machine can read a command line), else ``$GRAFANA_AGENT_BRIDGE_TOKEN``.

    Raises:
        TokenError: both flags given, or the file is unreadable, empty or not one line.
    """
    env = os.environ if environ is None else environ
    if args.token_file and args.token:
        raise TokenError("give --token-file or --token, not both")
    if args.token_file:
        try:
            token = Path(args.token_file).read_text(encoding="utf-8").strip()
        except (OSError, UnicodeDecodeError) as e:
            reason = e.strerror if isinstance(e, OSError) else "not UTF-8 text"
            raise TokenError(f"cannot read the token file {args.token_file}: {reason}") from None
        if not token:
            raise TokenError(f"the token file {args.token_file} is empty")
    elif args.token:
        print(
            "warning: --token shows the token to every user of this machine (ps, "
            f"/proc/PID/cmdline); use --token-file FILE or ${TOKEN_ENV} instead",
            file=sys.stderr,
        )
        token = args.token
    else:
        token = env.get(TOKEN_ENV, "").strip()
    if first_unsafe_char(token) is not None:
        raise TokenError("the token contains a control character (a line break?)")
    return token


def cmd_query(args: argparse.Namespace) -> int:
    try:
        token = query_token(args)
    except TokenError as e:
        print(f"query: {e}", file=sys.stderr)
        return 2
    params = {"query": args.expr}
    if args.start:
        end = args.end or f"{time.time():.3f}"
        params.update({"start": args.start, "end": end, "step": args.step})
        url = args.url.rstrip("/") + "/api/v1/query_range"
    else:
        if args.time:
            params["time"] = args.time
        url = args.url.rstrip("/") + "/api/v1/query"
    req = urllib.request.Request(
        url,
        data=urllib.parse.urlencode(params).encode(),
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(req, timeout=300) as resp:
            body = resp.read()
    except urllib.error.HTTPError as e:
        body = e.read()
    except (urllib.error.URLError, OSError) as e:
        shown = redact_url(args.url)
        print(f"cannot reach the bridge at {shown}: {getattr(e, 'reason', e)}", file=sys.stderr)
        return 1
    try:
        answer = json.loads(body)
    except ValueError:
        print(f"not a Prometheus API answer: {body[:200]!r}", file=sys.stderr)
        return 1
    if args.output == "json":
        print(json.dumps(answer, indent=2))
        return 0 if answer.get("status") == "success" else 1
    if answer.get("status") != "success":
        print(f"{answer.get('errorType')}: {answer.get('error')}", file=sys.stderr)
        return 1
    for w in answer.get("warnings", []):
        print(f"warning: {w}", file=sys.stderr)
    print_table(answer["data"])
    return 0


def _series_name(metric: dict[str, str]) -> str:
    name = metric.get("__name__", "")
    rest = ", ".join(f'{k}="{v}"' for k, v in sorted(metric.items()) if k != "__name__")
    return f"{name}{{{rest}}}" if rest or not name else name


def _when(t: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + f".{int(t * 1000) % 1000:03d}Z"


def print_table(data: dict[str, object]) -> None:
    rtype = data["resultType"]
    result = data["result"]
    rows: list[tuple[str, str, str]] = []
    if rtype in ("scalar", "string"):
        t, v = result  # type: ignore[misc]
        rows.append((str(rtype), str(v), _when(float(t))))
    elif rtype == "vector":
        for s in result:  # type: ignore[attr-defined]
            rows.append((_series_name(s["metric"]), s["value"][1], _when(s["value"][0])))
    else:
        for s in result:  # type: ignore[attr-defined]
            for t, v in s["values"]:
                rows.append((_series_name(s["metric"]), v, _when(t)))
    if not rows:
        print("(no data)")
        return
    header = ("SERIES", "VALUE", "TIME")
    widths = [max(len(r[i]) for r in (*rows, header)) for i in range(3)]
    for r in (header, *rows):
        print("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip())


def _delegate(module: str, argv: list[str], extra: str) -> int:
    import importlib

    try:
        mod = importlib.import_module(module)
    except ImportError as e:
        print(
            f"this command needs an optional part that is not installed ({e.name or e}); "
            f"install it with: pip install 'grafana-agent-bridge[{extra}]'",
            file=sys.stderr,
        )
        return 1
    return int(mod.main(argv))


def open_scratch_store(directory: Path) -> Store:
    """The store ``promql-test`` loads each test file into: the bridge's own, in a fresh
    directory, keeping every sample (test data is from 1970) and compacting only on demand.
    The harness knows only the storage contract; this is where the real store is chosen."""
    from .store import Store, StoreOptions

    opts = StoreOptions(retention_time_ms=2**62, compact_automatically=False)
    return Store.open(directory, opts)


def main(argv: Sequence[str] | None = None) -> int:
    args_list = list(sys.argv[1:] if argv is None else argv)
    if args_list and args_list[0] == "promql-test":
        from .promql.promqltest import main as promql_test_main  # core: no extra needed

        return promql_test_main(args_list[1:], open_store=open_scratch_store)
    if args_list and args_list[0] == "plugin":
        return _delegate("grafana_agent_bridge.plugin.cli", args_list[1:], "plugin")
    parser = _parser()
    args = parser.parse_args(args_list)
    if args.command == "serve":
        return cmd_serve(args)
    if args.command == "query":
        return cmd_query(args)
    if args.command == "check-config":
        return cmd_check_config(args)
    parser.print_help(sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
