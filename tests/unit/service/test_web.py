"""Metrics registry: per-server, counts calls by method and code."""

from __future__ import annotations

from relgate.service.web import Metrics


def test_metrics_are_per_instance_and_counted() -> None:
    a, b = Metrics(), Metrics()
    a.observe_rpc("relgate.v1.ReleaseService/GetRelease", "OK", 0.002)
    a.observe_rpc("relgate.v1.ReleaseService/GetRelease", "NOT_FOUND", 0.001)
    text = a.exposition().decode()
    assert (
        'relgate_grpc_requests_total{code="OK",method="relgate.v1.ReleaseService/GetRelease"} 1.0'
        in text
    )
    assert 'code="NOT_FOUND"' in text
    assert "relgate_grpc_request_seconds_bucket" in text
    assert "GetRelease" not in b.exposition().decode()
