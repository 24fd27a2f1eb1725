"""Random histories of one leader: Grafana answers, scale up/down, Grafana leader changes, garbage.

After every step the exchange databag equals a small model of SPEC §5 (complete sets at once,
the last complete set minus departed units until then, garbage changes nothing), and a re-run
changes nothing.
"""

from __future__ import annotations

import dataclasses
import json

from charm_builders import APP, databags, ds_uid, grafana
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from ops import testing

from charm import GrafanaAgentBridgeCharm

GRAFANAS = ("grafana-a", "grafana-b")

step = st.one_of(
    st.tuples(st.just("answer"), st.sampled_from(GRAFANAS), st.sets(st.integers(0, 4))),
    st.tuples(st.just("join"), st.none(), st.none()),
    st.tuples(st.just("depart"), st.none(), st.none()),
    st.tuples(st.just("new-grafana-leader"), st.sampled_from(GRAFANAS), st.none()),
    st.tuples(st.just("garbage"), st.sampled_from(GRAFANAS), st.none()),
)


@dataclasses.dataclass
class World:
    units: list[int]
    grafana_uid: dict[str, str]
    answered: dict[str, set[int]]
    garbage: dict[str, bool]
    published: dict[str, tuple[str, set[int]] | None]
    """The model of what must be published per Grafana: (grafana_uid, units) or nothing."""
    next_unit: int = 3

    def advance(self) -> None:
        """Apply SPEC §5 to the model after a step."""
        live = set(self.units)
        for g in GRAFANAS:
            current = self.published[g]
            if not self.garbage[g] and live <= self.answered[g]:
                self.published[g] = (self.grafana_uid[g], set(live))
            elif current is None:
                continue
            elif self.garbage[g] or current[0] == self.grafana_uid[g]:
                kept = current[1] & live
                self.published[g] = (current[0], kept) if kept else None
            else:
                self.published[g] = None

    def expected(self) -> list[dict[str, str]]:
        items = [
            {"type": "prometheus", "uid": ds_uid(g, n), "grafana_uid": pub[0]}
            for g, pub in self.published.items()
            if pub is not None
            for n in pub[1]
        ]
        return sorted(items, key=lambda e: (e["uid"], e["grafana_uid"]))


def build(world: World, previous: testing.State | None) -> testing.State:
    relations: list[testing.RelationBase] = []
    for app in GRAFANAS:
        old = _find(previous, app)
        rel = grafana(app, world.grafana_uid[app], sorted(world.answered[app]))
        if world.garbage[app]:
            rel = dataclasses.replace(
                rel, remote_app_data={"grafana_uid": "x", "datasource_uids": "{"}
            )
        if old is not None:
            rel = dataclasses.replace(old, remote_app_data=rel.remote_app_data)
        relations.append(rel)
    ex = _find(previous, "exchange") or testing.Relation(
        "send-datasource", remote_app_name="exchange"
    )
    peer = _peer(previous) or testing.PeerRelation("peers")
    others = {n: {} for n in world.units if n != 0}
    relations += [ex, dataclasses.replace(peer, peers_data=others)]
    base = previous or testing.State(leader=True)
    return dataclasses.replace(base, relations=set(relations), planned_units=len(world.units))


def _find(state: testing.State | None, app: str) -> testing.Relation | None:
    if state is None:
        return None
    for rel in state.relations:
        if getattr(rel, "remote_app_name", None) == app:
            return rel  # type: ignore[return-value]
    return None


def _peer(state: testing.State | None) -> testing.PeerRelation | None:
    if state is None:
        return None
    return next(r for r in state.relations if isinstance(r, testing.PeerRelation))


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(steps=st.lists(step, min_size=1, max_size=6))
def test_random_histories_keep_the_invariants(steps):
    ctx = testing.Context(GrafanaAgentBridgeCharm, app_name=APP)
    world = World(
        units=[0, 1, 2],
        grafana_uid={g: f"{g}-leader-0" for g in GRAFANAS},
        answered={g: set() for g in GRAFANAS},
        garbage={g: False for g in GRAFANAS},
        published={g: None for g in GRAFANAS},
    )
    state = ctx.run(ctx.on.update_status(), build(world, None))
    for kind, app, units in steps:
        if kind == "answer":
            world.answered[app] = {n for n in units if n in world.units}
            world.garbage[app] = False
        elif kind == "join":
            # Juju never reuses a unit number, not even that of a unit that departed.
            world.units.append(world.next_unit)
            world.next_unit += 1
        elif kind == "depart" and len(world.units) > 1:
            departing = world.units[-1]
            peer = _peer(state)
            assert peer is not None
            shrinking = dataclasses.replace(state, planned_units=len(world.units) - 1)
            state = ctx.run(
                ctx.on.relation_departed(peer, remote_unit=departing, departing_unit=departing),
                shrinking,
            )
            world.units.remove(departing)
        elif kind == "new-grafana-leader":
            world.grafana_uid[app] += "-next"
            world.garbage[app] = False
        elif kind == "garbage":
            world.garbage[app] = True
        state = ctx.run(ctx.on.update_status(), build(world, state))
        world.advance()
        check(world, state)
        again = ctx.run(ctx.on.update_status(), state)
        assert databags(again) == databags(state)


def check(world: World, state: testing.State) -> None:
    ex = _find(state, "exchange")
    assert ex is not None
    assert json.loads(ex.local_app_data["datasources"]) == world.expected()
