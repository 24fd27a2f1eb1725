"""A small deterministic simulator of a Juju model that runs real charm code via ops.testing.

Unit tests run one event against one hand-built state; operators meet event orders nobody
wrote down. This module plays Juju for several applications at once:

* it holds the one true copy of every relation's databags (an application databag per side,
  a unit databag per unit) and projects it into each unit's ``State`` before a hook, then
  reads the unit's writes back after it;
* it keeps, per unit, which remote units that unit has seen join (so ``relation.units`` grows
  and shrinks the way Juju's ``relation-list`` does);
* it keeps a queue of pending hooks and runs them in a seeded random order that respects
  Juju's guarantees (install and the start-up sequence first; ``relation-created`` before any
  other hook of that relation; ``joined`` before ``changed`` before ``departed`` for one remote
  unit; ``broken`` last), coalescing duplicate ``relation-changed`` hooks as Juju does;
* a databag whose content changed becomes ``relation-changed`` for the units on the other
  side that can see it (application data: every unit in scope; unit data: every unit that
  has seen that unit join); writing an equal value wakes nobody, as in Juju;
* leadership, ``planned_units``, scale up and down, adding and removing relations, config
  changes, and cross-model relations (the offering side sees the consumer application and its
  units as ``remote-<hash>`` and ``remote-<hash>/N``).

Each unit carries its own ``State`` from one hook to the next (stored state, deferred events,
status), exactly what the next ``Context.run`` needs. The same seed and the same operations
always give the same run. Access rules (only the leader writes application data, a unit
writes only its own unit databag) are enforced by ops itself while the hook runs.

During ``relation-departed`` the departing unit is still listed (as ``related-units`` does
in Juju); it is gone from the next hook on.

Known simplifications: hooks are atomic and never run concurrently; a dying unit is not told
``relation-departed`` about its remote units on non-peer relations (ops.testing would name the
departing unit after the remote application), it goes straight to ``relation-broken``; the
network binding of an endpoint has one ingress address per unit, whatever the relation.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import random
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import ops
from ops import testing
from scenario import _runtime as scenario_runtime  # pyright: ignore[reportPrivateUsage]
from scenario.mocking import _MockModelBackend  # pyright: ignore[reportPrivateUsage]

JUJU_VERSION = "3.6.4"
#: Keys Juju itself puts in every unit databag: not the charm's writes.
JUJU_UNIT_KEYS = frozenset({"egress-subnets", "ingress-address", "private-address"})

Bag = dict[str, str]


class SimulationError(AssertionError):
    """The model did something Juju would not allow, or never settled."""


@dataclass(frozen=True)
class ModelInfo:
    name: str
    uuid: str


@dataclass(eq=False)
class App:
    """One application: its charm, its units and who leads."""

    name: str
    charm_type: type[ops.CharmBase]
    meta: dict[str, Any]
    model: ModelInfo
    config_meta: dict[str, Any] | None = None
    actions_meta: dict[str, Any] | None = None
    config: dict[str, str | int | float | bool] = field(default_factory=dict)
    units: dict[int, Unit] = field(default_factory=dict)
    leader: int | None = None
    next_number: int = 0
    address_base: str = "10.0.0"
    around_hook: Callable[[Unit], contextlib.AbstractContextManager[Any]] | None = None
    """Entered around each hook of a unit: gives the charm that unit's machine (if any)."""
    secrets: dict[str, testing.Secret] = field(default_factory=dict)
    """Application-owned secrets, by id: the leader creates them, every unit can read them."""

    @property
    def live_units(self) -> list[Unit]:
        """Units that are neither dying nor gone: what ``planned_units`` counts."""
        return [u for u in self.units.values() if not u.dying]

    @property
    def planned_units(self) -> int:
        return len(self.live_units)

    def endpoints(self) -> dict[str, dict[str, Any]]:
        result: dict[str, dict[str, Any]] = {}
        for role in ("provides", "requires", "peers"):
            for name, spec in (self.meta.get(role) or {}).items():
                result[name] = {"role": role, **spec}
        return result


