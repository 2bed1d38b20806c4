"""ReleaseService: register, get and list immutable release manifests."""

from __future__ import annotations

import asyncio
import functools
from typing import Literal

from relgate._proto.relgate.v1 import release_pb2
from relgate.access import Role
from relgate.errors import InvalidInputError
from relgate.manifest import ReleaseManifest
from relgate.service.rpc import Call, Rpc
from relgate.service.servicers._convert import receipt_pb, release_pb
from relgate.service.web import Metrics
from relgate.store import Store

MAX_LIST = 10_000
DEFAULT_LIST = 100

_FORMATS: dict[int, Literal["json", "yaml"] | None] = {
    release_pb2.MANIFEST_FORMAT_UNSPECIFIED: None,
    release_pb2.MANIFEST_FORMAT_JSON: "json",
    release_pb2.MANIFEST_FORMAT_YAML: "yaml",
}


def check_sha256(value: str, what: str) -> str:
    """Lower-case 64-hex, or InvalidInputError naming `what`."""
    text = value.strip().lower()
    if len(text) != 64 or any(c not in "0123456789abcdef" for c in text):
        raise InvalidInputError(f"{what} must be 64 hex characters, got {value!r}")
    return text


class ReleaseServicer:
    """relgate.v1.ReleaseService."""

    descriptor = release_pb2.DESCRIPTOR.services_by_name["ReleaseService"]

    def __init__(self, store: Store, metrics: Metrics) -> None:
        self._store = store
        self._metrics = metrics

    def rpcs(self) -> dict[str, Rpc]:
        """Method name -> role and implementation."""
        return {
            "RegisterRelease": Rpc(Role.RELEASER, unary=self.register),
            "GetRelease": Rpc(Role.VIEWER, unary=self.get),
            "ListReleases": Rpc(Role.VIEWER, unary=self.list),
        }

    async def register(
        self, request: release_pb2.RegisterReleaseRequest, call: Call
    ) -> release_pb2.RegisterReleaseResponse:
        """Parse, attest (when the weights are reachable), store, and answer the receipt."""
        tenant = await call.tenant(request.tenant)
        if request.format not in _FORMATS:
            raise InvalidInputError(f"unknown manifest format {request.format}")
        fmt = _FORMATS[request.format]
        expected = (
            check_sha256(request.expected_sha256, "expected_sha256")
            if request.expected_sha256
            else None
        )
        data = bytes(request.manifest)
        if not data.strip():
            raise InvalidInputError("manifest is empty")

        def work() -> release_pb2.RegisterReleaseResponse:
            # Off the event loop: parsing, and the store attests reachable open weights
            # (hashing files) before it writes.
            manifest = ReleaseManifest.parse(data, fmt=fmt)
            result = self._store.register_release(
                manifest, actor=call.actor, tenant=tenant, expected_sha256=expected
            )
            return release_pb2.RegisterReleaseResponse(
                release=release_pb(result.release),
                created=result.created,
                receipt=receipt_pb(result.receipt),
            )

        return await asyncio.to_thread(work)

    async def get(self, request: release_pb2.GetReleaseRequest, call: Call) -> release_pb2.Release:
        """One release by sha256 or release id."""
        handle = request.sha256.strip()
        if not handle:
            raise InvalidInputError("sha256 is required")
        tenant = await call.tenant(request.tenant)
        # Another tenant's release is absent here, not forbidden: existence is data.
        stored = await asyncio.to_thread(
            functools.partial(self._store.get_release, handle, tenant=tenant)
        )
        return release_pb(stored)

    async def list(
        self, request: release_pb2.ListReleasesRequest, call: Call
    ) -> release_pb2.ListReleasesResponse:
        """Releases of a tenant."""
        tenant = await call.tenant(request.tenant)
        if request.limit > MAX_LIST:
            raise InvalidInputError(f"limit must be at most {MAX_LIST}, got {request.limit}")
        limit = request.limit or DEFAULT_LIST
        stored = await asyncio.to_thread(self._store.list_releases, tenant=tenant, limit=limit)
        return release_pb2.ListReleasesResponse(releases=[release_pb(s) for s in stored])
