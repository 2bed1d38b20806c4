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
    __slots__ = ("ok", "receipts", "first_error", "tree_size", "root_hex", "public_key_b64")
    OK_FIELD_NUMBER: _ClassVar[int]
    RECEIPTS_FIELD_NUMBER: _ClassVar[int]
    FIRST_ERROR_FIELD_NUMBER: _ClassVar[int]
    TREE_SIZE_FIELD_NUMBER: _ClassVar[int]
    ROOT_HEX_FIELD_NUMBER: _ClassVar[int]
    PUBLIC_KEY_B64_FIELD_NUMBER: _ClassVar[int]
    ok: bool
    receipts: int
    first_error: BrokenLink
    tree_size: int
    root_hex: str
    public_key_b64: str
    def __init__(self, ok: _Optional[bool] = ..., receipts: _Optional[int] = ..., first_error: _Optional[_Union[BrokenLink, _Mapping]] = ..., tree_size: _Optional[int] = ..., root_hex: _Optional[str] = ..., public_key_b64: _Optional[str] = ...) -> None: ...
