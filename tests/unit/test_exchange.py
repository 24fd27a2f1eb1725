"""Our exchange writer produces exactly what cosl's publish() would, without needless writes."""

from __future__ import annotations

import json

from cosl.interfaces.datasource_exchange import DatasourceExchange
from ops import testing

import exchange

ENTRIES = [
    {"type": "prometheus", "uid": "b", "grafana_uid": "g"},
    {"type": "prometheus", "uid": "a", "grafana_uid": "g"},
]


def test_databag_is_byte_for_byte_what_cosl_publishes(ctx):
    rel = testing.Relation("send-datasource", local_app_data={"stale": "x"})
    with ctx(ctx.on.update_status(), testing.State(leader=True, relations={rel})) as mgr:
        mgr.run()
        DatasourceExchange(
            mgr.charm, provider_endpoint="send-datasource", requirer_endpoint=None
        ).publish(ENTRIES)  # type: ignore[arg-type]
        by_cosl = dict(mgr.charm.model.get_relation("send-datasource").data[mgr.charm.app])
    assert exchange.databag_for(ENTRIES) == by_cosl
    assert json.loads(by_cosl["datasources"])[0]["uid"] == "a"


def test_publish_replaces_stale_keys_and_skips_equal_bags(ctx):
    stale = testing.Relation("send-datasource", local_app_data={"stale": "x"})
    equal = testing.Relation("receive-datasource", local_app_data=exchange.databag_for(ENTRIES))
    state = testing.State(leader=True, relations={stale, equal})
    with ctx(ctx.on.update_status(), state) as mgr:
        relations = exchange.exchange_relations(mgr.charm.model)
        written = exchange.publish(mgr.charm.app, relations, exchange.databag_for(ENTRIES))
        assert written == [stale.id]
        assert dict(relations[0].data[mgr.charm.app]) == exchange.databag_for(ENTRIES)
        mgr.run()


def test_correlation_picks_a_tempo_of_the_same_grafana():
    from cosl.interfaces.datasource_exchange import GrafanaDatasource

    received = (
        GrafanaDatasource(type="tempo", uid="t1", grafana_uid="other"),
        GrafanaDatasource(type="loki", uid="l1", grafana_uid="g"),
        GrafanaDatasource(type="tempo", uid="t2", grafana_uid="g"),
    )
    assert exchange.correlated_uid(received, "g", "tempo") == "t2"
    assert exchange.correlated_uid(received, "nope", "tempo") is None
