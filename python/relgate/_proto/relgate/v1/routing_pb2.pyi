from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class WatchRequest(_message.Message):
    __slots__ = ("replica", "tenants")
    REPLICA_FIELD_NUMBER: _ClassVar[int]
    TENANTS_FIELD_NUMBER: _ClassVar[int]
    replica: str
    tenants: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, replica: _Optional[str] = ..., tenants: _Optional[_Iterable[str]] = ...) -> None: ...

class ReleaseRouteMessage(_message.Message):
    __slots__ = ("release_sha256", "manifest_json")
    RELEASE_SHA256_FIELD_NUMBER: _ClassVar[int]
    MANIFEST_JSON_FIELD_NUMBER: _ClassVar[int]
    release_sha256: str
    manifest_json: bytes
    def __init__(self, release_sha256: _Optional[str] = ..., manifest_json: _Optional[bytes] = ...) -> None: ...

class RoutingSnapshotMessage(_message.Message):
    __slots__ = ("tenant", "epoch", "version", "stable", "candidate", "weight_bp", "shadow")
    TENANT_FIELD_NUMBER: _ClassVar[int]
    EPOCH_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    STABLE_FIELD_NUMBER: _ClassVar[int]
    CANDIDATE_FIELD_NUMBER: _ClassVar[int]
    WEIGHT_BP_FIELD_NUMBER: _ClassVar[int]
    SHADOW_FIELD_NUMBER: _ClassVar[int]
    tenant: str
    epoch: int
    version: int
    stable: ReleaseRouteMessage
    candidate: ReleaseRouteMessage
    weight_bp: int
    shadow: bool
    def __init__(self, tenant: _Optional[str] = ..., epoch: _Optional[int] = ..., version: _Optional[int] = ..., stable: _Optional[_Union[ReleaseRouteMessage, _Mapping]] = ..., candidate: _Optional[_Union[ReleaseRouteMessage, _Mapping]] = ..., weight_bp: _Optional[int] = ..., shadow: _Optional[bool] = ...) -> None: ...

class RoutingUpdate(_message.Message):
    __slots__ = ("session_id", "snapshot", "lease_s")
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    SNAPSHOT_FIELD_NUMBER: _ClassVar[int]
    LEASE_S_FIELD_NUMBER: _ClassVar[int]
    session_id: str
    snapshot: RoutingSnapshotMessage
    lease_s: float
    def __init__(self, session_id: _Optional[str] = ..., snapshot: _Optional[_Union[RoutingSnapshotMessage, _Mapping]] = ..., lease_s: _Optional[float] = ...) -> None: ...

class AckRequest(_message.Message):
    __slots__ = ("session_id", "tenant", "epoch", "version")
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    TENANT_FIELD_NUMBER: _ClassVar[int]
    EPOCH_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    session_id: str
    tenant: str
    epoch: int
    version: int
    def __init__(self, session_id: _Optional[str] = ..., tenant: _Optional[str] = ..., epoch: _Optional[int] = ..., version: _Optional[int] = ...) -> None: ...

class AckResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class TraceMessage(_message.Message):
    __slots__ = ("id", "time", "slice", "traffic_class", "prompt", "answer", "latency_s", "status", "release_sha256", "session_bucket", "admitted_at", "snapshot_version", "role", "shadow", "stream", "variables", "error", "tenant", "event_only")
    class VariablesEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    ID_FIELD_NUMBER: _ClassVar[int]
    TIME_FIELD_NUMBER: _ClassVar[int]
    SLICE_FIELD_NUMBER: _ClassVar[int]
    TRAFFIC_CLASS_FIELD_NUMBER: _ClassVar[int]
    PROMPT_FIELD_NUMBER: _ClassVar[int]
    ANSWER_FIELD_NUMBER: _ClassVar[int]
    LATENCY_S_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    RELEASE_SHA256_FIELD_NUMBER: _ClassVar[int]
    SESSION_BUCKET_FIELD_NUMBER: _ClassVar[int]
    ADMITTED_AT_FIELD_NUMBER: _ClassVar[int]
    SNAPSHOT_VERSION_FIELD_NUMBER: _ClassVar[int]
    ROLE_FIELD_NUMBER: _ClassVar[int]
    SHADOW_FIELD_NUMBER: _ClassVar[int]
    STREAM_FIELD_NUMBER: _ClassVar[int]
    VARIABLES_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    TENANT_FIELD_NUMBER: _ClassVar[int]
    EVENT_ONLY_FIELD_NUMBER: _ClassVar[int]
    id: str
    time: float
    slice: str
    traffic_class: str
    prompt: str
    answer: str
    latency_s: float
    status: int
    release_sha256: str
    session_bucket: int
    admitted_at: float
    snapshot_version: int
    role: str
    shadow: bool
    stream: bool
    variables: _containers.ScalarMap[str, str]
    error: str
    tenant: str
    event_only: bool
    def __init__(self, id: _Optional[str] = ..., time: _Optional[float] = ..., slice: _Optional[str] = ..., traffic_class: _Optional[str] = ..., prompt: _Optional[str] = ..., answer: _Optional[str] = ..., latency_s: _Optional[float] = ..., status: _Optional[int] = ..., release_sha256: _Optional[str] = ..., session_bucket: _Optional[int] = ..., admitted_at: _Optional[float] = ..., snapshot_version: _Optional[int] = ..., role: _Optional[str] = ..., shadow: _Optional[bool] = ..., stream: _Optional[bool] = ..., variables: _Optional[_Mapping[str, str]] = ..., error: _Optional[str] = ..., tenant: _Optional[str] = ..., event_only: _Optional[bool] = ...) -> None: ...

class PushTracesRequest(_message.Message):
    __slots__ = ("session_id", "traces", "dropped")
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    TRACES_FIELD_NUMBER: _ClassVar[int]
    DROPPED_FIELD_NUMBER: _ClassVar[int]
    session_id: str
    traces: _containers.RepeatedCompositeFieldContainer[TraceMessage]
    dropped: int
    def __init__(self, session_id: _Optional[str] = ..., traces: _Optional[_Iterable[_Union[TraceMessage, _Mapping]]] = ..., dropped: _Optional[int] = ...) -> None: ...

class PushTracesResponse(_message.Message):
    __slots__ = ("accepted", "retry_after_ms")
    ACCEPTED_FIELD_NUMBER: _ClassVar[int]
    RETRY_AFTER_MS_FIELD_NUMBER: _ClassVar[int]
    accepted: int
    retry_after_ms: int
    def __init__(self, accepted: _Optional[int] = ..., retry_after_ms: _Optional[int] = ...) -> None: ...
