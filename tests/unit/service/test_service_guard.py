"""The RPC guard on a real grpc.aio server: internal errors are logged and answered INTERNAL
without leaking their text; mapped errors carry their class; every call is counted."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass
from typing import Any

import grpc
import grpc.aio
import pytest
from relgate._proto.relgate.v1 import release_pb2
from relgate.access import Role
from relgate.errors import GRPC_ERROR_METADATA_KEY as ERROR_METADATA_KEY
from relgate.errors import NotFoundError
from relgate.service.auth import Authenticator, hash_key
from relgate.service.rpc import Call, Rpc, RpcEnv, build_handler
from relgate.service.web import Metrics

KEY = "rgk_test-key"


@dataclass(frozen=True)
class _Key:
    role: str
    name: str
    tenant: str
    revoked_at: str | None = None


class _Keys:
    def create(self, **_: Any) -> None:
        raise AssertionError("not used")

    def find(self, key_hash: str) -> _Key | None:
        return _Key("viewer", "t", "default") if key_hash == hash_key(KEY) else None


async def _boom(request: Any, call: Call) -> release_pb2.Release:
    raise RuntimeError("secret internal detail")


async def _missing(request: Any, call: Call) -> release_pb2.ListReleasesResponse:
    raise NotFoundError("no such thing")


async def _ok(request: Any, call: Call) -> release_pb2.RegisterReleaseResponse:
    return release_pb2.RegisterReleaseResponse(created=True)


async def _exercise(metrics: Metrics) -> dict[str, tuple[grpc.StatusCode, str, str | None]]:
    service = release_pb2.DESCRIPTOR.services_by_name["ReleaseService"]
    env = RpcEnv(authenticator=Authenticator(_Keys()), metrics=metrics)
    rpcs = {
        "GetRelease": Rpc(Role.VIEWER, unary=_boom),
        "ListReleases": Rpc(Role.VIEWER, unary=_missing),
        "RegisterRelease": Rpc(Role.VIEWER, unary=_ok),
    }
    server = grpc.aio.server()
    server.add_generic_rpc_handlers([build_handler(service, rpcs, env)])
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    out: dict[str, tuple[grpc.StatusCode, str, str | None]] = {}
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            for name in rpcs:
                stub = channel.unary_unary(
                    f"/relgate.v1.ReleaseService/{name}",
                    request_serializer=None,
                    response_deserializer=None,
                )
                call = stub(b"", metadata=(("authorization", f"Bearer {KEY}"),))
                with contextlib.suppress(grpc.aio.AioRpcError):
                    await call
                trailing = await call.trailing_metadata()
                cls = dict(trailing or ()).get(ERROR_METADATA_KEY)
                out[name] = (await call.code(), await call.details() or "", cls)  # type: ignore[assignment]
    finally:
        await server.stop(None)
    return out


def test_guard_maps_logs_and_counts(caplog: pytest.LogCaptureFixture) -> None:
    metrics = Metrics()
    with caplog.at_level(logging.ERROR, logger="relgate.service"):
        out = asyncio.run(_exercise(metrics))
    code, details, cls = out["GetRelease"]
    assert code is grpc.StatusCode.INTERNAL
    assert "secret" not in details and "RuntimeError" in details and cls is None
    assert "secret internal detail" in caplog.text
    assert out["ListReleases"] == (grpc.StatusCode.NOT_FOUND, "no such thing", "NotFoundError")
    assert out["RegisterRelease"][0] is grpc.StatusCode.OK
    text = metrics.exposition().decode()
    for method, code_name in [
        ("GetRelease", "INTERNAL"),
        ("ListReleases", "NOT_FOUND"),
        ("RegisterRelease", "OK"),
    ]:
        assert f'code="{code_name}",method="relgate.v1.ReleaseService/{method}"}} 1.0' in text
