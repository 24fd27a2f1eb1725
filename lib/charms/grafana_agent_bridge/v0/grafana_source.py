# Copyright 2026 grafana-agent-bridge contributors
# See LICENSE file for licensing details.
"""Both sides of the ``grafana_datasource`` interface, wire-compatible with grafana-k8s v0.

Written for machine charms. The v0 library of grafana-k8s refreshes a provider's advertised
host on a container's pebble-ready event and builds it from ``socket.getfqdn()``; a machine
charm has neither a container nor a name that Kubernetes pods can resolve. Here nothing is
observed on the provider side: the charm calls :meth:`GrafanaSourceProvider.update_source`
from its reconcile, on every event, with the URL it computed (e.g. from
:meth:`GrafanaSourceProvider.ingress_url`).

Wire format (what grafana-k8s reads and writes):

* provider unit databag: ``grafana_source_host``, the URL of this unit's datasource
  (``""`` means "not a datasource");
* provider app databag (leader): ``grafana_source_data``, JSON of ``{model, model_uuid,
  application, type, extra_fields, secure_extra_fields}``; the extra fields are JSON objects
  (Grafana's ``jsonData``/``secureJsonData``) or ``null``;
* requirer (Grafana) app databag: ``grafana_uid``, ``datasource_uids`` (JSON object from the
  provider unit name, as Grafana sees it, to the datasource UID) and ``grafana_base_url``.

The requirer side, :class:`GrafanaSourceConsumer`, is what a Grafana charm runs: it names each
datasource ``juju_<model>_<model_uuid>_<application>_<unit number>``, keeps its ``sources`` and
``sources_to_delete`` in its peer relation's application data (so they survive leader
changes), publishes the UIDs back, and emits :class:`SourcesChangedEvent` and
:class:`SourcesToDeleteChangedEvent`. Invalid remote data is ignored and nothing is written.

Remote data is untrusted (cross-model relations): every value is read through
``charms.grafana_agent_bridge.v0.remote_data`` (size and nesting bounds before parsing,
printable strings only), and anything else raises :class:`InvalidRemoteDataError`, never
another exception.

Every write is conditional: a databag key is only set when its value differs, so a settled
model produces no relation-changed events.
"""

from __future__ import annotations

import ipaddress
import json
import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import ops

from charms.grafana_agent_bridge.v0.remote_data import (
    MAX_URL_CHARS,
    RemoteDataError,
    clean_text,
    load_json,
)

# The unique identifier of this library.
LIBID = "eb1c7d587c3e44d3b763bfcf50cb5871"
# Increment this major API version when introducing breaking changes.
LIBAPI = 0
# Increment this PATCH version before using `charmcraft publish-lib` or reset to 0 when
# bumping LIBAPI.
LIBPATCH = 3

logger = logging.getLogger(__name__)

INTERFACE_NAME = "grafana_datasource"
DEFAULT_RELATION_NAME = "grafana-source"
DEFAULT_PEER_RELATION_NAME = "grafana"

SOURCE_HOST_KEY = "grafana_source_host"
SOURCE_DATA_KEY = "grafana_source_data"
GRAFANA_UID_KEY = "grafana_uid"
DATASOURCE_UIDS_KEY = "datasource_uids"
GRAFANA_BASE_URL_KEY = "grafana_base_url"
PEER_SOURCES_KEY = "sources"
PEER_SOURCES_TO_DELETE_KEY = "sources_to_delete"

# A unit number is ASCII digits only: "²".isdigit() is true but int("²") raises, int("٣") is 3.
_UNIT_NUMBER = re.compile(r"[0-9]{1,9}")


class InvalidRemoteDataError(ValueError):
    """A remote databag does not follow the interface; the caller must ignore it."""

    def __init__(self, key: str, reason: str):
        super().__init__(f"{key} {reason}")
        self.key = key
        """The databag key whose value is unusable."""


