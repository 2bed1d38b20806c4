"""RoutingService refuses bad input with one clear line and changes nothing: a malformed
replica name, an unknown or another key's session, a tenant the session does not serve, an
oversized trace push, a caller without an admin key."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from relgate._proto.relgate.v1 import routing_pb2, routing_pb2_grpc
from relgate.service.server import BackgroundServer, RunningServer
from relgate.service.servicers.routing import MAX_PUSH_TRACES


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[RunningServer, str]]:
    with BackgroundServer(tmp_path / "data") as running:
        assert running.admin_key_path is not None
        yield running, running.admin_key_path.read_text().strip()


def _call(server: RunningServer, key: str, method: str, request: object) -> grpc.RpcError:
    with grpc.insecure_channel(server.address) as ch:
        stub = routing_pb2_grpc.RoutingServiceStub(ch)
        md = (("authorization", f"Bearer {key}"),)
        with pytest.raises(grpc.RpcError) as info:
            result = getattr(stub, method)(request, metadata=md, timeout=10)
            if method == "Watch":
                next(iter(result))
    return info.value


def test_bad_routing_calls_get_one_line_errors(server: tuple[RunningServer, str]) -> None:
    running, key = server
    err = _call(running, key, "Watch", routing_pb2.WatchRequest(replica="bad name/../x"))
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "replica:" in err.details() and "\n" not in err.details()
    err = _call(running, key, "Ack", routing_pb2.AckRequest(session_id="gw#1", tenant="default"))
    assert err.code() == grpc.StatusCode.NOT_FOUND
    assert "no routing session" in err.details()
    push = routing_pb2.PushTracesRequest(session_id="gw#1")
    assert _call(running, key, "PushTraces", push).code() == grpc.StatusCode.NOT_FOUND
    err = _call(running, "rgk_not_a_key", "Watch", routing_pb2.WatchRequest(replica="gw"))
    assert err.code() == grpc.StatusCode.UNAUTHENTICATED
    assert running.rollouts.hub is not None and running.rollouts.hub.replicas() != []  # in-process


def test_a_session_takes_only_its_own_tenants_and_bounded_pushes(
    server: tuple[RunningServer, str],
) -> None:
    running, key = server
    with grpc.insecure_channel(running.address) as ch:
        stub = routing_pb2_grpc.RoutingServiceStub(ch)
        md = (("authorization", f"Bearer {key}"),)
        stream = stub.Watch(routing_pb2.WatchRequest(replica="gw"), metadata=md, timeout=30)
        session = next(iter(stream)).session_id
        assert session
        with pytest.raises(grpc.RpcError) as info:
            stub.Ack(routing_pb2.AckRequest(session_id=session, tenant="other", version=1),
                     metadata=md, timeout=10)  # fmt: skip
        assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        foreign = routing_pb2.TraceMessage(id="tr_1", tenant="other", release_sha256="a" * 64)
        with pytest.raises(grpc.RpcError) as info:
            stub.PushTraces(routing_pb2.PushTracesRequest(session_id=session, traces=[foreign]),
                            metadata=md, timeout=10)  # fmt: skip
        assert "not this session's" in info.value.details()
        many = [routing_pb2.TraceMessage(id=f"tr_{i}", tenant="default")
                for i in range(MAX_PUSH_TRACES + 1)]  # fmt: skip
        with pytest.raises(grpc.RpcError) as info:
            stub.PushTraces(routing_pb2.PushTracesRequest(session_id=session, traces=many),
                            metadata=md, timeout=10)  # fmt: skip
        assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert running.rollouts.traces.recorded == 0  # nothing of the refused pushes was kept
        stream.cancel()
