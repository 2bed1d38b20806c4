"""Routing snapshots and traces on the wire (``relgate.v1.RoutingService``), both sides.

A release travels as its registered manifest: the replica re-derives the route (endpoint, served
model, prompt template, routing) from it with the same ``ReleaseRoute.from_manifest`` as the
control plane, after checking that the manifest hashes to the release's SHA-256, so a snapshot
cannot name one release and route to another.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

from relgate._proto.relgate.v1 import routing_pb2
from relgate.errors import InvalidInputError
from relgate.manifest import ReleaseManifest
from relgate.routing import ReleaseRoute, RoutingSnapshot
from relgate.traces import Trace

__all__ = ["snapshot_message", "snapshot_of", "trace_message", "trace_of"]

#: A release's manifest as canonical JSON bytes, by SHA-256.
ManifestBytes = Callable[[str], bytes]


def _route_message(route: ReleaseRoute, manifest: ManifestBytes) -> routing_pb2.ReleaseRouteMessage:
    return routing_pb2.ReleaseRouteMessage(
        release_sha256=route.release_sha256, manifest_json=manifest(route.release_sha256)
    )


def snapshot_message(
    epoch: int, snap: RoutingSnapshot, manifest: ManifestBytes
) -> routing_pb2.RoutingSnapshotMessage:
    """The wire form of one snapshot (each release as its manifest)."""
    msg = routing_pb2.RoutingSnapshotMessage(
        tenant=snap.tenant,
        epoch=epoch,
        version=snap.version,
        stable=_route_message(snap.stable, manifest),
        weight_bp=snap.weight_bp,
        shadow=snap.shadow,
    )
    if snap.candidate is not None:
        msg.candidate.CopyFrom(_route_message(snap.candidate, manifest))
    return msg


def _route_of(msg: routing_pb2.ReleaseRouteMessage) -> ReleaseRoute:
    manifest = ReleaseManifest.parse(msg.manifest_json, fmt="json")
    if manifest.sha256 != msg.release_sha256:
        raise InvalidInputError(
            f"snapshot route {msg.release_sha256[:12]}: its manifest hashes to "
            f"{manifest.sha256[:12]}"
        )
    return ReleaseRoute.from_manifest(manifest)


def snapshot_of(msg: routing_pb2.RoutingSnapshotMessage) -> tuple[int, RoutingSnapshot]:
    """(epoch, snapshot) from the wire (InvalidInputError when it does not hold together)."""
    if not msg.HasField("stable"):
        raise InvalidInputError("snapshot without a stable release")
    candidate = _route_of(msg.candidate) if msg.HasField("candidate") else None
    snap = RoutingSnapshot(
        int(msg.version),
        _route_of(msg.stable),
        candidate,
        weight_bp=int(msg.weight_bp),
        shadow=msg.shadow,
        tenant=msg.tenant,
    )
    return int(msg.epoch), snap


def trace_message(t: Trace, *, event_only: bool = False) -> routing_pb2.TraceMessage:
    """The wire form of one trace (feedback stays with the replica that served it);
    ``event_only``: without prompt, answer and variables (sampled out)."""
    if event_only:
        t = replace(t, prompt="", answer="", variables=())
    return routing_pb2.TraceMessage(
        event_only=event_only,
        id=t.id,
        time=t.time,
        slice=t.slice,
        traffic_class=t.traffic_class,
        prompt=t.prompt,
        answer=t.answer,
        latency_s=t.latency_s,
        status=t.status,
        release_sha256=t.release_sha256,
        session_bucket=t.session_bucket,
        admitted_at=t.admitted_at,
        snapshot_version=t.snapshot_version,
        role=t.role,
        shadow=t.shadow,
        stream=t.stream,
        variables=dict(t.variables),
        error=t.error,
        tenant=t.tenant,
    )


def trace_of(m: routing_pb2.TraceMessage) -> Trace:
    """A trace from the wire (the inverse of :func:`trace_message`)."""
    return Trace(
        id=m.id,
        time=m.time,
        slice=m.slice,
        traffic_class=m.traffic_class,
        prompt=m.prompt,
        answer=m.answer,
        latency_s=m.latency_s,
        status=m.status,
        release_sha256=m.release_sha256,
        session_bucket=m.session_bucket,
        admitted_at=m.admitted_at,
        snapshot_version=m.snapshot_version,
        role=m.role,
        shadow=m.shadow,
        stream=m.stream,
        variables=tuple(sorted(m.variables.items())),
        error=m.error,
        tenant=m.tenant,
    )
