"""Our charm in a simulated COS deployment, the operations on it, and SPEC §5's invariants.

A :class:`Topology` says how many bridge units there are, which Grafanas exist (and whether
they are related across models), and whether a Tempo registered in some of them shares its
UIDs with us. :func:`build` deploys and relates everything; :class:`Op` values change the model
while hooks are running; :class:`Invariants` is called after every hook and checks what must
hold at every moment, and :meth:`Invariants.check_quiescent` what must hold once Juju has
nothing left to run. :func:`run_scenario` ties them together and returns the counts.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from unittest import mock

import yaml
from model_charms import GRAFANA_META, TEMPO_META, GrafanaLikeCharm, TempoLikeCharm
from model_sim import App, Event, ModelInfo, Simulation, SimulationError, Stats, Unit, Write

import charm
from charm import GrafanaAgentBridgeCharm
from tests.fake_workload import FakeWorkload

ROOT = Path(__file__).resolve().parents[2]
OUR_APP = "bridge"
EDGE = ModelInfo("edge", "7e1d3c51-0000-4000-8000-00000000ed9e")
COS = ModelInfo("cos", "c05c05c0-0000-4000-8000-0000000000c0")
EXCHANGE_ENDPOINTS = ("send-datasource", "receive-datasource")
DEFAULT_PORT = 9099
DEFAULT_LABEL = "trace_id"


def charm_metadata() -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """Our charm's metadata, config and actions, from charmcraft.yaml."""
    raw = yaml.safe_load((ROOT / "charmcraft.yaml").read_text())
    meta = {k: raw[k] for k in ("name", "provides", "requires", "peers") if k in raw}
    return meta, raw.get("config", {}), raw.get("actions", {})


@dataclass(frozen=True)
class GrafanaSpec:
    units: int = 1
    cross_model: bool = True


@dataclass(frozen=True)
class TempoSpec:
    registered_in: tuple[int, ...] = (0,)
    """Indexes of the Grafanas Tempo is a datasource of."""
    exchange: str = "send"
    """Which of our exchange endpoints it relates to: "send", "receive" or "both"."""


@dataclass(frozen=True)
class Topology:
    units: int = 3
    grafanas: tuple[GrafanaSpec, ...] = (GrafanaSpec(),)
    tempo: TempoSpec | None = None


@dataclass(frozen=True)
class Op:
    """One change to the model, made while hooks are still pending.

    ``steps``: run ``arg`` hooks; ``scale_up``: add ``arg`` bridge units; ``scale_down``:
    remove the ``arg``-th live unit; ``leader``: move our leadership to the ``arg``-th unit;
    ``grafana_leader``: move Grafana ``arg``'s leadership to its next unit; ``grafana_scale``:
    add a unit to Grafana ``arg``; ``unrelate``/``relate``: remove or restore Grafana ``arg``'s
    grafana-source relation; ``config``: set the exemplar label to variant ``arg``; ``slow``:
    the ``arg``-th unit's agent runs no peer joined/departed hook until all operations are done
    (its view of its peers lags, e.g. just before it becomes leader).
    """

    kind: str
    arg: int = 0


LABELS = ("trace_id", "traceID", "tid")

#: (test name, bridge units at the end, Grafanas, hooks to quiescence, databag writes) per run,
#: for the summary that conftest prints.
QUIESCENCE: list[tuple[str, int, int, int, int]] = []


@dataclass
class World:
    sim: Simulation
    topology: Topology
    grafanas: list[str]
    tempo: str | None
    machines: dict[str, FakeWorkload]
    """Our units' machines (snapd and the daemon), by unit name."""
    source_relations: dict[str, int] = field(default_factory=dict)
    """Grafana app -> id of its grafana-source relation with us (if related now)."""

    @property
    def ours(self) -> App:
        return self.sim.apps[OUR_APP]


