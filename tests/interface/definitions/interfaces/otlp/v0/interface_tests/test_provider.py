# Every module-level function here is run as a test case by pytest-interface-tester: no helpers.
import base64
import json
import lzma

from interface_tester import Tester
from scenario import Relation, State

RULES = {"promql": {"groups": [{"name": "g", "rules": [{"alert": "A", "expr": "up == 0"}]}]}}
REQUIRER_DATA = {
    "rules": json.dumps(base64.b64encode(lzma.compress(json.dumps(RULES).encode())).decode()),
    "metadata": json.dumps({"model": "m", "application": "otelcol", "unit": "otelcol/0"}),
}
GARBAGE = {"rules": "[[[[", "metadata": "\x00", "endpoints": "{"}


def test_provider_publishes_its_endpoints_when_the_requirer_said_nothing():
    # GIVEN a sender that has written nothing yet
    relation = Relation(endpoint="receive-otlp", interface="otlp", remote_app_name="otelcol")
    tester = Tester(state_in=State(leader=True, relations=[relation]))
    # WHEN the provider handles relation-joined
    tester.run("receive-otlp-relation-joined")
    # THEN its application databag lists valid endpoints
    tester.assert_schema_valid()


def test_provider_publishes_its_endpoints_next_to_the_requirers_rules():
    # GIVEN a sender that published rules as the library's requirer does
    relation = Relation(
        endpoint="receive-otlp",
        interface="otlp",
        remote_app_name="otelcol",
        remote_app_data=REQUIRER_DATA,
    )
    tester = Tester(state_in=State(leader=True, relations=[relation]))
    # WHEN the provider handles relation-changed
    tester.run("receive-otlp-relation-changed")
    # THEN its application databag lists valid endpoints
    tester.assert_schema_valid()


def test_provider_keeps_valid_endpoints_when_the_requirer_writes_garbage():
    # GIVEN a sender whose databags are garbage
    relation = Relation(
        endpoint="receive-otlp",
        interface="otlp",
        remote_app_name="otelcol",
        remote_app_data=GARBAGE,
        remote_units_data={0: dict(GARBAGE)},
    )
    tester = Tester(state_in=State(leader=True, relations=[relation]))
    # WHEN the provider handles relation-changed
    tester.run("receive-otlp-relation-changed")
    # THEN the hook succeeds and its application databag still lists valid endpoints
    tester.assert_schema_valid()