def _canonical_json(value: Any) -> str:
    """Serialise deterministically, so equal content compares equal as a databag string."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def _set_if_changed(databag: ops.RelationDataContent, key: str, value: str) -> bool:
    """Write one key only when it changes: every write may wake the remote side up."""
    if databag.get(key, "") == value:
        return False
    databag[key] = value
    return True


def unit_number(unit_name: str) -> int | None:
    """Return N for ``<app>/N``, or None for anything else.

    Matching is done on unit numbers because under cross-model relations Grafana may know our
    units under another application name.
    """
    app, sep, number = unit_name.rpartition("/")
    if not sep or not app or not _UNIT_NUMBER.fullmatch(number):
        return None
    return int(number)


@dataclass(frozen=True)
class GrafanaSourceData:
    """What one Grafana told a provider on one relation."""

    grafana_uid: str
    datasource_uids: dict[str, str]
    """Datasource UID per provider unit name, as Grafana sees the unit names."""
    external_url: str | None

    @property
    def uids_by_unit_number(self) -> dict[int, str]:
        """The datasource UIDs keyed by unit number (see :func:`unit_number`)."""
        result: dict[int, str] = {}
        for name in sorted(self.datasource_uids):
            number = unit_number(name)
            if number is not None:
                result[number] = self.datasource_uids[name]
        return result


def parse_requirer_app_data(databag: Mapping[str, str]) -> GrafanaSourceData | None:
    """Read Grafana's answer; None when it has not answered yet.

    Raises:
        InvalidRemoteDataError: the databag holds something that is not a valid answer.
    """
    raw_grafana_uid = databag.get(GRAFANA_UID_KEY, "")
    raw_uids = databag.get(DATASOURCE_UIDS_KEY, "")
    if not raw_grafana_uid and not raw_uids:
        return None
    if not raw_grafana_uid:
        raise InvalidRemoteDataError(DATASOURCE_UIDS_KEY, f"without {GRAFANA_UID_KEY}")
    try:
        grafana_uid = clean_text(raw_grafana_uid)
    except RemoteDataError as e:
        raise InvalidRemoteDataError(GRAFANA_UID_KEY, str(e)) from None
    try:
        uids = load_json(raw_uids) if raw_uids else {}
        if not isinstance(uids, dict):
            raise RemoteDataError("is not a JSON object")
        checked: dict[str, str] = {}
        for name, uid in uids.items():  # pyright: ignore[reportUnknownVariableType]
            if unit_number(clean_text(name)) is None:
                raise RemoteDataError("has a key that is not a unit name")
            checked[name] = clean_text(uid)
    except RemoteDataError as e:
        raise InvalidRemoteDataError(DATASOURCE_UIDS_KEY, str(e)) from None
    try:
        base_url: str | None = clean_text(
            databag.get(GRAFANA_BASE_URL_KEY), max_chars=MAX_URL_CHARS
        )
    except RemoteDataError:
        base_url = None  # informative only: a bad one is not worth refusing the answer for
    return GrafanaSourceData(grafana_uid, checked, base_url)


@dataclass(frozen=True)
class SourceDescription:
    """The provider application's ``grafana_source_data``."""

    model: str
    model_uuid: str
    application: str
    type: str
    extra_fields: dict[str, Any] | None = None
    secure_extra_fields: dict[str, Any] | None = None

    def to_json(self) -> str:
        # Both extra keys are always written (null when unset), as the v0 library does.
        return _canonical_json(
            {
                "model": self.model,
                "model_uuid": self.model_uuid,
                "application": self.application,
                "type": self.type,
                "extra_fields": self.extra_fields,
                "secure_extra_fields": self.secure_extra_fields,
            }
        )

    @classmethod
    def from_json(cls, raw: str) -> SourceDescription:
        """Parse and validate; raises InvalidRemoteDataError."""
        try:
            data = load_json(raw)
        except RemoteDataError as e:
            raise InvalidRemoteDataError(SOURCE_DATA_KEY, str(e)) from None
        if not isinstance(data, dict):
            raise InvalidRemoteDataError(SOURCE_DATA_KEY, "must be a JSON object")
        fields: dict[str, Any] = dict(data)  # pyright: ignore[reportUnknownArgumentType]
        strings: dict[str, str] = {}
        for key in ("model", "model_uuid", "application", "type"):
            try:
                strings[key] = clean_text(fields.get(key))
            except RemoteDataError as e:
                raise InvalidRemoteDataError(f"{SOURCE_DATA_KEY}.{key}", str(e)) from None
        extras: dict[str, dict[str, Any] | None] = {}
        for key in ("extra_fields", "secure_extra_fields"):
            value = fields.get(key)
            if value is not None and not isinstance(value, dict):
                raise InvalidRemoteDataError(
                    f"{SOURCE_DATA_KEY}.{key}", "must be an object or null"
                )
            extras[key] = value  # pyright: ignore[reportUnknownArgumentType]
        return cls(
            model=strings["model"],
            model_uuid=strings["model_uuid"],
            application=strings["application"],
            type=strings["type"],
            extra_fields=extras["extra_fields"],
            secure_extra_fields=extras["secure_extra_fields"],
        )