def build(topology: Topology, seed: int) -> World:
    """Deploy and relate everything at once; no hook has run yet."""
    sim = Simulation(seed)
    meta, config_meta, actions_meta = charm_metadata()
    machines: dict[str, FakeWorkload] = {}

    @contextlib.contextmanager
    def on_its_machine(unit: Unit) -> Iterator[None]:
        machine = machines.setdefault(unit.name, FakeWorkload())
        with mock.patch.object(charm, "SnapWorkload", lambda: machine):
            yield

    sim.add_app(
        OUR_APP,
        GrafanaAgentBridgeCharm,
        meta,
        model=EDGE,
        units=topology.units,
        config_meta=config_meta,
        actions_meta=actions_meta,
        address_base="10.20.0",
        around_hook=on_its_machine,
    )
    world = World(sim, topology, [], None, machines)
    for index, spec in enumerate(topology.grafanas):
        name = f"grafana{'' if index == 0 else index + 1}"
        sim.add_app(
            name,
            GrafanaLikeCharm,
            {**GRAFANA_META, "name": name},
            model=COS if spec.cross_model else EDGE,
            units=spec.units,
            address_base=f"10.1{index}.0",
        )
        world.grafanas.append(name)
        relate_grafana(world, index)
    if topology.tempo is not None:
        tempo = topology.tempo
        sim.add_app("tempo", TempoLikeCharm, TEMPO_META, model=COS, units=1, address_base="10.9.0")
        world.tempo = "tempo"
        for index in tempo.registered_in:
            if index < len(world.grafanas):
                sim.relate("tempo", "grafana-source", world.grafanas[index], "grafana-source")
        if tempo.exchange in ("send", "both"):
            sim.relate(OUR_APP, "send-datasource", "tempo", "receive-datasource", cross_model=True)
        if tempo.exchange in ("receive", "both"):
            sim.relate(OUR_APP, "receive-datasource", "tempo", "send-datasource", cross_model=True)
    return world


def relate_grafana(world: World, index: int) -> None:
    name = world.grafanas[index]
    if name in world.source_relations:
        return
    spec = world.topology.grafanas[index]
    rel = world.sim.relate(
        OUR_APP, "grafana-source", name, "grafana-source", cross_model=spec.cross_model
    )
    world.source_relations[name] = rel.id


def apply(world: World, op: Op) -> None:
    sim = world.sim
    ours = world.ours
    live = sorted(u.number for u in ours.live_units)
    if op.kind == "steps":
        sim.run(max_steps=op.arg)
    elif op.kind == "scale_up":
        for _ in range(max(1, op.arg)):
            sim.add_unit(OUR_APP)
    elif op.kind == "scale_down":
        if len(live) > 1:
            sim.remove_unit(OUR_APP, live[op.arg % len(live)])
    elif op.kind == "leader":
        sim.set_leader(OUR_APP, live[op.arg % len(live)])
    elif op.kind == "grafana_leader":
        app = sim.apps[world.grafanas[op.arg % len(world.grafanas)]]
        numbers = sorted(u.number for u in app.live_units)
        if len(numbers) > 1 and app.leader is not None:
            sim.set_leader(app.name, numbers[(numbers.index(app.leader) + 1) % len(numbers)])
    elif op.kind == "grafana_scale":
        sim.add_unit(world.grafanas[op.arg % len(world.grafanas)])
    elif op.kind == "unrelate":
        name = world.grafanas[op.arg % len(world.grafanas)]
        if name in world.source_relations:
            sim.unrelate(world.source_relations.pop(name))
    elif op.kind == "relate":
        relate_grafana(world, op.arg % len(world.grafanas))
    elif op.kind == "slow":
        victim = f"{OUR_APP}/{live[op.arg % len(live)]}"
        peers = {r.id for r in sim.relations.values() if r.is_peer and r.involves(OUR_APP)}
        sim.hold(
            lambda e: (
                e.unit == victim
                and e.relation in peers
                and e.kind in ("relation_joined", "relation_departed")
            )
        )
    elif op.kind == "config":
        sim.set_config(OUR_APP, **{"exemplar-trace-id-label": LABELS[op.arg % len(LABELS)]})
    else:
        raise ValueError(f"unknown op {op.kind}")


# -- what the model says ----------------------------------------------------------------------


def unit_number(name: str) -> int | None:
    app, sep, number = name.rpartition("/")
    return int(number) if sep and app and number.isdigit() else None


