from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from typing import ClassVar as _ClassVar, Optional as _Optional

DESCRIPTOR: _descriptor.FileDescriptor

class AttestRequest(_message.Message):
    __slots__ = ("path",)
    PATH_FIELD_NUMBER: _ClassVar[int]
    path: str
    def __init__(self, path: _Optional[str] = ...) -> None: ...

class AttestResponse(_message.Message):
    __slots__ = ("root_hex", "tensors", "total_bytes", "attestation_json")
    ROOT_HEX_FIELD_NUMBER: _ClassVar[int]
    TENSORS_FIELD_NUMBER: _ClassVar[int]
    TOTAL_BYTES_FIELD_NUMBER: _ClassVar[int]
    ATTESTATION_JSON_FIELD_NUMBER: _ClassVar[int]
    root_hex: str
    tensors: int
    total_bytes: int
    attestation_json: str
    def __init__(self, root_hex: _Optional[str] = ..., tensors: _Optional[int] = ..., total_bytes: _Optional[int] = ..., attestation_json: _Optional[str] = ...) -> None: ...