def ingress_url(
    model: ops.Model, relation: ops.Relation, port: int, *, scheme: str = "http", path: str = ""
) -> str | None:
    """The URL at which the remote side of ``relation`` can reach this unit.

    This is the ingress address Juju gives for this relation (the public address under
    cross-model relations), never the host's FQDN; an IPv6 address is bracketed. None when
    Juju has no address for it. Any relation of the charm works, not only grafana-source.
    """
    try:
        binding = model.get_binding(relation)
        address = binding.network.ingress_address if binding else None
    except ops.ModelError as e:
        logger.warning("no network for relation %s: %s", relation.id, e)
        return None
    if address is None:
        return None
    host = f"[{address}]" if isinstance(address, ipaddress.IPv6Address) else str(address)
    return f"{scheme}://{host}:{port}{path}"


def _validate_endpoint(charm: ops.CharmBase, relation_name: str, role: ops.RelationRole) -> None:
    endpoints = charm.meta.provides if role is ops.RelationRole.provides else charm.meta.requires
    if relation_name not in endpoints:
        raise ValueError(f"endpoint {relation_name!r} is not a '{role.name}' endpoint")
    interface = endpoints[relation_name].interface_name
    if interface != INTERFACE_NAME:
        raise ValueError(f"endpoint {relation_name!r} has interface {interface!r}")


class GrafanaSourceProvider(ops.Object):
    """The datasource side: advertise each unit's URL, describe the datasource, read UIDs.

    Nothing is observed: call :meth:`update_source` on every event (from a reconcile), since a
    machine unit's address can change without any relation event.
    """

    def __init__(
        self,
        charm: ops.CharmBase,
        source_type: str,
        *,
        relation_name: str = DEFAULT_RELATION_NAME,
    ):
        _validate_endpoint(charm, relation_name, ops.RelationRole.provides)
        super().__init__(charm, relation_name)
        self._charm = charm
        self._relation_name = relation_name
        self.source_type = source_type

    @property
    def relations(self) -> list[ops.Relation]:
        return list(self._charm.model.relations.get(self._relation_name, ()))

    def ingress_url(
        self, relation: ops.Relation, port: int, *, scheme: str = "http", path: str = ""
    ) -> str | None:
        """The URL at which the remote side can reach this unit (see :func:`ingress_url`)."""
        return ingress_url(self._charm.model, relation, port, scheme=scheme, path=path)

    def update_source(
        self,
        relation: ops.Relation,
        *,
        url: str,
        extra_fields: dict[str, Any] | None = None,
        secure_extra_fields: dict[str, Any] | None = None,
    ) -> bool:
        """Publish this unit's URL and, on the leader, the datasource description.

        Returns whether any databag key was written.
        """
        changed = _set_if_changed(relation.data[self._charm.unit], SOURCE_HOST_KEY, url)
        if self._charm.unit.is_leader():
            description = SourceDescription(
                model=self._charm.model.name,
                model_uuid=self._charm.model.uuid,
                application=self._charm.app.name,
                type=self.source_type,
                extra_fields=extra_fields,
                secure_extra_fields=secure_extra_fields,
            )
            app_bag = relation.data[self._charm.app]
            changed |= _set_if_changed(app_bag, SOURCE_DATA_KEY, description.to_json())
        return changed

    def source_data(self, relation: ops.Relation) -> GrafanaSourceData | None:
        """Grafana's answer on this relation; None if none yet or if it is invalid."""
        try:
            return self.read_source_data(relation)
        except InvalidRemoteDataError:
            return None

    def read_source_data(self, relation: ops.Relation) -> GrafanaSourceData | None:
        """Grafana's answer on this relation; None if none yet.

        Raises:
            InvalidRemoteDataError: the answer is unusable (logged here; ``key`` names it).
        """
        if relation.app is None:
            return None
        try:
            return parse_requirer_app_data(relation.data[relation.app])
        except InvalidRemoteDataError as e:
            logger.warning("ignoring invalid data from %s: %s", relation.app.name, e)
            raise

    def get_source_data(self) -> dict[str, GrafanaSourceData]:
        """Every related Grafana's answer, keyed by ``grafana_uid``."""
        result: dict[str, GrafanaSourceData] = {}
        for relation in self.relations:
            data = self.source_data(relation)
            if data is not None:
                result[data.grafana_uid] = data
        return result

    def get_source_uids(self) -> dict[str, dict[str, str]]:
        """``{grafana_uid: {unit name: datasource uid}}``, as grafana-k8s v0 offers it."""
        return {uid: data.datasource_uids for uid, data in self.get_source_data().items()}