def grafana_answer(world: World, grafana: str) -> tuple[str, dict[int, str]] | None:
    """Grafana's ``grafana_uid`` and its UIDs for our units by number, as it wrote them."""
    rel_id = world.source_relations.get(grafana)
    if rel_id is None or rel_id not in world.sim.relations:
        return None
    bag = world.sim.app_bag(rel_id, grafana)
    if not bag.get("grafana_uid"):
        return None
    uids = json.loads(bag.get("datasource_uids", "{}"))
    by_number = {unit_number(k): v for k, v in uids.items()}
    return bag["grafana_uid"], {n: v for n, v in by_number.items() if n is not None}


def exchange_relation_ids(world: World) -> list[int]:
    return sorted(
        r.id
        for endpoint in EXCHANGE_ENDPOINTS
        for r in world.sim.relations_between(OUR_APP, endpoint)
        if not r.removing
    )


def published(world: World, rel_id: int) -> list[dict[str, str]] | None:
    """Our exchange entries on one relation; None when the key is absent."""
    raw = world.sim.app_bag(rel_id, OUR_APP).get("datasources")
    if raw is None:
        return None
    entries = json.loads(raw)
    assert isinstance(entries, list), raw
    return entries


def received_tempo(world: World, grafana_uid: str) -> str | None:
    """The first (by uid) tempo datasource the other side published for this Grafana."""
    found: list[str] = []
    for rel_id in exchange_relation_ids(world):
        rel = world.sim.relations[rel_id]
        raw = rel.app_data[rel.other_app(OUR_APP)].get("datasources")
        for entry in json.loads(raw) if raw else []:
            if entry["type"] == "tempo" and entry["grafana_uid"] == grafana_uid:
                found.append(entry["uid"])
    return min(found) if found else None


# -- the invariants ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Snapshot:
    units: frozenset[int]
    uids: frozenset[tuple[int, str]]


