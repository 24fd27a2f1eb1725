from interface_tester import Tester
from scenario import Relation, State


def test_requirer_asks_for_protocols_on_created():
    # GIVEN a tracing provider that has published nothing yet
    tester = Tester(
        state_in=State(leader=True, relations=[Relation(endpoint="tracing", interface="tracing")])
    )
    # WHEN the requirer handles the relation event
    tester.run("tracing-relation-created")
    # THEN its application databag lists the protocols it wants
    tester.assert_schema_valid()


def test_requirer_asks_for_protocols_on_joined():
    # GIVEN a tracing provider that has published nothing yet
    tester = Tester(
        state_in=State(leader=True, relations=[Relation(endpoint="tracing", interface="tracing")])
    )
    # WHEN the requirer handles the relation event
    tester.run("tracing-relation-joined")
    # THEN its application databag lists the protocols it wants
    tester.assert_schema_valid()


def test_requirer_asks_for_protocols_on_changed():
    # GIVEN a tracing provider that has published nothing yet
    tester = Tester(
        state_in=State(leader=True, relations=[Relation(endpoint="tracing", interface="tracing")])
    )
    # WHEN the requirer handles the relation event
    tester.run("tracing-relation-changed")
    # THEN its application databag lists the protocols it wants
    tester.assert_schema_valid()
