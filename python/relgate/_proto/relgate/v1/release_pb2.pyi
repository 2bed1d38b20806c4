from relgate._proto.relgate.v1 import common_pb2 as _common_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ManifestFormat(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    MANIFEST_FORMAT_UNSPECIFIED: _ClassVar[ManifestFormat]
    MANIFEST_FORMAT_JSON: _ClassVar[ManifestFormat]
    MANIFEST_FORMAT_YAML: _ClassVar[ManifestFormat]
MANIFEST_FORMAT_UNSPECIFIED: ManifestFormat
MANIFEST_FORMAT_JSON: ManifestFormat
MANIFEST_FORMAT_YAML: ManifestFormat

class RegisterReleaseRequest(_message.Message):
    __slots__ = ("manifest", "format", "expected_sha256", "tenant")
    MANIFEST_FIELD_NUMBER: _ClassVar[int]
    FORMAT_FIELD_NUMBER: _ClassVar[int]
    EXPECTED_SHA256_FIELD_NUMBER: _ClassVar[int]
    TENANT_FIELD_NUMBER: _ClassVar[int]
    manifest: bytes
    format: ManifestFormat
    expected_sha256: str
    tenant: str
    def __init__(self, manifest: _Optional[bytes] = ..., format: _Optional[_Union[ManifestFormat, str]] = ..., expected_sha256: _Optional[str] = ..., tenant: _Optional[str] = ...) -> None: ...

class RegisterReleaseResponse(_message.Message):
    __slots__ = ("release", "created", "receipt")
    RELEASE_FIELD_NUMBER: _ClassVar[int]
    CREATED_FIELD_NUMBER: _ClassVar[int]
    RECEIPT_FIELD_NUMBER: _ClassVar[int]
    release: Release
    created: bool
    receipt: _common_pb2.Receipt
    def __init__(self, release: _Optional[_Union[Release, _Mapping]] = ..., created: _Optional[bool] = ..., receipt: _Optional[_Union[_common_pb2.Receipt, _Mapping]] = ...) -> None: ...

class Release(_message.Message):
    __slots__ = ("sha256", "release_id", "manifest_json", "tenant", "actor", "created_at", "previous_release")
    SHA256_FIELD_NUMBER: _ClassVar[int]
    RELEASE_ID_FIELD_NUMBER: _ClassVar[int]
    MANIFEST_JSON_FIELD_NUMBER: _ClassVar[int]
    TENANT_FIELD_NUMBER: _ClassVar[int]
    ACTOR_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    PREVIOUS_RELEASE_FIELD_NUMBER: _ClassVar[int]
    sha256: str
    release_id: str
    manifest_json: str
    tenant: str
    actor: str
    created_at: str
    previous_release: str
    def __init__(self, sha256: _Optional[str] = ..., release_id: _Optional[str] = ..., manifest_json: _Optional[str] = ..., tenant: _Optional[str] = ..., actor: _Optional[str] = ..., created_at: _Optional[str] = ..., previous_release: _Optional[str] = ...) -> None: ...

class GetReleaseRequest(_message.Message):
    __slots__ = ("sha256", "tenant")
    SHA256_FIELD_NUMBER: _ClassVar[int]
    TENANT_FIELD_NUMBER: _ClassVar[int]
    sha256: str
    tenant: str
    def __init__(self, sha256: _Optional[str] = ..., tenant: _Optional[str] = ...) -> None: ...

class ListReleasesRequest(_message.Message):
    __slots__ = ("tenant", "limit")
    TENANT_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    tenant: str
    limit: int
    def __init__(self, tenant: _Optional[str] = ..., limit: _Optional[int] = ...) -> None: ...

class ListReleasesResponse(_message.Message):
    __slots__ = ("releases",)
    RELEASES_FIELD_NUMBER: _ClassVar[int]
    releases: _containers.RepeatedCompositeFieldContainer[Release]
    def __init__(self, releases: _Optional[_Iterable[_Union[Release, _Mapping]]] = ...) -> None: ...
