# Every module-level function here is run as a test case by pytest-interface-tester: no helpers.
from interface_tester import Tester
from scenario import Relation, State

GARBAGE = {"receivers": "[[[[", "config": "\x00"}


def test_no_data_on_created():
    # GIVEN a collector that has just been related
    relation = Relation(endpoint="cos-agent", interface="cos_agent")
    tester = Tester(state_in=State(relations=[relation]))
    # WHEN the provider handles relation-created
    tester.run("cos-agent-relation-created")
    # THEN it has written nothing yet
    tester.assert_relation_data_empty()


def test_valid_data_on_joined():
    relation = Relation(endpoint="cos-agent", interface="cos_agent")
    tester = Tester(state_in=State(relations=[relation]))
    tester.run("cos-agent-relation-joined")
    tester.assert_schema_valid()


def test_valid_data_on_changed():
    relation = Relation(endpoint="cos-agent", interface="cos_agent")
    tester = Tester(state_in=State(relations=[relation]))
    tester.run("cos-agent-relation-changed")
    tester.assert_schema_valid()


def test_valid_data_on_changed_with_garbage_from_the_collector():
    # GIVEN a collector whose databags are garbage
    relation = Relation(
        endpoint="cos-agent",
        interface="cos_agent",
        remote_app_data=GARBAGE,
        remote_units_data={0: dict(GARBAGE)},
    )
    tester = Tester(state_in=State(relations=[relation]))
    # WHEN the provider handles relation-changed
    tester.run("cos-agent-relation-changed")
    # THEN the hook succeeds and what it wrote is valid
    tester.assert_schema_valid()
