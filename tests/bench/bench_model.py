#!/usr/bin/env python3
"""Scale report: hooks and databag writes until a fresh model is quiescent.

Deploys our real charm with N units next to one or two cross-model Grafanas (built on our
consumer library) and a Tempo registered in every Grafana, runs Juju's hooks in a seeded
random order until none is left (checking SPEC §5's invariants after every hook, at quiescence,
and that one more round of every hook writes nothing), and prints a table:

* ``hooks``: every hook run, all applications; ``bridge hooks``: those of our charm;
* ``writes``: databags whose content changed (each wakes the other side up);
* ``bridge writes``: our charm's; ``exchange writes``: how many times our exchange databag
  changed (bulk publication: ``[]`` then each complete set, not one write per unit);
* ``hooks/unit``: bridge hooks per bridge unit, to show how the count grows.

Run: ``tox -e model-bench [-- --units 1,3,10,30 --grafanas 1,2 --seeds 1]``. Asserts nothing
beyond the invariants; 30 units take minutes on a 2-core machine.
"""

from __future__ import annotations

import argparse
import logging
import math
import platform
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
for extra in (ROOT / "tests" / "model", ROOT / "src", ROOT / "lib", ROOT):
    if str(extra) not in sys.path:
        sys.path.insert(0, str(extra))

try:
    from model_sim import Event, Simulation, Write
    from model_world import (
        OUR_APP,
        GrafanaSpec,
        Invariants,
        TempoSpec,
        Topology,
        build,
        exchange_relation_ids,
    )
except ImportError as missing:  # e.g. in `tox -e bench`, which has only the bridge's packages
    print(
        f"skipped: the model simulation needs the charm's packages ({missing}); "
        "run `tox -e model-bench`"
    )
    sys.exit(0)


@dataclass
class Row:
    units: int
    grafanas: int
    hooks: int
    bridge_hooks: int
    writes: int
    bridge_writes: int
    exchange_writes: int
    seconds: float


class ExchangeWrites:
    """Counts the hooks in which our charm changed an exchange databag."""

    def __init__(self) -> None:
        self.count = 0

    def __call__(self, sim: Simulation, event: Event, writes: list[Write]) -> None:
        exchange = set(exchange_relation_ids_of(sim))
        if any(w.owner == OUR_APP and w.relation in exchange for w in writes):
            self.count += 1


def exchange_relation_ids_of(sim: Simulation) -> list[int]:
    return [
        r.id
        for endpoint in ("send-datasource", "receive-datasource")
        for r in sim.relations_between(OUR_APP, endpoint)
    ]


def measure(units: int, grafanas: int, seed: int) -> Row:
    topology = Topology(
        units=units,
        grafanas=tuple(GrafanaSpec(units=1, cross_model=True) for _ in range(grafanas)),
        tempo=TempoSpec(registered_in=tuple(range(grafanas)), exchange="send"),
    )
    world = build(topology, seed)
    world.sim.max_events = 200_000
    invariants = Invariants(world)
    exchange = ExchangeWrites()
    world.sim.observers += [invariants, exchange]
    started = time.perf_counter()
    world.sim.run()
    seconds = time.perf_counter() - started
    invariants.check_quiescent()
    stats = world.sim.stats.copy()
    invariants.check_no_flapping()
    assert exchange_relation_ids(world)
    return Row(
        units,
        grafanas,
        stats.events,
        stats.events_by_app.get(OUR_APP, 0),
        stats.writes,
        stats.writes_by_app.get(OUR_APP, 0),
        exchange.count,
        seconds,
    )


def median_row(rows: list[Row]) -> Row:
    def med(values: list[float]) -> float:
        return statistics.median(values)

    return Row(
        rows[0].units,
        rows[0].grafanas,
        round(med([r.hooks for r in rows])),
        round(med([r.bridge_hooks for r in rows])),
        round(med([r.writes for r in rows])),
        round(med([r.bridge_writes for r in rows])),
        round(med([r.exchange_writes for r in rows])),
        med([r.seconds for r in rows]),
    )


def growth(rows: list[Row], grafanas: int, attr: str) -> str:
    """The exponent k in count ~ units^k between the two largest sizes."""
    points = sorted((r.units, getattr(r, attr)) for r in rows if r.grafanas == grafanas)
    if len(points) < 2 or points[-2][0] == points[-1][0] or not points[-2][1]:
        return "n/a"
    (u1, c1), (u2, c2) = points[-2], points[-1]
    return f"{math.log(c2 / c1) / math.log(u2 / u1):.2f}"


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--units", default="1,3,10,30")
    parser.add_argument("--grafanas", default="1,2")
    parser.add_argument("--seeds", type=int, default=1, help="runs per cell (median shown)")
    args = parser.parse_args()
    logging.disable(logging.CRITICAL)

    print(f"model simulation scale report ({platform.python_version()}, {platform.machine()})")
    header = (
        f"{'units':>5} {'grafanas':>8} {'hooks':>7} {'bridge hooks':>12} {'hooks/unit':>10} "
        f"{'writes':>7} {'bridge writes':>13} {'exchange writes':>15} {'seconds':>8}"
    )
    print(header)
    print("-" * len(header))
    rows: list[Row] = []
    for grafanas in (int(g) for g in args.grafanas.split(",")):
        for units in (int(u) for u in args.units.split(",")):
            row = median_row([measure(units, grafanas, seed) for seed in range(args.seeds)])
            rows.append(row)
            print(
                f"{row.units:>5} {row.grafanas:>8} {row.hooks:>7} {row.bridge_hooks:>12} "
                f"{row.bridge_hooks / row.units:>10.1f} {row.writes:>7} {row.bridge_writes:>13} "
                f"{row.exchange_writes:>15} {row.seconds:>8.1f}",
                flush=True,
            )
    for grafanas in sorted({r.grafanas for r in rows}):
        print(
            f"growth with units ({grafanas} Grafana(s), two largest sizes): bridge hooks "
            f"~ units^{growth(rows, grafanas, 'bridge_hooks')}, bridge writes ~ units^"
            f"{growth(rows, grafanas, 'bridge_writes')}, exchange writes ~ units^"
            f"{growth(rows, grafanas, 'exchange_writes')}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
