import json

from interface_tester import Tester
from scenario import Relation, State


def test_valid_datasource_published_when_grafana_has_said_nothing():
    # GIVEN a Grafana that has written nothing yet
    tester = Tester(
        state_in=State(
            relations=[
                Relation(
                    endpoint="grafana-source",
                    interface="grafana_datasource",
                    remote_app_name="grafana",
                    remote_app_data={},
                    remote_units_data={0: {}},
                )
            ]
        )
    )
    # WHEN the provider handles relation-joined
    tester.run("grafana-source-relation-joined")
    # THEN what it wrote is a complete, valid datasource description
    tester.assert_schema_valid()


def test_databags_stay_valid_once_grafana_answers():
    # GIVEN a Grafana that assigned UIDs to units 0 and 1 of the provider
    uids = {"bridge/0": "juju_m_u_bridge_0", "bridge/1": "juju_m_u_bridge_1"}
    tester = Tester(
        state_in=State(
            relations=[
                Relation(
                    endpoint="grafana-source",
                    interface="grafana_datasource",
                    remote_app_name="grafana",
                    remote_app_data={"grafana_uid": "g-0", "datasource_uids": json.dumps(uids)},
                )
            ]
        )
    )
    tester.run("grafana-source-relation-changed")
    tester.assert_schema_valid()