# ---------------------------------------------------------------------------------------------
# Requirer (Grafana) side


class SourcesChangedEvent(ops.EventBase):
    """The set of datasources to provision changed."""


class SourcesToDeleteChangedEvent(ops.EventBase):
    """The set of datasource names to delete from Grafana changed."""


class GrafanaSourceEvents(ops.ObjectEvents):
    sources_changed = ops.EventSource(SourcesChangedEvent)
    sources_to_delete_changed = ops.EventSource(SourcesToDeleteChangedEvent)


def source_name(description: SourceDescription, unit_name: str) -> str | None:
    """The datasource name (the exchanged "UID") Grafana gives one provider unit."""
    number = unit_number(unit_name)
    if number is None:
        return None
    return f"juju_{description.model}_{description.model_uuid}_{description.application}_{number}"


class GrafanaSourceConsumer(ops.Object):
    """The Grafana side: turn providers' data into datasources and answer with their UIDs.

    Only the leader computes and writes; every unit reads :attr:`sources` and
    :attr:`sources_to_delete` from the peer relation and gets :class:`SourcesChangedEvent` on
    peer relation-changed, so it can render its provisioning file.
    """

    on = GrafanaSourceEvents()  # pyright: ignore[reportAssignmentType]

    def __init__(
        self,
        charm: ops.CharmBase,
        *,
        relation_name: str = DEFAULT_RELATION_NAME,
        peer_relation_name: str = DEFAULT_PEER_RELATION_NAME,
        grafana_base_url: str | None = None,
    ):
        _validate_endpoint(charm, relation_name, ops.RelationRole.requires)
        super().__init__(charm, f"{relation_name}-consumer")
        self._charm = charm
        self._relation_name = relation_name
        self._peer_relation_name = peer_relation_name
        self._grafana_base_url = grafana_base_url
        events = charm.on[relation_name]
        for event in (
            events.relation_joined,
            events.relation_changed,
            events.relation_departed,
            events.relation_broken,
        ):
            self.framework.observe(event, self._on_source_relation_event)
        self.framework.observe(charm.on[peer_relation_name].relation_changed, self._on_peer)
        self.framework.observe(charm.on.leader_elected, self._on_source_relation_event)

    @property
    def grafana_uid(self) -> str:
        """``juju_<model>_<uuid>_<app>_<unit number>`` of the unit that answers (the leader)."""
        model = self._charm.model
        number = unit_number(self._charm.unit.name)
        return f"juju_{model.name}_{model.uuid}_{self._charm.app.name}_{number}"

    def _peer_relation(self) -> ops.Relation | None:
        return self._charm.model.get_relation(self._peer_relation_name)

    def _load_peer(self, key: str, default: Any) -> Any:
        relation = self._peer_relation()
        if relation is None:
            return default
        raw = relation.data[self._charm.app].get(key, "")
        if not raw:
            return default
        try:
            value = load_json(raw, max_chars=16 << 20)
        except RemoteDataError as e:
            logger.error("peer data %s %s; starting afresh", key, e)
            return default
        return value if isinstance(value, type(default)) else default

    @property
    def sources(self) -> list[dict[str, Any]]:
        """Every datasource to provision: ``{unit, source_name, source_type, url, ...}``."""
        stored: dict[str, list[dict[str, Any]]] = self._load_peer(PEER_SOURCES_KEY, {})
        return [source for rel_id in sorted(stored, key=str) for source in stored[rel_id]]

    @property
    def sources_to_delete(self) -> list[str]:
        """Datasource names that were removed and must be deleted from Grafana."""
        return list(self._load_peer(PEER_SOURCES_TO_DELETE_KEY, []))

    def _on_peer(self, _: ops.EventBase) -> None:
        self.on.sources_changed.emit()

    def _on_source_relation_event(self, event: ops.EventBase) -> None:
        departing = event.departing_unit if isinstance(event, ops.RelationDepartedEvent) else None
        self.reconcile(departing_unit=departing)

    def _relation_sources(
        self, relation: ops.Relation, departing_unit: ops.Unit | None
    ) -> list[dict[str, Any]] | None:
        """The sources a relation asks for; None when its data is missing or invalid."""
        if relation.app is None:
            return None
        raw = relation.data[relation.app].get(SOURCE_DATA_KEY, "")
        if not raw:
            return None
        try:
            description = SourceDescription.from_json(raw)
        except InvalidRemoteDataError as e:
            logger.warning("ignoring invalid data from %s: %s", relation.app.name, e)
            return None
        sources: list[dict[str, Any]] = []
        for unit in sorted(relation.units, key=lambda u: u.name):
            if departing_unit is not None and unit.name == departing_unit.name:
                continue
            try:
                host = clean_text(
                    relation.data[unit].get(SOURCE_HOST_KEY), max_chars=MAX_URL_CHARS
                )
            except RemoteDataError:
                continue  # absent, or not a usable URL
            name = source_name(description, unit.name)
            if name is None:
                continue
            source: dict[str, Any] = {
                "unit": unit.name,
                "source_name": name,
                "source_type": description.type,
                "url": host if "://" in host else f"http://{host}",
            }
            if description.extra_fields is not None:
                source["extra_fields"] = description.extra_fields
            if description.secure_extra_fields is not None:
                source["secure_extra_fields"] = description.secure_extra_fields
            sources.append(source)
        return sources

    def reconcile(self, departing_unit: ops.Unit | None = None) -> None:
        """Recompute every source from scratch (leader only) and write what changed."""
        if not self._charm.unit.is_leader():
            return
        peer = self._peer_relation()
        if peer is None:
            logger.info("no peer relation yet; cannot store datasources")
            return
        old_sources: dict[str, list[dict[str, Any]]] = self._load_peer(PEER_SOURCES_KEY, {})
        new_sources: dict[str, list[dict[str, Any]]] = {}
        answers: list[tuple[ops.Relation, list[dict[str, Any]]]] = []
        for relation in self._charm.model.relations.get(self._relation_name, ()):
            sources = self._relation_sources(relation, departing_unit)
            if sources is None:
                # Missing or invalid data: keep what this relation had, write nothing to it.
                if str(relation.id) in old_sources:
                    new_sources[str(relation.id)] = old_sources[str(relation.id)]
                continue
            new_sources[str(relation.id)] = sources
            answers.append((relation, sources))

        old_names = {s["source_name"] for group in old_sources.values() for s in group}
        new_names = {s["source_name"] for group in new_sources.values() for s in group}
        old_to_delete = sorted(set(self.sources_to_delete))
        to_delete = sorted((set(old_to_delete) | (old_names - new_names)) - new_names)

        # Compare content, not strings: an absent key and an empty value mean the same.
        app_bag = peer.data[self._charm.app]
        sources_changed = new_sources != old_sources
        if sources_changed:
            app_bag[PEER_SOURCES_KEY] = _canonical_json(new_sources)
        delete_changed = to_delete != old_to_delete
        if delete_changed:
            app_bag[PEER_SOURCES_TO_DELETE_KEY] = _canonical_json(to_delete)
        for relation, sources in answers:
            self._publish_uids(relation, sources)
        if sources_changed:
            self.on.sources_changed.emit()
        if delete_changed:
            self.on.sources_to_delete_changed.emit()

    def _publish_uids(self, relation: ops.Relation, sources: list[dict[str, Any]]) -> None:
        bag = relation.data[self._charm.app]
        uids = {source["unit"]: source["source_name"] for source in sources}
        _set_if_changed(bag, GRAFANA_UID_KEY, self.grafana_uid)
        _set_if_changed(bag, DATASOURCE_UIDS_KEY, _canonical_json(uids))
        if self._grafana_base_url:
            _set_if_changed(bag, GRAFANA_BASE_URL_KEY, self._grafana_base_url)
