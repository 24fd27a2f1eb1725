from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from typing import ClassVar as _ClassVar, Iterable as _Iterable, Mapping as _Mapping, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class User(_message.Message):
    __slots__ = ("login", "name", "email", "role")
    LOGIN_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    EMAIL_FIELD_NUMBER: _ClassVar[int]
    ROLE_FIELD_NUMBER: _ClassVar[int]
    login: str
    name: str
    email: str
    role: str
    def __init__(self, login: _Optional[str] = ..., name: _Optional[str] = ..., email: _Optional[str] = ..., role: _Optional[str] = ...) -> None: ...

class DataSourceInstanceSettings(_message.Message):
    __slots__ = ("id", "name", "url", "user", "database", "basicAuthEnabled", "basicAuthUser", "jsonData", "decryptedSecureJsonData", "lastUpdatedMS", "uid")
    class DecryptedSecureJsonDataEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    URL_FIELD_NUMBER: _ClassVar[int]
    USER_FIELD_NUMBER: _ClassVar[int]
    DATABASE_FIELD_NUMBER: _ClassVar[int]
    BASICAUTHENABLED_FIELD_NUMBER: _ClassVar[int]
    BASICAUTHUSER_FIELD_NUMBER: _ClassVar[int]
    JSONDATA_FIELD_NUMBER: _ClassVar[int]
    DECRYPTEDSECUREJSONDATA_FIELD_NUMBER: _ClassVar[int]
    LASTUPDATEDMS_FIELD_NUMBER: _ClassVar[int]
    UID_FIELD_NUMBER: _ClassVar[int]
    id: int
    name: str
    url: str
    user: str
    database: str
    basicAuthEnabled: bool
    basicAuthUser: str
    jsonData: bytes
    decryptedSecureJsonData: _containers.ScalarMap[str, str]
    lastUpdatedMS: int
    uid: str
    def __init__(self, id: _Optional[int] = ..., name: _Optional[str] = ..., url: _Optional[str] = ..., user: _Optional[str] = ..., database: _Optional[str] = ..., basicAuthEnabled: bool = ..., basicAuthUser: _Optional[str] = ..., jsonData: _Optional[bytes] = ..., decryptedSecureJsonData: _Optional[_Mapping[str, str]] = ..., lastUpdatedMS: _Optional[int] = ..., uid: _Optional[str] = ...) -> None: ...

class PluginContext(_message.Message):
    __slots__ = ("orgId", "pluginId", "user", "dataSourceInstanceSettings")
    ORGID_FIELD_NUMBER: _ClassVar[int]
    PLUGINID_FIELD_NUMBER: _ClassVar[int]
    USER_FIELD_NUMBER: _ClassVar[int]
    DATASOURCEINSTANCESETTINGS_FIELD_NUMBER: _ClassVar[int]
    orgId: int
    pluginId: str
    user: User
    dataSourceInstanceSettings: DataSourceInstanceSettings
    def __init__(self, orgId: _Optional[int] = ..., pluginId: _Optional[str] = ..., user: _Optional[_Union[User, _Mapping]] = ..., dataSourceInstanceSettings: _Optional[_Union[DataSourceInstanceSettings, _Mapping]] = ...) -> None: ...

class StringList(_message.Message):
    __slots__ = ("values",)
    VALUES_FIELD_NUMBER: _ClassVar[int]
    values: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, values: _Optional[_Iterable[str]] = ...) -> None: ...

class CallResourceRequest(_message.Message):
    __slots__ = ("pluginContext", "path", "method", "url", "headers", "body")
    class HeadersEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: StringList
        def __init__(self, key: _Optional[str] = ..., value: _Optional[_Union[StringList, _Mapping]] = ...) -> None: ...
    PLUGINCONTEXT_FIELD_NUMBER: _ClassVar[int]
    PATH_FIELD_NUMBER: _ClassVar[int]
    METHOD_FIELD_NUMBER: _ClassVar[int]
    URL_FIELD_NUMBER: _ClassVar[int]
    HEADERS_FIELD_NUMBER: _ClassVar[int]
    BODY_FIELD_NUMBER: _ClassVar[int]
    pluginContext: PluginContext
    path: str
    method: str
    url: str
    headers: _containers.MessageMap[str, StringList]
    body: bytes
    def __init__(self, pluginContext: _Optional[_Union[PluginContext, _Mapping]] = ..., path: _Optional[str] = ..., method: _Optional[str] = ..., url: _Optional[str] = ..., headers: _Optional[_Mapping[str, StringList]] = ..., body: _Optional[bytes] = ...) -> None: ...

class CallResourceResponse(_message.Message):
    __slots__ = ("code", "headers", "body")
    class HeadersEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: StringList
        def __init__(self, key: _Optional[str] = ..., value: _Optional[_Union[StringList, _Mapping]] = ...) -> None: ...
    CODE_FIELD_NUMBER: _ClassVar[int]
    HEADERS_FIELD_NUMBER: _ClassVar[int]
    BODY_FIELD_NUMBER: _ClassVar[int]
    code: int
    headers: _containers.MessageMap[str, StringList]
    body: bytes
    def __init__(self, code: _Optional[int] = ..., headers: _Optional[_Mapping[str, StringList]] = ..., body: _Optional[bytes] = ...) -> None: ...

