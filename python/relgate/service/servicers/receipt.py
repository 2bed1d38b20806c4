"""ReceiptService: list, export and verify the hash-chained receipts of a tenant."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

from relgate._proto.relgate.v1 import receipt_pb2
from relgate.access import Role
from relgate.app.receipts import export_bundle
from relgate.receipts import AnchorPolicy, Trust, key_fingerprint, verify_bundle
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

    def __init__(
        self, store: Store, public_key_b64: str, *, anchor_dirs: Sequence[Path] = ()
    ) -> None:
        """``anchor_dirs``: the directories this server anchors to, so that VerifyReceipts
        checks its directory anchors against their files (else they are "not checked")."""
        self._store = store
        self._public_key_b64 = public_key_b64
        self._trust = Trust.pinned([public_key_b64])
        self._anchors = AnchorPolicy(dirs=tuple(Path(d) for d in anchor_dirs))

    def rpcs(self) -> dict[str, Rpc]:
        """Method name -> role and implementation."""
        return {
            "ListReceipts": Rpc(Role.VIEWER, unary=self.list),
            "ExportReceipts": Rpc(Role.VIEWER, stream=self.export),
            "VerifyReceipts": Rpc(Role.VIEWER, unary=self.verify),
            "GetTreeHeadKey": Rpc(Role.VIEWER, unary=self.tree_head_key),
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
        """Export and verify the tenant's chain, tree, signatures, consistency between its
        heads and its anchors; name the first break.

        The server's own signing key is pinned, so heads signed by any other key fail. RFC
        3161 anchors are reported "not checked": the server holds no TSA root to judge them.
        """
        tenant = await call.tenant(request.tenant)
        key = self._public_key_b64
        report = await asyncio.to_thread(
            lambda: verify_bundle(
                export_bundle(self._store, tenant=tenant), trust=self._trust, anchors=self._anchors
            )
        )
        response = receipt_pb2.VerifyReceiptsResponse(
            ok=report.ok,
            receipts=report.receipts,
            tree_size=report.tree_size,
            root_hex=report.root_hex,
            public_key_b64=key,
            key_fingerprint=key_fingerprint(key),
            trust=report.trust,
            format=report.format,
            heads=[
                receipt_pb2.HeadCheck(
                    tree_size=h.tree_size,
                    root_hex=h.root_hex,
                    timestamp=h.timestamp,
                    key_fingerprint=h.key_fingerprint,
                    ok=h.ok,
                    detail=h.detail,
                )
                for h in report.heads
            ],
            consistency=[
                receipt_pb2.ConsistencyCheck(
                    old_size=c.old_size, new_size=c.new_size, source=c.source, ok=c.ok
                )
                for c in report.consistency
            ],
            anchors=[
                receipt_pb2.AnchorCheck(
                    index=a.index,
                    sink=a.sink,
                    tree_size=a.tree_size,
                    root_hex=a.root_hex,
                    status=a.status,
                    detail=a.detail,
                )
                for a in report.anchors
            ],
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

    async def tree_head_key(
        self, request: receipt_pb2.GetTreeHeadKeyRequest, call: Call
    ) -> receipt_pb2.GetTreeHeadKeyResponse:
        """The public key this server signs tree heads with."""
        key = self._public_key_b64
        return receipt_pb2.GetTreeHeadKeyResponse(
            public_key_b64=key, fingerprint=key_fingerprint(key)
        )