@dataclass(eq=False)
class Unit:
    app: App
    number: int
    ctx: testing.Context[Any]
    state: testing.State
    started: bool = False
    dying: bool = False
    address: str = ""

    @property
    def name(self) -> str:
        return f"{self.app.name}/{self.number}"


@dataclass(frozen=True)
class End:
    app: str
    endpoint: str


@dataclass
class Rel:
    """One relation as Juju holds it: databags, and who is in scope and sees whom."""

    id: int
    ends: tuple[End, ...]
    """One end for a peer relation, two otherwise."""
    interface: str
    cross_model: bool = False
    app_data: dict[str, Bag] = field(default_factory=dict)
    unit_data: dict[str, Bag] = field(default_factory=dict)
    in_scope: set[str] = field(default_factory=set)
    """Units whose ``relation-created`` has run and whose ``relation-broken`` has not."""
    sees: dict[str, set[str]] = field(default_factory=dict)
    """Per unit, the remote (or peer) units it has seen join and not yet depart."""
    removing: bool = False

    @property
    def is_peer(self) -> bool:
        return len(self.ends) == 1

    def end_of(self, app: str) -> End:
        return next(e for e in self.ends if e.app == app)

    def other_app(self, app: str) -> str:
        if self.is_peer:
            return app
        return next(e.app for e in self.ends if e.app != app)

    def involves(self, app: str) -> bool:
        return any(e.app == app for e in self.ends)


@dataclass(frozen=True)
class Event:
    """One pending hook for one unit."""

    unit: str
    kind: str
    relation: int | None = None
    remote: str | None = None
    """The remote unit (real name) for joined/changed/departed; None for app-level changed."""
    departing: str | None = None

    def __str__(self) -> str:
        parts = [self.unit, self.kind]
        if self.relation is not None:
            parts.append(f"rel={self.relation}")
        if self.remote is not None:
            parts.append(f"remote={self.remote}")
        if self.departing is not None:
            parts.append(f"departing={self.departing}")
        return " ".join(parts)


DYING = ("relation_departed", "relation_broken", "stop", "remove")
STARTUP = ("install", "relation_created", "leader_elected", "config_changed", "start")


@dataclass
class Write:
    """One databag whose content a hook changed."""

    relation: int
    owner: str
    """Application or unit name whose databag it is."""
    is_app: bool
    before: Bag
    after: Bag


@dataclass
class Stats:
    events: int = 0
    events_by_app: dict[str, int] = field(default_factory=dict)
    writes: int = 0
    writes_by_app: dict[str, int] = field(default_factory=dict)
    relation_sets_by_app: dict[str, int] = field(default_factory=dict)
    """``relation-set`` calls, including ones that set an equal value."""

    def copy(self) -> Stats:
        return Stats(
            self.events,
            dict(self.events_by_app),
            self.writes,
            dict(self.writes_by_app),
            dict(self.relation_sets_by_app),
        )

    def minus(self, other: Stats) -> Stats:
        def diff(a: dict[str, int], b: dict[str, int]) -> dict[str, int]:
            return {k: a.get(k, 0) - b.get(k, 0) for k in set(a) | set(b)}

        return Stats(
            self.events - other.events,
            diff(self.events_by_app, other.events_by_app),
            self.writes - other.writes,
            diff(self.writes_by_app, other.writes_by_app),
            diff(self.relation_sets_by_app, other.relation_sets_by_app),
        )


def _number(unit_name: str) -> int:
    return int(unit_name.rpartition("/")[2])


def _bump(counts: dict[str, int], key: str, by: int = 1) -> None:
    counts[key] = counts.get(key, 0) + by


_relation_set_calls: list[int] = [0]


