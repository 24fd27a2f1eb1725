import json

from interface_tester import Tester
from scenario import Relation, State


def test_datasources_always_published_even_when_remote_is_empty():
    # GIVEN a remote that wrote nothing
    tester = Tester(
        state_in=State(
            relations=[
                Relation(
                    endpoint="grafana-source-exchange",
                    interface="grafana_datasource_exchange",
                    remote_app_name="bar",
                )
            ]
        )
    )
    # WHEN any relation event is handled
    tester.run("grafana-source-exchange-relation-changed")
    # THEN the local databag holds a valid `datasources` list
    tester.assert_schema_valid()


def test_still_valid_after_receiving_datasources():
    remote = [{"type": "tempo", "uid": "t-1", "grafana_uid": "g-1"}]
    tester = Tester(
        state_in=State(
            relations=[
                Relation(
                    endpoint="grafana-source-exchange",
                    interface="grafana_datasource_exchange",
                    remote_app_name="tempo",
                    remote_app_data={"datasources": json.dumps(remote)},
                )
            ]
        )
    )
    tester.run("grafana-source-exchange-relation-changed")
    tester.assert_schema_valid()
