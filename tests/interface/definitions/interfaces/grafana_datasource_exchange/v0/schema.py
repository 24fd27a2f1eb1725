"""grafana_datasource_exchange v0: the same application databag on both sides.

``datasources`` is always present: a JSON list (``[]`` until some UID is known) of fully
specified datasources, sorted by ``uid``.
"""

from interface_tester.schema_base import DataBagSchema
from pydantic import BaseModel, Field, Json


class GrafanaDatasource(BaseModel):
    type: str = Field(description="Grafana datasource type, e.g. prometheus, tempo, loki.")
    uid: str = Field(description="Datasource UID, as assigned by Grafana.")
    grafana_uid: str = Field(description="The Grafana that assigned it.")


class AppData(BaseModel):
    datasources: Json[list[GrafanaDatasource]]


class ProviderSchema(DataBagSchema):
    app: AppData


class RequirerSchema(DataBagSchema):
    app: AppData
