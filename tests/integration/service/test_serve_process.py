"""`relgate serve` as a process: health, reflection, web port, SIGTERM, SIGKILL."""

from __future__ import annotations

import signal
import threading
import urllib.request
from collections.abc import Callable
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import (
    ProtoReflectionDescriptorDatabase,
)
from relgate import errors
from relgate.client import RelgateClient
from service_helpers import ServeProcess, manifest_bytes, wait_for

SERVICES = {
    "relgate.v1.ReleaseService",
    "relgate.v1.GateService",
    "relgate.v1.RolloutService",
    "relgate.v1.ReceiptService",
    "relgate.v1.AttestationService",
    "relgate.v1.KeyService",
}


def test_health_reflection_and_web(serve_process: Callable[..., ServeProcess]) -> None:
    sp = serve_process()
    with grpc.insecure_channel(sp.address) as channel:
        health = health_pb2_grpc.HealthStub(channel)
        for service in ["", *SERVICES]:
            reply = health.Check(health_pb2.HealthCheckRequest(service=service), timeout=10)
            assert reply.status == health_pb2.HealthCheckResponse.SERVING
        db = ProtoReflectionDescriptorDatabase(channel)
        assert set(db.get_services()) >= SERVICES
        release_file = db.FindFileContainingSymbol("relgate.v1.ReleaseService")
        assert release_file.name == "relgate/v1/release.proto"

    with urllib.request.urlopen(sp.web_url + "/healthz", timeout=10) as resp:
        assert resp.status == 200
        assert b"serving" in resp.read()
    with RelgateClient(sp.address, api_key=sp.admin_key) as client:
        client.register_release(manifest_bytes(1))
        with pytest.raises(errors.NotFoundError):
            client.get_release("0" * 64)
    with urllib.request.urlopen(sp.web_url + "/metrics", timeout=10) as resp:
        text = resp.read().decode()
    assert resp.headers["Content-Type"].startswith("text/plain")
    assert (
        'relgate_grpc_requests_total{code="OK",method="relgate.v1.ReleaseService/RegisterRelease"}'
        " 1.0" in text
    )
    assert 'code="NOT_FOUND",method="relgate.v1.ReleaseService/GetRelease"' in text
    assert 'relgate_receipts_emitted_total{kind="register"} 1.0' in text
    assert "relgate_grpc_request_seconds_bucket" in text


def test_binds_loopback_and_admin_key_is_private(
    serve_process: Callable[..., ServeProcess],
) -> None:
    sp = serve_process()
    assert sp.address.startswith("127.0.0.1:")
    assert sp.web_url.startswith("http://127.0.0.1:")
    assert (sp.data_dir / "admin.key").stat().st_mode & 0o777 == 0o600


def test_sigterm_shuts_down_gracefully(serve_process: Callable[..., ServeProcess]) -> None:
    sp = serve_process()
    with RelgateClient(sp.address, api_key=sp.admin_key) as client:
        client.register_release(manifest_bytes(1))
    assert sp.signal(signal.SIGTERM) == 0
    log = sp.log()
    assert "shutting down" in log and "relgate server stopped" in log
    with (
        RelgateClient(sp.address, api_key=sp.admin_key, timeout=5) as client,
        pytest.raises(errors.RelgateError, match="cannot reach"),
    ):
        client.list_releases()


def _hammer_then(
    sp: ServeProcess, stop_server: Callable[[], None], *, acked_before: int = 40
) -> list[str]:
    """Register distinct manifests from 4 threads, run `stop_server` once `acked_before`
    registers were acknowledged (calls still in flight), return every acknowledged sha."""
    acked: list[str] = []
    lock = threading.Lock()
    stop = threading.Event()

    def hammer(worker: int) -> None:
        with RelgateClient(sp.address, api_key=sp.admin_key, timeout=10) as client:
            for i in range(10_000):
                if stop.is_set():
                    return
                try:
                    result = client.register_release(manifest_bytes(worker * 100_000 + i))
                except errors.RelgateError:
                    return  # the server went away under us
                with lock:
                    acked.append(result.release.sha256)

    threads = [threading.Thread(target=hammer, args=(w,)) for w in range(4)]
    for t in threads:
        t.start()
    try:
        wait_for(lambda: len(acked) >= acked_before, timeout=60, what="acknowledged registers")
        stop_server()
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=60)
    return acked


def _check_after_restart(sp: ServeProcess, acked: list[str]) -> None:
    with RelgateClient(sp.address, api_key=sp.admin_key) as client:
        releases = {r.sha256 for r in client.list_releases(limit=10_000)}
        receipts = client.list_receipts()
        verdict = client.verify_receipts()
    # Every acknowledged register survived; every release has its register receipt and no
    # receipt exists without its release (both or neither).
    assert set(acked) <= releases
    register = [r.release_sha256 for r in receipts if r.kind == "register"]
    assert sorted(register) == sorted(releases)
    assert [r.seq for r in receipts] == list(range(len(receipts)))
    assert verdict.ok, verdict.first_error
    assert verdict.receipts == len(receipts)


def test_sigkill_during_registers_loses_nothing_acknowledged(
    serve_process: Callable[..., ServeProcess], tmp_path: Path
) -> None:
    data = tmp_path / "crash"
    sp = serve_process(data)

    def kill() -> None:
        sp.proc.kill()  # SIGKILL while the workers still have calls in flight
        sp.proc.wait(timeout=30)

    acked = _hammer_then(sp, kill)
    assert sp.proc.returncode == -signal.SIGKILL
    _check_after_restart(serve_process(data), acked)


def test_sigterm_during_registers_drains_and_exits_cleanly(
    serve_process: Callable[..., ServeProcess], tmp_path: Path
) -> None:
    data = tmp_path / "drain"
    sp = serve_process(data)
    acked = _hammer_then(sp, lambda: sp.proc.send_signal(signal.SIGTERM))
    assert sp.proc.wait(timeout=30) == 0
    assert "relgate server stopped" in sp.log()
    _check_after_restart(serve_process(data), acked)
