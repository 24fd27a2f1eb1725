"""The simulator keeps Juju's rules: if it did not, the property tests would prove nothing."""

from __future__ import annotations

import json
from typing import Any

import ops
import pytest
from model_charms import GRAFANA_META, TEMPO_META, GrafanaLikeCharm, TempoLikeCharm
from model_sim import Simulation, SimulationError, remote_app_alias
from model_world import COS, EDGE, GrafanaSpec, Topology, build, grafana_answer

ECHO_META: dict[str, Any] = {
    "name": "echo",
    "provides": {"out": {"interface": "echo"}},
    "requires": {"in": {"interface": "echo"}},
    "peers": {"echo-peers": {"interface": "echo_peers"}},
}


class EchoCharm(ops.CharmBase):
    """Writes a counter of the hooks it saw; the leader also writes app data (or tries to)."""

    writes_app_data_as_non_leader = False

    def __init__(self, framework: ops.Framework):
        super().__init__(framework)
        for event in (self.on.config_changed, self.on["out"].relation_changed):
            framework.observe(event, self._write)

    def _write(self, event: ops.EventBase) -> None:
        for relation in self.model.relations["out"]:
            relation.data[self.unit]["seen"] = "yes"
            if self.unit.is_leader() or self.writes_app_data_as_non_leader:
                relation.data[self.app]["app"] = "yes"


def echo_pair(seed: int, units: int = 2) -> Simulation:
    sim = Simulation(seed)
    sim.add_app("a", EchoCharm, {**ECHO_META, "name": "a"}, model=EDGE, units=units)
    sim.add_app("b", EchoCharm, {**ECHO_META, "name": "b"}, model=EDGE, units=units)
    sim.relate("a", "out", "b", "in")
    return sim


@pytest.mark.parametrize("seed", range(5))
def test_hook_order_follows_juju_guarantees(seed: int):
    sim = echo_pair(seed, units=3)
    sim.run()
    seen: dict[str, list[str]] = {}
    for line in sim.log:
        unit, kind, *rest = line.split()
        seen.setdefault(unit, []).append(" ".join([kind, *rest]))
    for unit, hooks in seen.items():
        kinds = [h.split()[0] for h in hooks]
        assert kinds[0] == "install", unit
        assert kinds.index("start") < min(
            (i for i, k in enumerate(kinds) if k == "relation_joined"), default=len(kinds)
        )
        for i, hook in enumerate(hooks):
            if hook.startswith("relation_changed") and "remote=" in hook:
                joined = hook.replace("relation_changed", "relation_joined")
                assert joined in hooks[:i], f"{unit}: {hook} before its joined"
            if hook.startswith(("relation_joined", "relation_changed")):
                rel = hook.split()[1]
                assert f"relation_created {rel}" in hooks[:i], f"{unit}: {hook} before created"


def run_log(seed: int) -> list[str]:
    sim = echo_pair(seed)
    sim.run()
    return sim.log


def test_same_seed_same_run_and_other_seeds_differ():
    assert run_log(7) == run_log(7)
    assert len({tuple(run_log(seed)) for seed in range(6)}) > 1


def test_changed_data_wakes_the_other_side_and_equal_data_does_not():
    sim = echo_pair(1)
    sim.run()
    assert sim.pending() == 0
    before = sim.stats.copy()
    for event in sim.every_event():
        sim.replay(event)
    assert sim.stats.minus(before).writes == 0
    assert sim.pending() == 0  # equal values were written again: nobody is woken up
    rel = next(r for r in sim.relations.values() if not r.is_peer)
    assert all(rel.unit_data[f"b/{n}"].get("seen") is None for n in (0, 1))
    assert all(rel.unit_data[f"a/{n}"]["seen"] == "yes" for n in (0, 1))
    assert rel.app_data["a"] == {"app": "yes"}


def test_only_the_leader_may_write_application_data(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(EchoCharm, "writes_app_data_as_non_leader", True)
    sim = echo_pair(3)
    with pytest.raises(SimulationError, match="raised"):
        sim.run()


def test_scale_down_lowers_planned_units_at_once_and_peers_see_the_unit_depart():
    sim = echo_pair(2, units=3)
    sim.run()
    sim.remove_unit("a", 0)  # the leader goes: leadership moves
    assert sim.apps["a"].planned_units == 2
    assert sim.apps["a"].leader == 1
    sim.run()
    assert set(sim.apps["a"].units) == {1, 2}
    peer = next(r for r in sim.relations.values() if r.is_peer and r.ends[0].app == "a")
    assert peer.sees["a/1"] == {"a/2"}
    assert any(line.startswith("a/1 leader_elected") for line in sim.log)


def test_cross_model_grafana_knows_our_units_as_remote_hash_names():
    world = build(Topology(units=2, grafanas=(GrafanaSpec(cross_model=True),)), seed=5)
    world.sim.run()
    rel_id = world.source_relations["grafana"]
    bag = world.sim.app_bag(rel_id, "grafana")
    alias = remote_app_alias("bridge", rel_id)
    assert set(json.loads(bag["datasource_uids"])) == {f"{alias}/0", f"{alias}/1"}
    answer = grafana_answer(world, "grafana")
    assert answer is not None
    assert answer[1] == {n: f"juju_edge_{EDGE.uuid}_bridge_{n}" for n in (0, 1)}
    assert answer[0] == f"juju_cos_{COS.uuid}_grafana_0"


def test_tempo_like_charm_publishes_its_uid_per_grafana():
    sim = Simulation(4)
    sim.add_app("grafana", GrafanaLikeCharm, GRAFANA_META, model=COS, units=1)
    sim.add_app("tempo", TempoLikeCharm, TEMPO_META, model=COS, units=1)
    sim.add_app("other", TempoLikeCharm, {**TEMPO_META, "name": "other"}, model=COS, units=1)
    sim.relate("tempo", "grafana-source", "grafana", "grafana-source")
    exchange = sim.relate("tempo", "send-datasource", "other", "receive-datasource")
    sim.run()
    entries = json.loads(exchange.app_data["tempo"]["datasources"])
    assert entries == [
        {
            "type": "tempo",
            "uid": f"juju_cos_{COS.uuid}_tempo_0",
            "grafana_uid": f"juju_cos_{COS.uuid}_grafana_0",
        }
    ]
