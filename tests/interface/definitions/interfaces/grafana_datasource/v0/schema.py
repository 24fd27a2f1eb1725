"""grafana_datasource v0 databags, as grafana-k8s and its v0 library write and read them.

Provider (the datasource): the leader writes ``grafana_source_data``; each unit writes
``grafana_source_host``. Requirer (Grafana): the leader writes ``grafana_uid`` and
``datasource_uids`` (and, not part of the published schema, ``grafana_base_url``).
"""

from typing import Any

from interface_tester.schema_base import DataBagSchema
from pydantic import BaseModel, Field, Json


class GrafanaSourceData(BaseModel):
    model: str = Field(description="Juju model of the datasource application.")
    model_uuid: str = Field(description="UUID of that model.")
    application: str = Field(description="Name of the datasource application.")
    type: str = Field(description="Grafana datasource type, e.g. prometheus.")
    # As published (Optional[Json[Any]]): both keys are required (null allowed), and under
    # pydantic v2 a non-null value must be a JSON *string*. See README.md beside `interfaces/`.
    extra_fields: Json[Any] | None = Field(description="Grafana jsonData.")
    secure_extra_fields: Json[Any] | None = Field(description="Grafana secureJsonData.")


class ProviderAppData(BaseModel):
    grafana_source_data: Json[GrafanaSourceData]


class ProviderUnitData(BaseModel):
    grafana_source_host: str = Field(description="URL (or host:port) of this unit's source.")


class ProviderSchema(DataBagSchema):
    app: ProviderAppData
    unit: ProviderUnitData


class RequirerAppData(BaseModel):
    grafana_uid: str = Field(description="Identifies the Grafana that assigned the UIDs.")
    datasource_uids: Json[dict[str, str]] = Field(
        description="Datasource UID per provider unit name, as Grafana sees the units."
    )
    grafana_base_url: str | None = None


class RequirerSchema(DataBagSchema):
    app: RequirerAppData
