"""No call without a valid key; roles and tenants gate every method."""

from __future__ import annotations

from collections.abc import Callable

import grpc
import pytest
from relgate import errors
from relgate._proto.relgate.v1 import gate_pb2, key_pb2, release_pb2
from relgate.client import RelgateClient
from relgate.service.server import RunningServer
from service_helpers import manifest_bytes, raw_call, status_code

S = grpc.StatusCode
LIST = "/relgate.v1.ReleaseService/ListReleases"
REGISTER = "/relgate.v1.ReleaseService/RegisterRelease"
CREATE_KEY = "/relgate.v1.KeyService/CreateKey"


def _register_payload() -> bytes:
    return release_pb2.RegisterReleaseRequest(manifest=manifest_bytes(1)).SerializeToString()


@pytest.mark.parametrize("key", [None, "rgk_not-a-real-key", ""])
def test_unauthenticated(server: RunningServer, key: str | None) -> None:
    for method, payload in [(LIST, b""), (REGISTER, _register_payload())]:
        assert status_code(lambda m=method, p=payload: raw_call(server.address, m, p, key)) is (
            S.UNAUTHENTICATED
        )


def test_malformed_authorization_header(server: RunningServer, admin_key: str) -> None:
    def call() -> bytes:
        with grpc.insecure_channel(server.address) as channel:
            stub = channel.unary_unary(LIST, request_serializer=None, response_deserializer=None)
            reply: bytes = stub(b"", metadata=(("authorization", f"Basic {admin_key}"),))
            return reply

    assert status_code(call) is S.UNAUTHENTICATED


def test_viewer_reads_but_cannot_mutate(
    server: RunningServer, admin: RelgateClient, client_for: Callable[..., RelgateClient]
) -> None:
    viewer = client_for("viewer")
    assert viewer.list_releases() == []
    with pytest.raises(errors.AuthError, match="needs releaser"):
        viewer.register_release(manifest_bytes(1))
    assert admin.list_releases() == []
    with pytest.raises(errors.AuthError, match="needs admin"):
        viewer.create_key("viewer")


def test_releaser_registers_but_cannot_manage_keys(
    server: RunningServer, client_for: Callable[..., RelgateClient]
) -> None:
    releaser = client_for("releaser")
    result = releaser.register_release(manifest_bytes(1))
    assert result.receipt.actor.startswith("key:test-releaser:")
    payload = key_pb2.CreateKeyRequest(role=key_pb2.ROLE_ADMIN, name="x").SerializeToString()
    key = releaser._metadata[0][1].removeprefix("Bearer ")
    assert status_code(lambda: raw_call(server.address, CREATE_KEY, payload, key)) is (
        S.PERMISSION_DENIED
    )


def test_key_role_must_be_given(admin: RelgateClient) -> None:
    payload = key_pb2.CreateKeyRequest(name="x").SerializeToString()
    with pytest.raises(errors.InvalidInputError, match="role"):
        admin.call_raw(CREATE_KEY, payload)


def test_tenants_are_isolated(
    admin: RelgateClient, client_for: Callable[..., RelgateClient]
) -> None:
    a = client_for("releaser", tenant="team-a")
    b = client_for("releaser", tenant="team-b")
    mine = a.register_release(manifest_bytes(1))
    assert mine.release.tenant == "team-a"
    assert [r.sha256 for r in a.list_releases()] == [mine.release.sha256]
    assert b.list_releases() == []
    # Another tenant's release does not exist for b; naming a's tenant is refused.
    with pytest.raises(errors.NotFoundError):
        b.get_release(mine.release.sha256)
    with pytest.raises(errors.AuthError, match="tenant"):
        b.list_releases(tenant="team-a")
    # A tenant's own admin does not see across tenants either; only an operator key does (the
    # bootstrap key is one), and it names the tenant it acts on.
    b_admin = client_for("admin", tenant="team-b")
    with pytest.raises(errors.NotFoundError):
        b_admin.get_release(mine.release.sha256)
    with pytest.raises(errors.AuthError, match="tenant"):
        b_admin.list_releases(tenant="team-a")
    with pytest.raises(errors.NotFoundError):
        admin.get_release(mine.release.sha256)
    assert admin.get_release(mine.release.sha256, tenant="team-a").tenant == "team-a"
    assert len(admin.list_releases(tenant="team-a")) == 1


@pytest.mark.parametrize(
    ("method", "request_msg"),
    [
        ("/relgate.v1.GateService/GetGateResult", gate_pb2.GetGateResultRequest()),
        ("/relgate.v1.GateService/OverrideGate", gate_pb2.OverrideGateRequest()),
        ("/relgate.v1.GateService/GetGateRun", gate_pb2.GetGateRunRequest()),
    ],
)
def test_gate_methods_authenticate_before_validating(
    server: RunningServer, admin_key: str, method: str, request_msg: object
) -> None:
    payload = request_msg.SerializeToString()  # type: ignore[attr-defined]
    assert status_code(lambda: raw_call(server.address, method, payload, None)) is (
        S.UNAUTHENTICATED
    )
    # Authenticated, the empty request is refused for what it lacks (no release sha256, no
    # run id).
    assert status_code(lambda: raw_call(server.address, method, payload, admin_key)) is (
        S.INVALID_ARGUMENT
    )


def test_streaming_methods_authenticate(server: RunningServer, admin_key: str) -> None:
    def run_gate(key: str | None) -> list[bytes]:
        with grpc.insecure_channel(server.address) as channel:
            stub = channel.unary_stream(
                "/relgate.v1.GateService/RunGate",
                request_serializer=None,
                response_deserializer=None,
            )
            md = (("authorization", f"Bearer {key}"),) if key else ()
            return list(stub(gate_pb2.RunGateRequest().SerializeToString(), metadata=md))

    assert status_code(lambda: run_gate(None)) is S.UNAUTHENTICATED
    assert status_code(lambda: run_gate(admin_key)) is S.INVALID_ARGUMENT
