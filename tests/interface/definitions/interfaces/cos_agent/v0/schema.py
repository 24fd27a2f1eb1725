"""cos_agent v0 databags, after the published definition (charmlibs interfaces/cos_agent/v0).

The provider (the principal charm) writes everything into its *unit* databag under ``config``,
a JSON object with its alert rules (metrics and logs), dashboards (each base64 of LZMA of the
dashboard JSON), scrape jobs and snap log slots. The requirer (the subordinate collector)
writes nothing the provider needs.
"""

import base64
import json
import lzma
from typing import Annotated, Any

from interface_tester.schema_base import DataBagSchema
from pydantic import AfterValidator, BaseModel, Json


def _dashboard(value: str) -> dict[str, Any]:
    dashboard = json.loads(lzma.decompress(base64.b64decode(value)))
    assert isinstance(dashboard, dict)
    return dashboard


class Config(BaseModel):
    metrics_alert_rules: dict[str, Any]
    log_alert_rules: dict[str, Any]
    dashboards: list[Annotated[str, AfterValidator(_dashboard)]]
    metrics_scrape_jobs: list[dict[str, Any]]
    log_slots: list[str]


class ProviderUnitData(BaseModel):
    config: Json[Config]


class ProviderSchema(DataBagSchema):
    unit: ProviderUnitData


class RequirerSchema(DataBagSchema):
    pass
