"""Request decoding: malformed bytes and unknown fields are refused, at any depth."""

from __future__ import annotations

import pytest
from relgate._proto.relgate.v1 import release_pb2, rollout_pb2
from relgate.errors import InvalidInputError
from relgate.service.rpc import build_handler, decode


def _unknown_field(number: int) -> bytes:
    # Varint field `number`, value 1: a valid wire encoding of a field the schema lacks.
    return bytes([number << 3, 1])


def test_decodes_a_valid_request() -> None:
    raw = release_pb2.GetReleaseRequest(sha256="ab").SerializeToString()
    msg = decode(release_pb2.GetReleaseRequest, raw)
    assert isinstance(msg, release_pb2.GetReleaseRequest)
    assert msg.sha256 == "ab"


def test_refuses_bytes_that_are_not_the_message() -> None:
    with pytest.raises(InvalidInputError, match=r"malformed relgate\.v1\.GetReleaseRequest"):
        decode(release_pb2.GetReleaseRequest, b"\xff\xff\xff\xff")


def test_refuses_a_wrong_wire_type() -> None:
    # Field 1 (sha256, a string) sent as a varint.
    with pytest.raises(InvalidInputError):
        decode(release_pb2.GetReleaseRequest, bytes([1 << 3 | 0, 5]))


def test_refuses_unknown_top_level_fields() -> None:
    raw = release_pb2.GetReleaseRequest(sha256="ab").SerializeToString() + _unknown_field(15)
    with pytest.raises(InvalidInputError, match=r"unknown field number\(s\) \[15\]"):
        decode(release_pb2.GetReleaseRequest, raw)


def test_refuses_unknown_nested_fields() -> None:
    step = rollout_pb2.Step(weight_bp=500).SerializeToString() + _unknown_field(9)
    spec = bytes([1 << 3 | 2, len(step)]) + step  # RolloutSpec.steps[0]
    request = bytes([2 << 3 | 2, len(spec)]) + spec  # StartRolloutRequest.spec
    with pytest.raises(InvalidInputError, match=r"spec\.steps\[0\]"):
        decode(rollout_pb2.StartRolloutRequest, request)


def test_every_method_must_be_declared() -> None:
    service = release_pb2.DESCRIPTOR.services_by_name["ReleaseService"]
    with pytest.raises(ValueError, match="missing"):
        build_handler(service, {}, env=None)  # type: ignore[arg-type]
