from relgate._proto.relgate.v1 import common_pb2 as _common_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ListReceiptsRequest(_message.Message):
    __slots__ = ("tenant", "release_sha256", "limit")
    TENANT_FIELD_NUMBER: _ClassVar[int]
    RELEASE_SHA256_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    tenant: str
    release_sha256: str
    limit: int
    def __init__(self, tenant: _Optional[str] = ..., release_sha256: _Optional[str] = ..., limit: _Optional[int] = ...) -> None: ...

class ListReceiptsResponse(_message.Message):
    __slots__ = ("receipts",)
    RECEIPTS_FIELD_NUMBER: _ClassVar[int]
    receipts: _containers.RepeatedCompositeFieldContainer[_common_pb2.Receipt]
    def __init__(self, receipts: _Optional[_Iterable[_Union[_common_pb2.Receipt, _Mapping]]] = ...) -> None: ...

class ExportReceiptsRequest(_message.Message):
    __slots__ = ("tenant",)
    TENANT_FIELD_NUMBER: _ClassVar[int]
    tenant: str
    def __init__(self, tenant: _Optional[str] = ...) -> None: ...

class ExportReceiptsChunk(_message.Message):
    __slots__ = ("data",)
    DATA_FIELD_NUMBER: _ClassVar[int]
    data: bytes
    def __init__(self, data: _Optional[bytes] = ...) -> None: ...

class VerifyReceiptsRequest(_message.Message):
    __slots__ = ("tenant",)
    TENANT_FIELD_NUMBER: _ClassVar[int]
    tenant: str
    def __init__(self, tenant: _Optional[str] = ...) -> None: ...

class BrokenLink(_message.Message):
    __slots__ = ("index", "receipt_sha256", "reason", "detail")
    INDEX_FIELD_NUMBER: _ClassVar[int]
    RECEIPT_SHA256_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    DETAIL_FIELD_NUMBER: _ClassVar[int]
    index: int
    receipt_sha256: str
    reason: str
    detail: str
    def __init__(self, index: _Optional[int] = ..., receipt_sha256: _Optional[str] = ..., reason: _Optional[str] = ..., detail: _Optional[str] = ...) -> None: ...

class VerifyReceiptsResponse(_message.Message):
    __slots__ = ("ok", "receipts", "first_error", "tree_size", "root_hex", "public_key_b64", "key_fingerprint", "trust", "format", "heads", "consistency", "anchors")
    OK_FIELD_NUMBER: _ClassVar[int]
    RECEIPTS_FIELD_NUMBER: _ClassVar[int]
    FIRST_ERROR_FIELD_NUMBER: _ClassVar[int]
    TREE_SIZE_FIELD_NUMBER: _ClassVar[int]
    ROOT_HEX_FIELD_NUMBER: _ClassVar[int]
    PUBLIC_KEY_B64_FIELD_NUMBER: _ClassVar[int]
    KEY_FINGERPRINT_FIELD_NUMBER: _ClassVar[int]
    TRUST_FIELD_NUMBER: _ClassVar[int]
    FORMAT_FIELD_NUMBER: _ClassVar[int]
    HEADS_FIELD_NUMBER: _ClassVar[int]
    CONSISTENCY_FIELD_NUMBER: _ClassVar[int]
    ANCHORS_FIELD_NUMBER: _ClassVar[int]
    ok: bool
    receipts: int
    first_error: BrokenLink
    tree_size: int
    root_hex: str
    public_key_b64: str
    key_fingerprint: str
    trust: str
    format: str
    heads: _containers.RepeatedCompositeFieldContainer[HeadCheck]
    consistency: _containers.RepeatedCompositeFieldContainer[ConsistencyCheck]
    anchors: _containers.RepeatedCompositeFieldContainer[AnchorCheck]
    def __init__(self, ok: _Optional[bool] = ..., receipts: _Optional[int] = ..., first_error: _Optional[_Union[BrokenLink, _Mapping]] = ..., tree_size: _Optional[int] = ..., root_hex: _Optional[str] = ..., public_key_b64: _Optional[str] = ..., key_fingerprint: _Optional[str] = ..., trust: _Optional[str] = ..., format: _Optional[str] = ..., heads: _Optional[_Iterable[_Union[HeadCheck, _Mapping]]] = ..., consistency: _Optional[_Iterable[_Union[ConsistencyCheck, _Mapping]]] = ..., anchors: _Optional[_Iterable[_Union[AnchorCheck, _Mapping]]] = ...) -> None: ...

class HeadCheck(_message.Message):
    __slots__ = ("tree_size", "root_hex", "timestamp", "key_fingerprint", "ok", "detail")
    TREE_SIZE_FIELD_NUMBER: _ClassVar[int]
    ROOT_HEX_FIELD_NUMBER: _ClassVar[int]
    TIMESTAMP_FIELD_NUMBER: _ClassVar[int]
    KEY_FINGERPRINT_FIELD_NUMBER: _ClassVar[int]
    OK_FIELD_NUMBER: _ClassVar[int]
    DETAIL_FIELD_NUMBER: _ClassVar[int]
    tree_size: int
    root_hex: str
    timestamp: str
    key_fingerprint: str
    ok: bool
    detail: str
    def __init__(self, tree_size: _Optional[int] = ..., root_hex: _Optional[str] = ..., timestamp: _Optional[str] = ..., key_fingerprint: _Optional[str] = ..., ok: _Optional[bool] = ..., detail: _Optional[str] = ...) -> None: ...

class ConsistencyCheck(_message.Message):
    __slots__ = ("old_size", "new_size", "source", "ok")
    OLD_SIZE_FIELD_NUMBER: _ClassVar[int]
    NEW_SIZE_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    OK_FIELD_NUMBER: _ClassVar[int]
    old_size: int
    new_size: int
    source: str
    ok: bool
    def __init__(self, old_size: _Optional[int] = ..., new_size: _Optional[int] = ..., source: _Optional[str] = ..., ok: _Optional[bool] = ...) -> None: ...

class AnchorCheck(_message.Message):
    __slots__ = ("index", "sink", "tree_size", "root_hex", "status", "detail")
    INDEX_FIELD_NUMBER: _ClassVar[int]
    SINK_FIELD_NUMBER: _ClassVar[int]
    TREE_SIZE_FIELD_NUMBER: _ClassVar[int]
    ROOT_HEX_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    DETAIL_FIELD_NUMBER: _ClassVar[int]
    index: int
    sink: str
    tree_size: int
    root_hex: str
    status: str
    detail: str
    def __init__(self, index: _Optional[int] = ..., sink: _Optional[str] = ..., tree_size: _Optional[int] = ..., root_hex: _Optional[str] = ..., status: _Optional[str] = ..., detail: _Optional[str] = ...) -> None: ...

class GetTreeHeadKeyRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class GetTreeHeadKeyResponse(_message.Message):
    __slots__ = ("public_key_b64", "fingerprint")
    PUBLIC_KEY_B64_FIELD_NUMBER: _ClassVar[int]
    FINGERPRINT_FIELD_NUMBER: _ClassVar[int]
    public_key_b64: str
    fingerprint: str
    def __init__(self, public_key_b64: _Optional[str] = ..., fingerprint: _Optional[str] = ...) -> None: ...
