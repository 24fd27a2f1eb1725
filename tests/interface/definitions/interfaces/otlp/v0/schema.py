"""otlp v0 databags, as the published library charmlibs-interfaces-otlp 0.5.0 defines them.

charmlibs has no interface definition for ``otlp`` (only the library), so this schema is our
transcription of the library's databag models: the provider's application databag lists its
endpoints; the requirer's holds its rules (a JSON string of base64 of LZMA of JSON with
``promql`` and ``logql`` rule files) and its Juju topology. Unit databags carry nothing.
"""

import base64
import json
import lzma
from typing import Annotated, Any

from interface_tester.schema_base import DataBagSchema
from pydantic import AfterValidator, BaseModel, Json


class Endpoint(BaseModel):
    protocol: str
    endpoint: str
    telemetries: list[str]
    insecure: bool = False


class ProviderAppData(BaseModel):
    endpoints: Json[list[Endpoint]]


def _rules(value: str) -> dict[str, Any]:
    rules = json.loads(lzma.decompress(base64.b64decode(value)))
    assert isinstance(rules, dict) and set(rules) <= {"promql", "logql"}
    return rules


class RequirerAppData(BaseModel):
    rules: Json[Annotated[str, AfterValidator(_rules)]]
    metadata: Json[dict[str, str]]


class ProviderSchema(DataBagSchema):
    app: ProviderAppData


class RequirerSchema(DataBagSchema):
    app: RequirerAppData