class TimeRange(_message.Message):
    __slots__ = ("fromEpochMS", "toEpochMS")
    FROMEPOCHMS_FIELD_NUMBER: _ClassVar[int]
    TOEPOCHMS_FIELD_NUMBER: _ClassVar[int]
    fromEpochMS: int
    toEpochMS: int
    def __init__(self, fromEpochMS: _Optional[int] = ..., toEpochMS: _Optional[int] = ...) -> None: ...

class DataQuery(_message.Message):
    __slots__ = ("refId", "maxDataPoints", "intervalMS", "timeRange", "json", "queryType")
    REFID_FIELD_NUMBER: _ClassVar[int]
    MAXDATAPOINTS_FIELD_NUMBER: _ClassVar[int]
    INTERVALMS_FIELD_NUMBER: _ClassVar[int]
    TIMERANGE_FIELD_NUMBER: _ClassVar[int]
    JSON_FIELD_NUMBER: _ClassVar[int]
    QUERYTYPE_FIELD_NUMBER: _ClassVar[int]
    refId: str
    maxDataPoints: int
    intervalMS: int
    timeRange: TimeRange
    json: bytes
    queryType: str
    def __init__(self, refId: _Optional[str] = ..., maxDataPoints: _Optional[int] = ..., intervalMS: _Optional[int] = ..., timeRange: _Optional[_Union[TimeRange, _Mapping]] = ..., json: _Optional[bytes] = ..., queryType: _Optional[str] = ...) -> None: ...

class QueryDataRequest(_message.Message):
    __slots__ = ("pluginContext", "headers", "queries")
    class HeadersEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    PLUGINCONTEXT_FIELD_NUMBER: _ClassVar[int]
    HEADERS_FIELD_NUMBER: _ClassVar[int]
    QUERIES_FIELD_NUMBER: _ClassVar[int]
    pluginContext: PluginContext
    headers: _containers.ScalarMap[str, str]
    queries: _containers.RepeatedCompositeFieldContainer[DataQuery]
    def __init__(self, pluginContext: _Optional[_Union[PluginContext, _Mapping]] = ..., headers: _Optional[_Mapping[str, str]] = ..., queries: _Optional[_Iterable[_Union[DataQuery, _Mapping]]] = ...) -> None: ...

class QueryDataResponse(_message.Message):
    __slots__ = ("responses",)
    class ResponsesEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: DataResponse
        def __init__(self, key: _Optional[str] = ..., value: _Optional[_Union[DataResponse, _Mapping]] = ...) -> None: ...
    RESPONSES_FIELD_NUMBER: _ClassVar[int]
    responses: _containers.MessageMap[str, DataResponse]
    def __init__(self, responses: _Optional[_Mapping[str, DataResponse]] = ...) -> None: ...

class DataResponse(_message.Message):
    __slots__ = ("frames", "error", "jsonMeta", "status", "errorSource")
    FRAMES_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    JSONMETA_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    ERRORSOURCE_FIELD_NUMBER: _ClassVar[int]
    frames: _containers.RepeatedScalarFieldContainer[bytes]
    error: str
    jsonMeta: bytes
    status: int
    errorSource: str
    def __init__(self, frames: _Optional[_Iterable[bytes]] = ..., error: _Optional[str] = ..., jsonMeta: _Optional[bytes] = ..., status: _Optional[int] = ..., errorSource: _Optional[str] = ...) -> None: ...

class CollectMetricsRequest(_message.Message):
    __slots__ = ("pluginContext",)
    PLUGINCONTEXT_FIELD_NUMBER: _ClassVar[int]
    pluginContext: PluginContext
    def __init__(self, pluginContext: _Optional[_Union[PluginContext, _Mapping]] = ...) -> None: ...

class CollectMetricsResponse(_message.Message):
    __slots__ = ("metrics",)
    class Payload(_message.Message):
        __slots__ = ("prometheus",)
        PROMETHEUS_FIELD_NUMBER: _ClassVar[int]
        prometheus: bytes
        def __init__(self, prometheus: _Optional[bytes] = ...) -> None: ...
    METRICS_FIELD_NUMBER: _ClassVar[int]
    metrics: CollectMetricsResponse.Payload
    def __init__(self, metrics: _Optional[_Union[CollectMetricsResponse.Payload, _Mapping]] = ...) -> None: ...

class CheckHealthRequest(_message.Message):
    __slots__ = ("pluginContext",)
    PLUGINCONTEXT_FIELD_NUMBER: _ClassVar[int]
    pluginContext: PluginContext
    def __init__(self, pluginContext: _Optional[_Union[PluginContext, _Mapping]] = ...) -> None: ...

class CheckHealthResponse(_message.Message):
    __slots__ = ("status", "message", "jsonDetails")
    class HealthStatus(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        UNKNOWN: _ClassVar[CheckHealthResponse.HealthStatus]
        OK: _ClassVar[CheckHealthResponse.HealthStatus]
        ERROR: _ClassVar[CheckHealthResponse.HealthStatus]
    UNKNOWN: CheckHealthResponse.HealthStatus
    OK: CheckHealthResponse.HealthStatus
    ERROR: CheckHealthResponse.HealthStatus
    STATUS_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    JSONDETAILS_FIELD_NUMBER: _ClassVar[int]
    status: CheckHealthResponse.HealthStatus
    message: str
    jsonDetails: bytes
    def __init__(self, status: _Optional[_Union[CheckHealthResponse.HealthStatus, str]] = ..., message: _Optional[str] = ..., jsonDetails: _Optional[bytes] = ...) -> None: ...
