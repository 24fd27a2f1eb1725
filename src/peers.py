"""The peer relation's databags, typed: what the units tell each other and the leader keeps.

Application databag (written by the leader):

* ``datasource-uids``: the :class:`datasources.UidRecord` (its own typed JSON model);
* ``query-auth-secret-id`` and ``query-auth-token-sha256``: where the query token lives, and a
  short digest that changes with it (:class:`TokenShare`, see ``query_token``).

Unit databag (each unit its own): ``departed-units``, the unit numbers it saw depart while some
Grafana still lists them (:class:`UnitNotes`).

A peer databag is remote data to every other unit (and to a later leader), so each one is read
through a pydantic model with bounds; a bad value is dropped, logged and returned in
:attr:`Peers.ignored` for the status, never trusted. Writes touch only keys whose value
differs, so an unchanged hook sends no relation-changed to the peers.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Mapping
from typing import Annotated

import ops
import pydantic

from charms.grafana_agent_bridge.v0.grafana_source import unit_number
from charms.grafana_agent_bridge.v0.remote_data import (
    Ignored,
    RemoteDataError,
    clean_text,
    load_json,
)
from datasources import UidRecord

logger = logging.getLogger(__name__)

PEER_RELATION = "peers"
UID_RECORD_KEY = "datasource-uids"
DEPARTED_KEY = "departed-units"
QUERY_TOKEN_SECRET_KEY = "query-auth-secret-id"
QUERY_TOKEN_FINGERPRINT_KEY = "query-auth-token-sha256"
MAX_UNIT_NUMBER = 10**9

UnitNumber = Annotated[pydantic.StrictInt, pydantic.Field(ge=0, lt=MAX_UNIT_NUMBER)]


def _json_list(raw: object) -> object:
    """A JSON value from the databag, bounded before parsing; absent or empty is ``[]``."""
    return [] if raw in (None, "") else load_json(raw)


def _secret_uri(raw: object) -> object:
    if raw in (None, ""):
        return None
    text = clean_text(raw)
    if not text.startswith("secret:"):
        raise RemoteDataError("is not a secret URI")
    return text


class UnitNotes(pydantic.BaseModel):
    """One unit's own peer databag."""

    model_config = pydantic.ConfigDict(frozen=True, populate_by_name=True)

    departed_units: Annotated[tuple[UnitNumber, ...], pydantic.BeforeValidator(_json_list)] = (
        pydantic.Field(default=(), alias=DEPARTED_KEY)
    )
    """Unit numbers this unit saw depart (relation-departed) that a Grafana still lists."""

    def databag(self) -> dict[str, str]:
        """The keys as written: an empty list is no key at all (``""`` deletes it)."""
        numbers = sorted(set(self.departed_units))
        return {DEPARTED_KEY: json.dumps(numbers) if numbers else ""}


class TokenShare(pydantic.BaseModel):
    """Where the query token is, in the peer application databag (leader writes)."""

    model_config = pydantic.ConfigDict(frozen=True, populate_by_name=True)

    secret_id: Annotated[str | None, pydantic.BeforeValidator(_secret_uri)] = pydantic.Field(
        default=None, alias=QUERY_TOKEN_SECRET_KEY
    )
    fingerprint: str = pydantic.Field(default="", alias=QUERY_TOKEN_FINGERPRINT_KEY)
    """A short digest of the token (never the token): changes with every new revision.

    Nobody reads it (it only makes a new revision a peer relation-changed), so it is not
    validated: a garbled one must not hide the secret ID.
    """


def _reason(error: pydantic.ValidationError, fallback: str) -> str:
    """What was wrong, for the log: our own RemoteDataError's words when it raised."""
    for detail in error.errors():
        cause = (detail.get("ctx") or {}).get("error")
        if isinstance(cause, RemoteDataError):
            return str(cause)
    return fallback


def write_changed(bag: ops.RelationDataContent, values: Mapping[str, str]) -> None:
    """Set only the keys whose value differs (absent and ``""`` are the same: no key)."""
    for key, value in values.items():
        if bag.get(key, "") != value:
            bag[key] = value


