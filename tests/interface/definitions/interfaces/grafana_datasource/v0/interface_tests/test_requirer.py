import json

from interface_tester import Tester
from scenario import Relation, State


def test_nothing_written_without_remote_data():
    # GIVEN a provider that has not written anything
    tester = Tester(
        state_in=State(
            relations=[
                Relation(
                    endpoint="grafana-source",
                    interface="grafana_datasource",
                    remote_app_name="foo",
                    remote_app_data={},
                    remote_units_data={0: {}},
                )
            ]
        )
    )
    tester.run("grafana-source-relation-joined")
    # THEN the requirer writes nothing either
    tester.assert_relation_data_empty()


def test_nothing_written_for_junk_remote_data():
    tester = Tester(
        state_in=State(
            relations=[
                Relation(
                    endpoint="grafana-source",
                    interface="grafana_datasource",
                    remote_app_name="foo",
                    remote_app_data={"foo": "bar"},
                    remote_units_data={0: {"baz": "qux"}},
                )
            ]
        )
    )
    tester.run("grafana-source-relation-changed")
    tester.assert_relation_data_empty()


def test_every_unit_with_a_host_gets_a_uid():
    # GIVEN a valid provider whose units 0 and 42 advertise a host
    source = {
        "model": "m",
        "model_uuid": "0000-0042",
        "application": "myapp",
        "type": "prometheus",
    }
    relation = Relation(
        endpoint="grafana-source",
        interface="grafana_datasource",
        remote_app_name="foo",
        remote_app_data={"grafana_source_data": json.dumps(source)},
        remote_units_data={
            0: {"grafana_source_host": "somehost:80"},
            42: {"grafana_source_host": "someotherhost:80"},
        },
    )
    tester = Tester(state_in=State(relations=[relation]))
    state_out = tester.run("grafana-source-relation-changed")
    tester.assert_schema_valid()
    # AND the UIDs are keyed by the provider unit names as the requirer sees them
    out = next(r for r in state_out.relations if r.id == relation.id)
    uids = json.loads(out.local_app_data["datasource_uids"])
    assert uids["foo/0"]
    assert uids["foo/42"]
