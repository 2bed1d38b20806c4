"""Malformed manifests and requests get a clear error and leave the store untouched."""

from __future__ import annotations

import json

import grpc
import pytest
from relgate import errors
from relgate._proto.relgate.v1 import release_pb2
from relgate.client import RelgateClient
from relgate.service.server import DEFAULT_MAX_MESSAGE_BYTES, RunningServer
from service_helpers import manifest_bytes, manifest_doc, raw_call, status_code

REGISTER = "/relgate.v1.ReleaseService/RegisterRelease"


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda d: d["model"].update(model=7), "model"),
        (lambda d: d["gate_policy"].update(floor="high"), "gate_policy.floor"),
        (lambda d: d.update(colour="blue"), "colour"),
        (lambda d: d["model"].update(temperature=0.2), "temperature"),
        (lambda d: d.pop("dataset"), "dataset"),
        (lambda d: d["dataset"].update(sha256="nothex"), "dataset.sha256"),
        (lambda d: d["model"].update(kind="torrent"), "model"),
    ],
)
def test_malformed_manifest_names_the_field(
    admin: RelgateClient, mutate: object, message: str
) -> None:
    doc = manifest_doc(1, gate_policy={})
    mutate(doc)  # type: ignore[operator]
    with pytest.raises(errors.ManifestError, match=message):
        admin.register_release(json.dumps(doc))
    assert admin.list_releases() == []


@pytest.mark.parametrize("text", [b"{not json", b"[1, 2]", b"\xff\xfe\x00", b"   "])
def test_unparseable_manifest(admin: RelgateClient, text: bytes) -> None:
    before = admin.list_receipts()  # the bootstrap key's key_create receipt
    with pytest.raises((errors.ManifestError, errors.InvalidInputError)):
        admin.register_release(text, fmt="json")
    assert admin.list_receipts() == before


def test_undecodable_request_is_invalid_argument(server: RunningServer, admin_key: str) -> None:
    code = status_code(lambda: raw_call(server.address, REGISTER, b"\xff\xff\xff", admin_key))
    assert code is grpc.StatusCode.INVALID_ARGUMENT


def test_wrong_wire_type_is_invalid_argument(server: RunningServer, admin_key: str) -> None:
    # Field 1 (manifest, bytes) sent as a varint.
    code = status_code(lambda: raw_call(server.address, REGISTER, bytes([0x08, 1]), admin_key))
    assert code is grpc.StatusCode.INVALID_ARGUMENT


def test_unknown_request_field_is_refused(server: RunningServer, admin: RelgateClient) -> None:
    request = release_pb2.RegisterReleaseRequest(manifest=manifest_bytes(1))
    payload = request.SerializeToString() + bytes([15 << 3, 1])  # field 15: not in the schema
    with pytest.raises(errors.InvalidInputError, match=r"unknown field number\(s\) \[15\]"):
        admin.call_raw(REGISTER, payload)
    assert admin.list_releases() == []


def test_payload_over_the_message_limit(server: RunningServer, admin: RelgateClient) -> None:
    huge = manifest_doc(1)
    huge["prompt_template"]["system"] = "x" * (DEFAULT_MAX_MESSAGE_BYTES + 1024)
    with pytest.raises(errors.InvalidInputError, match="too large"):
        admin.register_release(json.dumps(huge))
    # The server is still healthy and stored nothing.
    assert admin.list_releases() == []
    assert admin.register_release(manifest_bytes(2)).created


def test_unknown_format_and_bad_list_limit(admin: RelgateClient) -> None:
    payload = release_pb2.RegisterReleaseRequest(
        manifest=manifest_bytes(1), format=7
    ).SerializeToString()
    with pytest.raises(errors.InvalidInputError, match="format"):
        admin.call_raw(REGISTER, payload)
    with pytest.raises(errors.InvalidInputError, match="limit"):
        admin.list_releases(limit=1_000_000)


@pytest.mark.parametrize(
    ("text", "fmt"),
    [
        (b"[" * 100_000 + b"]" * 100_000, "json"),
        (b"[" * 100_000 + b"]" * 100_000, "yaml"),
        # Eight levels of eight aliases: 16.7 million values for whoever walks the result.
        (
            b"a: &a [x, x, x, x, x, x, x, x]\n"
            + b"".join(
                f"{c}: &{c} [*{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}]\n".encode()
                for p, c in zip("abcdefg", "bcdefgh", strict=True)
            ),
            "yaml",
        ),
    ],
)
def test_hostile_nesting_is_a_clear_error(admin: RelgateClient, text: bytes, fmt: str) -> None:
    """Before: `internal error (RecursionError)` (and an exponential walk for the alias bomb)."""
    before = admin.list_receipts()
    with pytest.raises(errors.ManifestError, match=r"manifest (nests|has more than)"):
        admin.register_release(text, fmt=fmt)
    assert admin.list_receipts() == before