class Peers:
    """The peer relation during one hook: typed reads (cached), minimal writes.

    ``departing`` names the units Juju still lists during their relation-departed hook.
    """

    def __init__(self, relation: ops.Relation, model: ops.Model, departing: Iterable[str] = ()):
        self.relation = relation
        self._app = model.app
        self._unit = model.unit
        self._departing = set(departing)
        self._notes: dict[str, UnitNotes] = {}
        self.ignored: list[Ignored] = []
        """Bad peer values dropped so far in this hook, for the status."""

    @classmethod
    def of(cls, model: ops.Model, departing: Iterable[str] = ()) -> Peers | None:
        relation = model.get_relation(PEER_RELATION)
        return None if relation is None else cls(relation, model, departing)

    # -- who is here ----------------------------------------------------------------------

    def live_units(self) -> set[int]:
        """Unit numbers of the live units: the peers plus this one, minus the departing."""
        names = ({u.name for u in self.relation.units} | {self._unit.name}) - self._departing
        return {n for n in map(unit_number, names) if n is not None}

    def departing_now(self) -> set[int]:
        """Unit numbers departing in this very hook."""
        return {n for n in map(unit_number, self._departing) if n is not None}

    # -- the UID record (app databag) -----------------------------------------------------

    def uid_record(self) -> UidRecord:
        """The record as the leader last wrote it; unreadable is empty (and logged)."""
        return UidRecord.from_json(self.relation.data[self._app].get(UID_RECORD_KEY, ""))

    def write_uid_record(self, record: UidRecord) -> None:
        """Leader only."""
        write_changed(self.relation.data[self._app], {UID_RECORD_KEY: record.to_json()})

    # -- departures (unit databags) -------------------------------------------------------

    def notes_of(self, unit: ops.Unit) -> UnitNotes:
        """What ``unit`` noted in its peer databag; a bad value counts as nothing noted."""
        cached = self._notes.get(unit.name)
        if cached is not None:
            return cached
        try:
            notes = UnitNotes.model_validate(dict(self.relation.data[unit]))
        except pydantic.ValidationError as e:
            reason = _reason(e, "is not a list of unit numbers")
            logger.warning("ignoring the %s of %s: it %s", DEPARTED_KEY, unit.name, reason)
            self.ignored.append(Ignored(f"bad {DEPARTED_KEY}", unit.name))
            notes = UnitNotes()
        self._notes[unit.name] = notes
        return notes

    def departures_seen(self) -> set[int]:
        """Unit numbers any unit (this one included) saw depart.

        A unit may run relation-departed before it becomes leader; what it saw then must still
        count once it leads, so every unit notes departures in its own peer databag.
        """
        seen: set[int] = set()
        for unit in {*self.relation.units, self._unit}:
            seen |= set(self.notes_of(unit).departed_units)
        return seen

    def note_departures(self, still_listed: set[int]) -> None:
        """Keep in this unit's databag the departures it saw that a Grafana still lists."""
        mine = set(self.notes_of(self._unit).departed_units) | self.departing_now()
        notes = UnitNotes.model_validate(
            {DEPARTED_KEY: json.dumps([n for n in mine if n in still_listed])}
        )
        write_changed(self.relation.data[self._unit], notes.databag())

    # -- the query token's whereabouts (app databag) --------------------------------------

    def token_share(self) -> TokenShare:
        """What the leader shared about the query token; a bad value is nothing shared."""
        bag = self.relation.data[self._app]
        try:
            return TokenShare.model_validate(dict(bag))
        except pydantic.ValidationError as e:
            reason = _reason(e, "is not a secret URI")
            logger.warning("ignoring the shared %s: it %s", QUERY_TOKEN_SECRET_KEY, reason)
            self.ignored.append(Ignored(f"bad {QUERY_TOKEN_SECRET_KEY}", self._app.name))
            return TokenShare()

    def share_token(self, secret_id: str, fingerprint: str | None) -> None:
        """Leader only; a None ``fingerprint`` leaves the shared one as it is."""
        values = {QUERY_TOKEN_SECRET_KEY: secret_id}
        if fingerprint is not None:
            values[QUERY_TOKEN_FINGERPRINT_KEY] = fingerprint
        write_changed(self.relation.data[self._app], values)
