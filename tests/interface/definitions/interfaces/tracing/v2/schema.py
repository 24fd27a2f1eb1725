"""tracing v2 databags: the requirer asks for protocols, the provider answers with receivers.

Both live in the application databags; unit databags stay empty. gRPC receiver URLs carry no
scheme; the provider answers only with requested protocols that it supports.
"""

from typing import Literal

from interface_tester.schema_base import DataBagSchema
from pydantic import BaseModel, Json

ReceiverProtocol = Literal["zipkin", "otlp_grpc", "otlp_http", "jaeger_grpc", "jaeger_thrift_http"]


class ProtocolType(BaseModel):
    name: ReceiverProtocol
    type: Literal["http", "grpc"]


class Receiver(BaseModel):
    protocol: ProtocolType
    url: str


class RequirerAppData(BaseModel):
    receivers: Json[list[ReceiverProtocol]]


class ProviderAppData(BaseModel):
    receivers: Json[list[Receiver]]


class RequirerSchema(DataBagSchema):
    app: RequirerAppData


class ProviderSchema(DataBagSchema):
    app: ProviderAppData