@contextlib.contextmanager
def _counting_relation_sets() -> Iterator[None]:
    """Count ``relation-set`` calls: "no write" must also mean "no call"."""
    original = _MockModelBackend.relation_set

    def counted(self: _MockModelBackend, *args: Any, **kwargs: Any) -> Any:
        _relation_set_calls[0] += 1
        return original(self, *args, **kwargs)

    _MockModelBackend.relation_set = counted  # type: ignore[method-assign]
    try:
        yield
    finally:
        _MockModelBackend.relation_set = original  # type: ignore[method-assign]


class _MetadataYaml:
    """ops.testing re-serialises the charm's metadata to YAML for every hook; do it once.

    The specs are the same dict objects for every hook of an application, so the text is
    cached by identity (the object is kept alive with its text, so its id cannot be reused).
    Everything else about ``yaml`` is untouched.
    """

    def __init__(self, real: Any):
        self._real = real
        self._cache: dict[int, tuple[Any, str]] = {}

    def safe_dump(self, data: Any, *args: Any, **kwargs: Any) -> str:
        if args or kwargs:
            return self._real.safe_dump(data, *args, **kwargs)
        hit = self._cache.get(id(data))
        if hit is None or hit[0] is not data:
            hit = (data, self._real.safe_dump(data))
            self._cache[id(data)] = hit
        return hit[1]

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real, name)


@contextlib.contextmanager
def _cached_metadata_yaml() -> Iterator[None]:
    original = getattr(scenario_runtime, "yaml")  # noqa: B009
    setattr(scenario_runtime, "yaml", _CACHED_YAML)  # noqa: B010
    try:
        yield
    finally:
        setattr(scenario_runtime, "yaml", original)  # noqa: B010


_CACHED_YAML = _MetadataYaml(getattr(scenario_runtime, "yaml"))  # noqa: B009


def remote_app_alias(app: str, relation_id: int) -> str:
    """How the offering side names a consumer application under CMR: ``remote-<hash>``."""
    digest = hashlib.sha256(f"{app}:{relation_id}".encode()).hexdigest()[:32]
    return f"remote-{digest}"


