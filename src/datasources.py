"""Which datasource UIDs each Grafana assigned to our units, and which of them to publish.

Pure functions over plain data, so the rules can be tested without Juju: the charm gathers
what Grafana said (:class:`GrafanaAnswer`), which units are alive and how many are planned,
and :func:`next_record` computes the new :class:`UidRecord` that the leader keeps in the peer
relation's application data.

The rules (SPEC §5):

* UIDs are matched to our units by unit *number*: under cross-model relations Grafana knows
  our units under another application name, and it may still list departed units.
* Only live units count; departed units are dropped.
* A Grafana's set is published only once every live unit has a UID from it and no planned
  unit is still missing; then all at once. Until then the last complete set (minus departed
  units) stays published.
* A Grafana whose relation data is missing or invalid keeps its previous record: garbage in a
  remote databag never clears good data.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import pydantic

from bridge_units import PROMETHEUS_COMPAT_VERSION
from charms.grafana_agent_bridge.v0.remote_data import RemoteDataError, load_json
from config import CharmConfig

logger = logging.getLogger(__name__)

DATASOURCE_TYPE = "prometheus"

AUTH_HEADER = "Authorization"
MAX_RECORD_CHARS = 16 << 20
"""The UID record: every Grafana's UIDs for every unit, well under this for real models."""


def json_data(
    config: CharmConfig, tempo_uid: str | None, *, auth_header: bool = False
) -> dict[str, Any]:
    """Grafana's ``jsonData`` for our datasource (the provider's ``extra_fields``).

    With ``auth_header``, Grafana sends header 1 on every query; its value (the bearer token)
    travels in ``secureJsonData`` (:func:`secure_json_data`), which Grafana stores encrypted.
    """
    data: dict[str, Any] = {
        "httpMethod": "POST",
        "timeInterval": config.scrape_interval,
        "prometheusType": "Prometheus",
        "prometheusVersion": PROMETHEUS_COMPAT_VERSION,  # what buildinfo says
        # The bridge serves no rules: Grafana must not offer to manage alerts in it.
        "manageAlerts": False,
    }
    if auth_header:
        data["httpHeaderName1"] = AUTH_HEADER
    if tempo_uid:
        data["exemplarTraceIdDestinations"] = [
            {"datasourceUid": tempo_uid, "name": config.exemplar_trace_id_label}
        ]
    return data


def secure_json_data(token: str | None) -> dict[str, str] | None:
    """Grafana's ``secureJsonData``: the value of the auth header, when queries need a token."""
    return {"httpHeaderValue1": f"Bearer {token}"} if token else None


@dataclass(frozen=True)
class GrafanaAnswer:
    """What one grafana-source relation tells us now."""

    relation_id: int
    app: str
    """The remote application's name, for people (status, action output)."""
    grafana_uid: str | None
    """None when Grafana has not answered, or its answer is invalid."""
    uids_by_unit: dict[int, str] = field(default_factory=dict[int, str])


@dataclass(frozen=True)
class GrafanaRecord:
    relation_id: int
    app: str
    uids: dict[int, str]
    """Datasource UID per live unit number."""


@dataclass(frozen=True)
class UidRecord:
    """The leader's memory, in the peer relation: survives leader changes."""

    grafanas: dict[str, GrafanaRecord] = field(default_factory=dict[str, GrafanaRecord])
    published: dict[str, dict[int, str]] = field(default_factory=dict[str, dict[int, str]])
    """The last complete set of each Grafana, by ``grafana_uid``."""
    departed: frozenset[int] = frozenset()
    """Unit numbers a leader saw depart (relation-departed) that some Grafana may still list."""

    def to_json(self) -> str:
        """The peer databag value, canonical (sorted keys, no spaces): same record, same bytes."""
        wire = _RecordWire(
            grafanas={
                g: _GrafanaWire(relation=r.relation_id, app=r.app, uids=r.uids)
                for g, r in self.grafanas.items()
            },
            published=self.published,
            departed=sorted(self.departed),
        )
        data = wire.model_dump(mode="json")
        if not self.departed:  # absent when empty: records written before it stay byte-identical
            del data["departed"]
        return json.dumps(data, sort_keys=True, separators=(",", ":"))

    @classmethod
    def from_json(cls, raw: str) -> UidRecord:
        """Parse the peer data; an unreadable record is treated as empty (and logged)."""
        if not raw:
            return cls()
        try:
            # Our leader wrote it, but the peer databag is a remote databag to this unit.
            wire = _RecordWire.model_validate(load_json(raw, max_chars=MAX_RECORD_CHARS))
        except (RemoteDataError, pydantic.ValidationError) as e:
            logger.error("unreadable UID record in peer data (%s); starting afresh", e)
            return cls()
        grafanas = {
            g: GrafanaRecord(r.relation, r.app, dict(r.uids)) for g, r in wire.grafanas.items()
        }
        published = {g: dict(u) for g, u in wire.published.items()}
        return cls(grafanas, published, frozenset(wire.departed))


