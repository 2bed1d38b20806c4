"""ReceiptService: list, export and verify the hash-chained receipts of a tenant."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

from relgate._proto.relgate.v1 import receipt_pb2
from relgate.access import Role
from relgate.app.receipts import export_bundle
from relgate.receipts import verify_bundle
from relgate.service.rpc import Call, Rpc
from relgate.service.servicers._convert import receipt_pb
from relgate.service.servicers.release import check_sha256
from relgate.store import Store

# Bundle chunks stay far below the message size limit whatever the bundle's size.
CHUNK_BYTES = 1 << 20


def bundle_bytes(bundle: dict[str, object]) -> bytes:
    """The bundle as compact UTF-8 JSON (the export format)."""
    return json.dumps(bundle, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


class ReceiptServicer:
    """relgate.v1.ReceiptService."""

    descriptor = receipt_pb2.DESCRIPTOR.services_by_name["ReceiptService"]

    def __init__(self, store: Store, public_key_b64: str) -> None:
        self._store = store
        self._public_key_b64 = public_key_b64

    def rpcs(self) -> dict[str, Rpc]:
        """Method name -> role and implementation."""
        return {
            "ListReceipts": Rpc(Role.VIEWER, unary=self.list),
            "ExportReceipts": Rpc(Role.VIEWER, stream=self.export),
            "VerifyReceipts": Rpc(Role.VIEWER, unary=self.verify),
        }

    async def list(
        self, request: receipt_pb2.ListReceiptsRequest, call: Call
    ) -> receipt_pb2.ListReceiptsResponse:
        """Receipts in chain order, optionally of one release."""
        tenant = await call.tenant(request.tenant)
        release = (
            check_sha256(request.release_sha256, "release_sha256")
            if request.release_sha256
            else None
        )
        receipts = await asyncio.to_thread(
            self._store.list_receipts,
            tenant=tenant,
            release_sha=release,
            limit=request.limit or None,
        )
        return receipt_pb2.ListReceiptsResponse(receipts=[receipt_pb(r) for r in receipts])

    async def export(
        self, request: receipt_pb2.ExportReceiptsRequest, call: Call
    ) -> AsyncIterator[receipt_pb2.ExportReceiptsChunk]:
        """The tenant's bundle as JSON, in chunks."""
        tenant = await call.tenant(request.tenant)
        data = await asyncio.to_thread(
            lambda: bundle_bytes(export_bundle(self._store, tenant=tenant))
        )
        for start in range(0, len(data), CHUNK_BYTES):
            yield receipt_pb2.ExportReceiptsChunk(data=data[start : start + CHUNK_BYTES])

    async def verify(
        self, request: receipt_pb2.VerifyReceiptsRequest, call: Call
    ) -> receipt_pb2.VerifyReceiptsResponse:
        """Export and verify the tenant's chain, tree and signatures; name the first break.

        The server's own signing key is pinned, so heads signed by any other key fail.
        """
        tenant = await call.tenant(request.tenant)
        key = self._public_key_b64
        report = await asyncio.to_thread(
            lambda: verify_bundle(export_bundle(self._store, tenant=tenant), public_key_b64=key)
        )
        response = receipt_pb2.VerifyReceiptsResponse(
            ok=report.ok,
            receipts=report.receipts,
            tree_size=report.tree_size,
            root_hex=report.root_hex,
            public_key_b64=key,
        )
        if report.first_error is not None:
            err = report.first_error
            response.first_error.CopyFrom(
                receipt_pb2.BrokenLink(
                    index=max(err.index, 0),
                    receipt_sha256=err.receipt_sha256 or "",
                    reason=err.reason,
                    detail=err.detail,
                )
            )
        return response