class Simulation:
    """The Juju model: applications, relations, the hook queue and the scheduler."""

    def __init__(self, seed: int, *, max_events: int = 20_000):
        self.seed = seed
        self.rng = random.Random(seed)
        self.apps: dict[str, App] = {}
        self.relations: dict[int, Rel] = {}
        self.queue: list[Event] = []
        self.stats = Stats()
        self.max_events = max_events
        self.log: list[str] = []
        self.next_relation_id = 1
        self.observers: list[Callable[[Simulation, Event, list[Write]], None]] = []
        """Called after every hook with the writes it made (invariants hook in here)."""
        self.held: list[Callable[[Event], bool]] = []
        """Hooks matching any of these wait (a busy or slow unit agent) until released."""

    # -- building the model ----------------------------------------------------------------

    def add_app(
        self,
        name: str,
        charm_type: type[ops.CharmBase],
        meta: dict[str, Any],
        *,
        model: ModelInfo,
        units: int,
        config_meta: dict[str, Any] | None = None,
        actions_meta: dict[str, Any] | None = None,
        config: dict[str, str | int | float | bool] | None = None,
        address_base: str = "10.0.0",
        around_hook: Callable[[Unit], contextlib.AbstractContextManager[Any]] | None = None,
    ) -> App:
        """Deploy an application: its units install, join their peers, and one leads."""
        app = App(
            name,
            charm_type,
            meta,
            model,
            config_meta,
            actions_meta,
            dict(config or {}),
            address_base=address_base,
            around_hook=around_hook,
        )
        self.apps[name] = app
        for endpoint, spec in app.endpoints().items():
            if spec["role"] == "peers":
                self._new_relation((End(name, endpoint),), spec["interface"], cross_model=False)
        for _ in range(units):
            self.add_unit(name)
        return app

    def add_unit(self, app_name: str) -> Unit:
        """Scale up by one: the unit installs, enters every relation's scope, joins."""
        app = self.apps[app_name]
        number = app.next_number
        app.next_number += 1
        ctx = testing.Context(
            app.charm_type,
            meta=app.meta,
            config=app.config_meta,
            actions=app.actions_meta,
            app_name=app.name,
            unit_id=number,
            juju_version=JUJU_VERSION,
        )
        unit = Unit(app, number, ctx, testing.State(), address=f"{app.address_base}.{number + 1}")
        app.units[number] = unit
        first = app.leader is None
        if first:
            app.leader = number
        self._push(Event(unit.name, "install"))
        for rel in self._relations_of(app.name):
            self._push(Event(unit.name, "relation_created", rel.id))
        if first:
            self._push(Event(unit.name, "leader_elected"))
        self._push(Event(unit.name, "config_changed"))
        self._push(Event(unit.name, "start"))
        for rel in self._relations_of(app.name):
            self._enter_scope_events(rel, unit)
        return unit

    def remove_unit(self, app_name: str, number: int) -> None:
        """Scale down: ``planned_units`` drops now; the others see it depart; it goes."""
        app = self.apps[app_name]
        unit = app.units[number]
        if unit.dying:
            return
        unit.dying = True
        # Hooks about this unit that have not run yet never will: it leaves scope.
        self.queue = [
            e
            for e in self.queue
            if not (e.remote == unit.name and e.kind in ("relation_joined", "relation_changed"))
        ]
        if app.leader == number:
            survivors = sorted(u.number for u in app.live_units)
            app.leader = survivors[0] if survivors else None
            if app.leader is not None:
                self._push(Event(app.units[app.leader].name, "leader_elected"))
        for rel in self._relations_of(app_name):
            for other in self._units_of_rel(rel):
                if other is not unit and unit.name in rel.sees.get(other.name, set()):
                    self._push(
                        Event(other.name, "relation_departed", rel.id, unit.name, unit.name)
                    )
            if rel.is_peer:
                for peer in sorted(rel.sees.get(unit.name, set())):
                    self._push(Event(unit.name, "relation_departed", rel.id, peer, unit.name))
            self._push(Event(unit.name, "relation_broken", rel.id))
        self._push(Event(unit.name, "stop"))
        self._push(Event(unit.name, "remove"))

    def relate(
        self, a: str, a_endpoint: str, b: str, b_endpoint: str, *, cross_model: bool = False
    ) -> Rel:
        """``juju integrate``: every unit of both sides enters scope and sees the others join.

        With ``cross_model``, ``b`` is the offering side: it sees ``a`` as ``remote-<hash>``.
        """
        interface = self.apps[a].endpoints()[a_endpoint]["interface"]
        other = self.apps[b].endpoints()[b_endpoint]["interface"]
        if interface != other:
            raise SimulationError(f"{a}:{a_endpoint} ({interface}) vs {b}:{b_endpoint} ({other})")
        rel = self._new_relation(
            (End(a, a_endpoint), End(b, b_endpoint)), interface, cross_model=cross_model
        )
        for app_name in (a, b):
            for unit in self.apps[app_name].live_units:
                self._push(Event(unit.name, "relation_created", rel.id))
        for app_name in (a, b):
            for unit in self.apps[app_name].live_units:
                self._enter_scope_events(rel, unit)
        return rel

    def unrelate(self, relation_id: int) -> None:
        """``juju remove-relation``: everyone sees everyone depart, then the relation breaks."""
        rel = self.relations[relation_id]
        rel.removing = True
        # Hooks of this relation that have not run yet never will; units that have not
        # entered scope yet never do.
        self.queue = [
            e
            for e in self.queue
            if not (
                e.relation == rel.id
                and (
                    e.kind in ("relation_joined", "relation_changed") or e.unit not in rel.in_scope
                )
            )
        ]
        if not rel.in_scope:
            del self.relations[rel.id]
            return
        for unit in self._units_of_rel(rel):
            if unit.name not in rel.in_scope:
                continue
            if not rel.is_peer:
                for remote in sorted(rel.sees.get(unit.name, set())):
                    self._push(Event(unit.name, "relation_departed", rel.id, remote, remote))
            self._push(Event(unit.name, "relation_broken", rel.id))

    def set_leader(self, app_name: str, number: int) -> None:
        """Leadership moves (lease expiry): the new leader is told by ``leader-elected``."""
        app = self.apps[app_name]
        if app.leader == number or app.units[number].dying:
            return
        app.leader = number
        self._push(Event(app.units[number].name, "leader_elected"))

    def set_config(self, app_name: str, **values: str | int | float | bool) -> None:
        app = self.apps[app_name]
        app.config.update(values)
        for unit in app.live_units:
            self._push(Event(unit.name, "config_changed"))

    def _new_relation(self, ends: tuple[End, ...], interface: str, *, cross_model: bool) -> Rel:
        rel = Rel(self.next_relation_id, ends, interface, cross_model)
        self.next_relation_id += 1
        for end in ends:
            rel.app_data[end.app] = {}
        self.relations[rel.id] = rel
        return rel

    def _relations_of(self, app: str) -> list[Rel]:
        return [r for r in self.relations.values() if r.involves(app) and not r.removing]

    def _units_of_rel(self, rel: Rel) -> list[Unit]:
        return [u for end in rel.ends for u in self.apps[end.app].units.values()]

    def _enter_scope_events(self, rel: Rel, unit: Unit) -> None:
        """Queue the joined/changed pairs between a unit entering scope and the other side."""
        others = [u for u in self.apps[rel.other_app(unit.app.name)].live_units if u is not unit]
        for other in others:
            for watcher, joiner in ((unit, other), (other, unit)):
                if not self._pending(watcher.name, "relation_joined", rel.id, joiner.name) and (
                    joiner.name not in rel.sees.get(watcher.name, set())
                ):
                    self._push(Event(watcher.name, "relation_joined", rel.id, joiner.name))
                    self._push(Event(watcher.name, "relation_changed", rel.id, joiner.name))

    # -- the queue -------------------------------------------------------------------------

    def _pending(self, unit: str, kind: str, relation: int | None, remote: str | None = None):
        return any(
            e.unit == unit and e.kind == kind and e.relation == relation and e.remote == remote
            for e in self.queue
        )

    def _push(self, event: Event) -> None:
        """Queue a hook; a ``relation-changed`` already pending for the same source is enough.

        A dying unit only gets the hooks that take it out of the model.
        """
        unit = self._unit(event.unit)
        if unit is None or (unit.dying and event.kind not in DYING):
            return
        if event.kind == "relation_changed" and event in self.queue:
            return
        self.queue.append(event)

    def _unit(self, name: str) -> Unit | None:
        app, _, number = name.rpartition("/")
        found = self.apps.get(app)
        return found.units.get(int(number)) if found else None

    def _eligible_indexes(self) -> list[int]:
        """The queued hooks Juju could run now, given the hooks queued before each of them.

        One pass over the queue, remembering per unit what is queued ahead: a hook waits for
        any earlier hook of the same unit on the same remote unit of the same relation, a
        ``relation-broken`` for every earlier hook of its relation, ``stop``/``remove`` for
        everything, and the start-up sequence for its own earlier steps.
        """
        eligible: list[int] = []
        ahead: set[str] = set()
        ahead_startup: set[str] = set()
        ahead_relation: set[tuple[str, int]] = set()
        ahead_stream: set[tuple[str, int, str | None]] = set()
        for index, event in enumerate(self.queue):
            if self._eligible(event, ahead, ahead_startup, ahead_relation, ahead_stream):
                eligible.append(index)
            ahead.add(event.unit)
            if event.kind in STARTUP:
                ahead_startup.add(event.unit)
            if event.relation is not None:
                ahead_relation.add((event.unit, event.relation))
                ahead_stream.add((event.unit, event.relation, event.remote))
        return eligible

    def _eligible(
        self,
        event: Event,
        ahead: set[str],
        ahead_startup: set[str],
        ahead_relation: set[tuple[str, int]],
        ahead_stream: set[tuple[str, int, str | None]],
    ) -> bool:
        if any(hold(event) for hold in self.held):
            return False
        unit = self._unit(event.unit)
        if unit is None:
            return False
        if event.kind in ("stop", "remove"):
            return event.unit not in ahead
        if not unit.started or event.kind in STARTUP:
            # The start-up sequence runs in order, before anything else of this unit.
            return event.kind in STARTUP and event.unit not in ahead_startup
        if event.relation is None:
            return True
        rel = self.relations[event.relation]
        if event.kind == "relation_created":
            return True
        if event.unit not in rel.in_scope:
            return False
        if event.kind == "relation_broken":
            return (event.unit, event.relation) not in ahead_relation
        if event.kind == "relation_joined" and event.remote not in rel.in_scope:
            return False  # the remote unit has not entered scope yet
        if event.remote is None:
            return True
        return (event.unit, event.relation, event.remote) not in ahead_stream

    def pending(self) -> int:
        return len(self.queue)

    def step(self) -> Event | None:
        """Run one eligible hook chosen by the seeded generator; None when nothing can run."""
        eligible = self._eligible_indexes()
        if not eligible:
            if self.queue and not self.held:
                raise SimulationError(
                    f"seed {self.seed}: hooks stuck: {[str(e) for e in self.queue]}"
                )
            return None
        event = self.queue.pop(self.rng.choice(eligible))
        if self._stale(event):
            return event
        self._dispatch(event)
        return event

    def _stale(self, event: Event) -> bool:
        """A ``relation-changed`` this unit cannot be told about is not delivered.

        That is one about a unit it no longer sees, or one about application data while it
        sees no remote unit at all (ops.testing cannot express it; the data reaches the unit
        with the first ``joined``/``changed`` pair anyway).
        """
        if event.kind != "relation_changed":
            return False
        rel = self.relations.get(event.relation)  # type: ignore[arg-type]
        if rel is None:
            return True
        seen = rel.sees.get(event.unit, set())
        return not seen if event.remote is None else event.remote not in seen

    def run(self, max_steps: int | None = None) -> int:
        """Run hooks until the queue is empty (or ``max_steps``); returns how many ran."""
        ran = 0
        while self.queue and (max_steps is None or ran < max_steps):
            if self.stats.events >= self.max_events:
                raise SimulationError(
                    f"seed {self.seed}: no quiescence after {self.stats.events} hooks "
                    f"(pending: {[str(e) for e in self.queue[:10]]})"
                )
            if self.step() is None:
                break  # only held hooks are left
            ran += 1
        return ran

    def hold(self, predicate: Callable[[Event], bool]) -> None:
        """Delay matching hooks (as a slow unit agent would) until :meth:`release`."""
        self.held.append(predicate)

    def release(self) -> None:
        self.held.clear()

    # -- running one hook ------------------------------------------------------------------

    def _remote_name(self, rel: Rel, viewer_app: str, unit: Unit) -> str:
        """A unit's name as units of ``viewer_app`` see it (``remote-<hash>/N`` under CMR)."""
        return f"{self._remote_app_name(rel, viewer_app)}/{unit.number}"

    def _remote_app_name(self, rel: Rel, viewer_app: str) -> str:
        other = rel.other_app(viewer_app)
        if rel.cross_model and rel.ends[1].app == viewer_app:
            return remote_app_alias(other, rel.id)
        return other

    def _unit_bag(self, rel: Rel, unit: Unit) -> Bag:
        if unit.name not in rel.unit_data:
            rel.unit_data[unit.name] = {
                "egress-subnets": f"{unit.address}/32",
                "ingress-address": unit.address,
                "private-address": unit.address,
            }
        return rel.unit_data[unit.name]

    def _project(self, rel: Rel, unit: Unit) -> testing.RelationBase:
        """This relation as the unit sees it now."""
        app = unit.app.name
        seen_units = [
            u for name in sorted(rel.sees.get(unit.name, set())) if (u := self._unit(name))
        ]
        endpoint = rel.end_of(app).endpoint
        if rel.is_peer:
            return testing.PeerRelation(
                endpoint,
                interface=rel.interface,
                id=rel.id,
                local_app_data=dict(rel.app_data[app]),
                local_unit_data=dict(self._unit_bag(rel, unit)),
                peers_data={u.number: dict(self._unit_bag(rel, u)) for u in seen_units},
            )
        other = rel.other_app(app)
        return testing.Relation(
            endpoint,
            interface=rel.interface,
            id=rel.id,
            remote_app_name=self._remote_app_name(rel, app),
            remote_model_uuid=self.apps[other].model.uuid if rel.cross_model else None,
            local_app_data=dict(rel.app_data[app]),
            local_unit_data=dict(self._unit_bag(rel, unit)),
            remote_app_data=dict(rel.app_data[other]),
            remote_units_data={u.number: dict(self._unit_bag(rel, u)) for u in seen_units},
        )

    def _state_for(self, unit: Unit, event: Event) -> testing.State:
        app = unit.app
        visible = [
            rel
            for rel in self.relations.values()
            if unit.name in rel.in_scope or (event.relation == rel.id)
        ]
        networks = {
            testing.Network(
                endpoint,
                [testing.BindAddress([testing.Address(unit.address)])],
                ingress_addresses=[unit.address],
                egress_subnets=[f"{unit.address}/32"],
            )
            for endpoint in app.endpoints()
        }
        own_secrets = {s for s in unit.state.secrets if s.owner != "app"}
        return dataclasses.replace(
            unit.state,
            secrets=own_secrets | set(app.secrets.values()),
            relations={self._project(rel, unit) for rel in visible},
            leader=app.leader == unit.number,
            planned_units=app.planned_units,
            config=dict(app.config),
            networks=networks,
            model=testing.Model(name=app.model.name, uuid=app.model.uuid),
        )

    def _ops_event(self, unit: Unit, event: Event, state: testing.State) -> Any:
        on = unit.ctx.on
        if event.relation is None:
            return getattr(on, event.kind)()
        rel = state.get_relation(event.relation)
        remote = _number(event.remote) if event.remote else None
        if remote is None and event.kind == "relation_changed":
            # Application data changed: Juju names no unit; ops.testing needs one it sees.
            remote = min(map(_number, self.relations[event.relation].sees.get(unit.name, ())))
        if event.kind in ("relation_created", "relation_broken"):
            return getattr(on, event.kind)(rel)
        if event.kind == "relation_departed":
            departing = _number(event.departing) if event.departing else None
            return on.relation_departed(rel, remote_unit=remote, departing_unit=departing)
        return getattr(on, event.kind)(rel, remote_unit=remote)

    def _dispatch(self, event: Event) -> None:
        unit = self._unit(event.unit)
        assert unit is not None
        rel = self.relations.get(event.relation) if event.relation is not None else None
        # What Juju changes *before* the hook runs.
        if rel is not None:
            if event.kind == "relation_created":
                rel.in_scope.add(unit.name)
                rel.sees.setdefault(unit.name, set())
            elif event.kind == "relation_joined" and event.remote:
                rel.sees.setdefault(unit.name, set()).add(event.remote)
        state = self._state_for(unit, event)
        ops_event = self._ops_event(unit, event, state)
        before_sets = _relation_set_calls[0]
        try:
            around = unit.app.around_hook
            with (
                _counting_relation_sets(),
                _cached_metadata_yaml(),
                around(unit) if around else contextlib.nullcontext(),
            ):
                out = unit.ctx.run(ops_event, state)
        except Exception as e:
            raise SimulationError(f"seed {self.seed}: hook {event} raised {e!r}") from e
        unit.state = out
        for secret in out.secrets:
            if secret.owner == "app":
                if unit.app.leader != unit.number and unit.app.secrets.get(secret.id) != secret:
                    raise SimulationError(f"{unit.name} (not leader) changed app secret")
                unit.app.secrets[secret.id] = secret
        self.stats.events += 1
        _bump(self.stats.events_by_app, unit.app.name)
        _bump(self.stats.relation_sets_by_app, unit.app.name, _relation_set_calls[0] - before_sets)
        self.log.append(str(event))
        writes = self._read_back(unit, out)
        # What Juju changes *after* the hook ran.
        if event.kind == "start":
            unit.started = True
        if rel is not None and event.kind == "relation_departed" and event.remote:
            # Juju still lists the departing unit during relation-departed, not after it.
            rel.sees.setdefault(unit.name, set()).discard(event.remote)
        if rel is not None and event.kind == "relation_broken":
            rel.in_scope.discard(unit.name)
            rel.sees.pop(unit.name, None)
            if rel.removing and not rel.in_scope:
                del self.relations[rel.id]
                self.queue = [e for e in self.queue if e.relation != rel.id]
        if event.kind == "remove":
            for r in self.relations.values():
                r.unit_data.pop(unit.name, None)
            del unit.app.units[unit.number]
            self.queue = [e for e in self.queue if e.unit != unit.name]
        for observer in self.observers:
            observer(self, event, writes)

    def _read_back(self, unit: Unit, out: testing.State) -> list[Write]:
        """Copy the hook's databag changes into the model; wake up whoever can see them."""
        writes: list[Write] = []
        app = unit.app.name
        for projected in out.relations:
            rel = self.relations.get(projected.id)
            if rel is None:
                continue
            new_unit = dict(projected.local_unit_data)
            old_unit = self._unit_bag(rel, unit)
            if new_unit != old_unit:
                writes.append(Write(rel.id, unit.name, False, dict(old_unit), new_unit))
                rel.unit_data[unit.name] = new_unit
                for watcher in self._units_of_rel(rel):
                    if watcher is not unit and unit.name in rel.sees.get(watcher.name, set()):
                        self._push(Event(watcher.name, "relation_changed", rel.id, unit.name))
            new_app = dict(projected.local_app_data)
            old_app = rel.app_data[app]
            if new_app != old_app:
                if unit.app.leader != unit.number:
                    raise SimulationError(f"{unit.name} (not leader) changed app data of {rel.id}")
                writes.append(Write(rel.id, app, True, dict(old_app), new_app))
                rel.app_data[app] = new_app
                for watcher in self._units_of_rel(rel):
                    if watcher is unit or watcher.name not in rel.in_scope:
                        continue
                    if rel.is_peer or watcher.app.name != app:
                        self._push(Event(watcher.name, "relation_changed", rel.id, None))
        self.stats.writes += len(writes)
        for w in writes:
            _bump(self.stats.writes_by_app, w.owner.split("/")[0])
        return writes

    # -- after quiescence ------------------------------------------------------------------

    def every_event(self) -> list[Event]:
        """One more round of every hook Juju could send a settled model, for every unit."""
        events: list[Event] = []
        for app in self.apps.values():
            for unit in app.live_units:
                events.append(Event(unit.name, "update_status"))
                events.append(Event(unit.name, "config_changed"))
                if app.leader == unit.number:
                    events.append(Event(unit.name, "leader_elected"))
                for rel in self.relations.values():
                    if unit.name not in rel.in_scope:
                        continue
                    if rel.sees.get(unit.name):
                        events.append(Event(unit.name, "relation_changed", rel.id, None))
                    for remote in sorted(rel.sees.get(unit.name, set())):
                        events.append(Event(unit.name, "relation_changed", rel.id, remote))
        return events

    def replay(self, event: Event) -> None:
        """Run one hook now, outside the queue (used on a settled model)."""
        self._dispatch(event)

    # -- reading the model -----------------------------------------------------------------

    def app_bag(self, relation_id: int, app: str) -> Mapping[str, str]:
        return self.relations[relation_id].app_data[app]

    def relations_between(self, a: str, a_endpoint: str, b: str | None = None) -> list[Rel]:
        return [
            r
            for r in self.relations.values()
            if not r.is_peer
            and any(e.app == a and e.endpoint == a_endpoint for e in r.ends)
            and (b is None or r.involves(b))
        ]
