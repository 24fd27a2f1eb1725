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
