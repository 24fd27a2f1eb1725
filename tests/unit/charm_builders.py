"""Builders and helpers shared by the charm's ops.testing tests."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Iterable
from typing import Any

from ops import testing

from charm import GrafanaAgentBridgeCharm

APP = "grafana-agent-bridge"


@dataclasses.dataclass
class Writes:
    """Every relation-set the charm issued: (relation id, keys and values, is_app)."""

    calls: list[tuple[int, dict[str, str], bool]] = dataclasses.field(default_factory=list)

    def to(self, relation: testing.RelationBase) -> list[dict[str, str]]:
        return [data for rel_id, data, _ in self.calls if rel_id == relation.id]

    def clear(self) -> None:
        self.calls.clear()


def grafana(
    app: str,
    grafana_uid: str | None,
    units: Iterable[int] = (),
    *,
    unit_app: str = APP,
    base_url: str | None = None,
) -> testing.Relation:
    """A grafana-source relation whose Grafana assigned UIDs for the given unit numbers."""
    remote: dict[str, str] = {}
    if grafana_uid is not None:
        remote["grafana_uid"] = grafana_uid
        remote["datasource_uids"] = json.dumps({f"{unit_app}/{n}": ds_uid(app, n) for n in units})
    if base_url:
        remote["grafana_base_url"] = base_url
    return testing.Relation("grafana-source", remote_app_name=app, remote_app_data=remote)


def ds_uid(grafana_app: str, n: int) -> str:
    """The datasource name a Grafana gives our unit n (distinct per Grafana for the tests)."""
    return f"juju_m_{grafana_app}_{APP}_{n}"


def answer(relation: testing.Relation, grafana_uid: str, units: Iterable[int]):
    """The same relation after Grafana answered for more units."""
    data = dict(relation.remote_app_data)
    data["grafana_uid"] = grafana_uid
    data["datasource_uids"] = json.dumps(
        {f"{APP}/{n}": ds_uid(relation.remote_app_name, n) for n in units}
    )
    return dataclasses.replace(relation, remote_app_data=data)


def peers(*others: int) -> testing.PeerRelation:
    return testing.PeerRelation("peers", peers_data={n: {} for n in others})


def exchange_out(state: testing.State, relation: testing.RelationBase) -> list[dict[str, str]]:
    return json.loads(state.get_relation(relation.id).local_app_data["datasources"])


def source_data(state: testing.State, relation: testing.RelationBase) -> dict[str, Any]:
    return json.loads(state.get_relation(relation.id).local_app_data["grafana_source_data"])


def replace_relation(
    state: testing.State, old: testing.RelationBase, new: testing.RelationBase
) -> testing.State:
    relations = {r for r in state.relations if r.id != old.id} | {new}
    return dataclasses.replace(state, relations=relations)


def databags(state: testing.State) -> dict[int, tuple[dict[str, str], dict[str, str]]]:
    return {
        r.id: (dict(r.local_app_data), dict(r.local_unit_data))
        for r in sorted(state.relations, key=lambda r: r.id)
    }


def settle(
    ctx: testing.Context[GrafanaAgentBridgeCharm],
    state: testing.State,
    event: Callable[[], testing.context._Event] | None = None,  # type: ignore[name-defined]
) -> testing.State:
    """Run an event, then update-status until no databag changes (at most 5 rounds)."""
    state = ctx.run(event() if event else ctx.on.update_status(), state)
    for _ in range(5):
        after = ctx.run(ctx.on.update_status(), state)
        if databags(after) == databags(state):
            return after
        state = after
    raise AssertionError("the charm did not settle in 5 runs")