class _GrafanaWire(pydantic.BaseModel):
    """One Grafana in the record's JSON (unit numbers are object keys: strings on the wire)."""

    relation: int
    app: str
    uids: dict[int, str]


class _RecordWire(pydantic.BaseModel):
    """The UID record as the peer databag holds it (``datasource-uids``)."""

    grafanas: dict[str, _GrafanaWire]
    published: dict[str, dict[int, str]]
    departed: list[int] = pydantic.Field(default_factory=list[int])


@dataclass(frozen=True)
class Snapshot:
    """What this unit can see of the datasource lifecycle during one hook."""

    live_units: set[int] | None
    """Unit numbers of the live units (peers plus self); None without the peer relation."""
    planned_units: int
    answers: list[GrafanaAnswer]
    record: UidRecord | None
    """The UID record as it should be now; None without the peer relation."""


def next_record(
    previous: UidRecord,
    answers: Iterable[GrafanaAnswer],
    live: set[int],
    planned: int,
    departing: Iterable[int] = (),
) -> UidRecord:
    """The new record from the previous one and what the relations say now.

    The leader's own peer view can lag behind the model: a new leader may not have run
    relation-joined for a live peer yet, nor relation-departed for a unit that is gone. So a
    unit of the last complete set is dropped only when a leader saw it depart (``departing``
    now, or ``previous.departed``), or when it is not live and its Grafana no longer lists it;
    and a set is complete only when it also covers every such unit that is still there.
    """
    answers = sorted(answers, key=lambda a: a.relation_id)
    departed = set(previous.departed) | set(departing)
    # Only a Grafana that answers now can complete a set: one whose data is missing or garbled
    # keeps what it had (minus departed units), even when a departure would make it complete.
    answering = {a.grafana_uid for a in answers if a.grafana_uid is not None}
    grafanas: dict[str, GrafanaRecord] = {}
    for answer in answers:
        if answer.grafana_uid is not None:
            grafanas[answer.grafana_uid] = GrafanaRecord(
                answer.relation_id, answer.app, dict(answer.uids_by_unit)
            )
            continue
        for grafana_uid, kept in previous.grafanas.items():
            if kept.relation_id == answer.relation_id:
                grafanas[grafana_uid] = GrafanaRecord(kept.relation_id, answer.app, kept.uids)

    published: dict[str, dict[int, str]] = {}
    for grafana_uid, record in list(grafanas.items()):
        known = {n: u for n, u in record.uids.items() if n not in departed}
        before = previous.published.get(grafana_uid, {})
        # Units of the last complete set that are still around, seen by us or not.
        still_there = {n for n in before if n not in departed and (n in live or n in known)}
        required = (live - departed) | still_there
        uids = {n: u for n, u in known.items() if n in required}
        grafanas[grafana_uid] = GrafanaRecord(record.relation_id, record.app, uids)
        if grafana_uid in answering and len(required) >= planned and required <= uids.keys():
            published[grafana_uid] = uids
            continue
        kept_set = {n: u for n, u in before.items() if n in still_there}
        if kept_set:
            published[grafana_uid] = kept_set

    # Remember a departure while a Grafana still lists the unit (it may linger there, and a
    # leader whose peer view lags would otherwise take it back); unit numbers are not reused.
    remembered = frozenset(n for n in departed if any(n in a.uids_by_unit for a in answers))
    return UidRecord(grafanas, published, remembered)


@dataclass(frozen=True)
class Waiting:
    """A Grafana that has not yet given a UID to every live unit."""

    app: str
    missing_units: list[int]


def waiting_for(
    record: UidRecord, answers: Iterable[GrafanaAnswer], live: set[int]
) -> list[Waiting]:
    """Who is still missing UIDs, per grafana-source relation, for the status message."""
    by_relation = {r.relation_id: r for r in record.grafanas.values()}
    result: list[Waiting] = []
    for answer in sorted(answers, key=lambda a: a.relation_id):
        known = by_relation.get(answer.relation_id)
        uids = known.uids if known else {}
        missing = sorted(live - uids.keys())
        if missing:
            result.append(Waiting(answer.app, missing))
    return result


def listing(
    record: UidRecord, answers: Iterable[GrafanaAnswer], live: set[int], app_name: str
) -> list[dict[str, str | bool]]:
    """The ``list-datasources`` rows: per Grafana and unit, its UID and whether it is published."""
    rows: list[dict[str, str | bool]] = []
    known = {r.relation_id: (g, r) for g, r in record.grafanas.items()}
    for answer in answers:
        grafana_uid, kept = known.get(answer.relation_id, ("", None))
        uids = kept.uids if kept else {}
        published = record.published.get(grafana_uid, {})
        for number in sorted(live | uids.keys()):
            uid = uids.get(number, "")
            rows.append(
                {
                    "grafana": answer.app,
                    "grafana_uid": grafana_uid,
                    "unit": f"{app_name}/{number}",
                    "uid": uid,
                    "published": bool(uid) and published.get(number) == uid,
                }
            )
    return rows