class Invariants:
    """SPEC §5, checked after every hook and at quiescence."""

    def __init__(self, world: World):
        self.world = world
        self.assigned: set[tuple[str, str]] = set()
        """Every (grafana_uid, datasource uid) any Grafana ever gave one of our units."""
        self.complete: dict[str, set[Snapshot]] = {}
        """Per grafana_uid, every moment at which it had a UID for each of our units."""
        self.hooks = 0
        self.observe()

    def __call__(self, sim: Simulation, event: Event, writes: list[Write]) -> None:
        self.hooks += 1
        self.check_step(event)
        self.observe()

    def observe(self) -> None:
        """Remember what Grafanas assigned and when a Grafana's set was complete."""
        ours = self.world.ours
        live = frozenset(u.number for u in ours.live_units)
        present = frozenset(ours.units)
        for grafana in self.world.grafanas:
            answer = grafana_answer(self.world, grafana)
            if answer is None:
                continue
            grafana_uid, uids = answer
            self.assigned.update((grafana_uid, uid) for uid in uids.values())
            for units in (live, present):
                if units and units <= uids.keys():
                    snap = Snapshot(units, frozenset((n, uids[n]) for n in units))
                    self.complete.setdefault(grafana_uid, set()).add(snap)

    def fail(self, message: str) -> SimulationError:
        sim = self.world.sim
        recent = "\n  ".join(sim.log[-15:])
        return SimulationError(
            f"seed {sim.seed}, after {sim.stats.events} hooks: {message}\nlast hooks:\n  {recent}"
        )

    def check_step(self, event: Event) -> None:
        """What must hold at every moment, on every exchange relation."""
        live_now = {u.number for u in self.world.ours.live_units}
        for rel_id in exchange_relation_ids(self.world):
            entries = published(self.world, rel_id)
            if entries is None:
                continue
            uids = [e["uid"] for e in entries]
            if uids != sorted(uids):
                raise self.fail(f"relation {rel_id}: entries not sorted by uid: {uids}")
            by_grafana: dict[str, set[str]] = {}
            for entry in entries:
                key = (entry["grafana_uid"], entry["uid"])
                if entry.get("type") != "prometheus":
                    raise self.fail(f"relation {rel_id}: entry of type {entry.get('type')}")
                if key not in self.assigned:
                    raise self.fail(f"relation {rel_id}: {key} was never assigned by a Grafana")
                by_grafana.setdefault(entry["grafana_uid"], set()).add(entry["uid"])
            for grafana_uid, published_uids in by_grafana.items():
                # Some complete set, of which only units that are gone now may be missing.
                if not any(
                    published_uids <= {uid for _, uid in snap.uids}
                    and {n for n, uid in snap.uids if uid not in published_uids}.isdisjoint(
                        live_now
                    )
                    for snap in self.complete.get(grafana_uid, ())
                ):
                    raise self.fail(
                        f"relation {rel_id}: partial set for {grafana_uid}: "
                        f"{sorted(published_uids)} (live units {sorted(live_now)}, complete sets "
                        f"seen: {[sorted(s.uids) for s in self.complete.get(grafana_uid, ())]})"
                    )

    def expected_entries(self) -> list[dict[str, str]]:
        live = sorted(u.number for u in self.world.ours.live_units)
        entries: list[dict[str, str]] = []
        for grafana in self.world.grafanas:
            answer = grafana_answer(self.world, grafana)
            if answer is None:
                continue
            grafana_uid, uids = answer
            missing = [n for n in live if n not in uids]
            if missing:
                raise self.fail(f"{grafana} settled without UIDs for units {missing}")
            entries += [
                {"type": "prometheus", "uid": uids[n], "grafana_uid": grafana_uid} for n in live
            ]
        return sorted(entries, key=lambda e: (e["uid"], e["grafana_uid"]))

    def check_quiescent(self) -> None:
        """What must hold once nothing is left to run."""
        world = self.world
        sim = world.sim
        if sim.pending():
            raise self.fail(f"not quiescent: {sim.pending()} hooks pending")
        expected = self.expected_entries()
        for rel_id in exchange_relation_ids(world):
            got = published(world, rel_id)
            if got != expected:
                raise self.fail(f"exchange relation {rel_id} holds {got}, expected {expected}")
        label = str(world.ours.config.get("exemplar-trace-id-label", DEFAULT_LABEL))
        for grafana, rel_id in world.source_relations.items():
            bag = sim.app_bag(rel_id, OUR_APP)
            data = json.loads(bag.get("grafana_source_data", "null"))
            if data is None:
                raise self.fail(f"no grafana_source_data for {grafana}")
            answer = grafana_answer(world, grafana)
            tempo = received_tempo(world, answer[0]) if answer else None
            want = [{"datasourceUid": tempo, "name": label}] if tempo else None
            got = (data.get("extra_fields") or {}).get("exemplarTraceIdDestinations")
            if got != want:
                raise self.fail(f"{grafana}: exemplarTraceIdDestinations {got}, expected {want}")
            rel = sim.relations[rel_id]
            for unit in world.ours.live_units:
                host = rel.unit_data.get(unit.name, {}).get("grafana_source_host")
                if host != f"http://{unit.address}:{DEFAULT_PORT}":
                    raise self.fail(f"{unit.name} advertises {host!r} to {grafana}")
        for unit in world.ours.live_units:
            status = unit.state.unit_status
            if status.name != "active":
                raise self.fail(f"{unit.name} settled in {status.name}: {status.message!r}")

    def check_no_flapping(self) -> Stats:
        """One more round of every hook on the settled model writes nothing, wakes nobody."""
        sim = self.world.sim
        before = sim.stats.copy()
        for event in sim.every_event():
            sim.replay(event)
            delta = sim.stats.minus(before)
            if delta.writes or sim.pending():
                raise self.fail(f"settled model wrote on {event}: {delta.writes_by_app}")
            # Our charm must not even call relation-set with an equal value.
            if delta.relation_sets_by_app.get(OUR_APP, 0):
                raise self.fail(f"settled {event} issued relation-set calls")
        return sim.stats.minus(before)


@dataclass
class Outcome:
    seed: int
    topology: Topology
    ops: tuple[Op, ...]
    to_quiescence: Stats
    hooks_checked: int

    def repro(self) -> str:
        return f"run_scenario({self.topology!r}, {self.ops!r}, seed={self.seed})"


def run_scenario(topology: Topology, ops: tuple[Op, ...] = (), *, seed: int) -> Outcome:
    """Build, apply the operations while hooks run, settle, and check everything."""
    world = build(topology, seed)
    invariants = Invariants(world)
    world.sim.observers.append(invariants)
    for op in ops:
        apply(world, op)
        invariants.observe()
    world.sim.run()
    world.sim.release()
    world.sim.run()
    invariants.check_quiescent()
    settled = world.sim.stats.copy()
    invariants.check_no_flapping()
    return Outcome(seed, topology, ops, settled, invariants.hooks)
