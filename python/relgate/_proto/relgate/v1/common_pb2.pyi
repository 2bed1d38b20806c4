from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from typing import ClassVar as _ClassVar, Optional as _Optional

DESCRIPTOR: _descriptor.FileDescriptor

class Receipt(_message.Message):
    __slots__ = ("kind", "tenant", "release_sha256", "evidence_json", "actor", "reason", "time", "prev_receipt_sha256", "prev_release_receipt_sha256", "receipt_sha256", "seq")
    KIND_FIELD_NUMBER: _ClassVar[int]
    TENANT_FIELD_NUMBER: _ClassVar[int]
    RELEASE_SHA256_FIELD_NUMBER: _ClassVar[int]
    EVIDENCE_JSON_FIELD_NUMBER: _ClassVar[int]
    ACTOR_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    TIME_FIELD_NUMBER: _ClassVar[int]
    PREV_RECEIPT_SHA256_FIELD_NUMBER: _ClassVar[int]
    PREV_RELEASE_RECEIPT_SHA256_FIELD_NUMBER: _ClassVar[int]
    RECEIPT_SHA256_FIELD_NUMBER: _ClassVar[int]
    SEQ_FIELD_NUMBER: _ClassVar[int]
    kind: str
    tenant: str
    release_sha256: str
    evidence_json: str
    actor: str
    reason: str
    time: str
    prev_receipt_sha256: str
    prev_release_receipt_sha256: str
    receipt_sha256: str
    seq: int
    def __init__(self, kind: _Optional[str] = ..., tenant: _Optional[str] = ..., release_sha256: _Optional[str] = ..., evidence_json: _Optional[str] = ..., actor: _Optional[str] = ..., reason: _Optional[str] = ..., time: _Optional[str] = ..., prev_receipt_sha256: _Optional[str] = ..., prev_release_receipt_sha256: _Optional[str] = ..., receipt_sha256: _Optional[str] = ..., seq: _Optional[int] = ...) -> None: ...

class SignedTreeHead(_message.Message):
    __slots__ = ("tree_size", "root_hex", "timestamp", "signature_b64", "public_key_b64")
    TREE_SIZE_FIELD_NUMBER: _ClassVar[int]
    ROOT_HEX_FIELD_NUMBER: _ClassVar[int]
    TIMESTAMP_FIELD_NUMBER: _ClassVar[int]
    SIGNATURE_B64_FIELD_NUMBER: _ClassVar[int]
    PUBLIC_KEY_B64_FIELD_NUMBER: _ClassVar[int]
    tree_size: int
    root_hex: str
    timestamp: str
    signature_b64: str
    public_key_b64: str
    def __init__(self, tree_size: _Optional[int] = ..., root_hex: _Optional[str] = ..., timestamp: _Optional[str] = ..., signature_b64: _Optional[str] = ..., public_key_b64: _Optional[str] = ...) -> None: ...

class ConfidenceInterval(_message.Message):
    __slots__ = ("low", "high", "confidence")
    LOW_FIELD_NUMBER: _ClassVar[int]
    HIGH_FIELD_NUMBER: _ClassVar[int]
    CONFIDENCE_FIELD_NUMBER: _ClassVar[int]
    low: float
    high: float
    confidence: float
    def __init__(self, low: _Optional[float] = ..., high: _Optional[float] = ..., confidence: _Optional[float] = ...) -> None: ...
