"""Receipts as use cases: export a tenant's bundle, sign its tree head, anchor it on a schedule.

The values and checks are the receipts domain's (``relgate.receipts``: the receipt, the tree,
bundle assembly and verification, the anchoring sinks); this module adds the store: what was
recorded, which heads were signed before, where they were anchored.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from relgate import merkle
from relgate.errors import InvalidInputError
from relgate.receipts.anchors import AnchorRecord, AnchorSink, anchor_tree_head
from relgate.receipts.bundle import assemble_bundle
from relgate.receipts.model import format_time
from relgate.receipts.tree import SignedTreeHead, TreeHeadSigner, leaf_hashes
from relgate.store import Store

__all__ = ["AnchorSchedule", "anchor_now", "export_bundle", "sign_tree_head"]

log = logging.getLogger("relgate.anchor")


def export_bundle(
    store: Store,
    *,
    tenant: str = "default",
    inclusion_proofs: bool = True,
    signer: TreeHeadSigner | None = None,
    now: datetime | None = None,
) -> dict[str, Any]:
    """A self-contained bundle of the tenant's receipts, signed by a tree head over all of
    them (the newest stored head when it covers exactly these receipts, e.g. the anchored
    one; otherwise a fresh head, appended to the store). ``inclusion_proofs=False`` leaves
    out the per-receipt audit paths (about 1 KiB per receipt at 100,000 receipts);
    verification then relies on rebuilding the tree."""
    bundle, fresh = assemble_bundle(
        tenant=tenant,
        rows=store.receipt_rows(tenant=tenant),
        signer=signer or TreeHeadSigner(store.data_dir),
        stored_heads=store.audit.tree_heads(tenant=tenant),
        anchors=store.audit.anchors(tenant=tenant),
        timestamp=format_time(now) if now is not None else store.now(),
        inclusion_proofs=inclusion_proofs,
    )
    if fresh is not None:
        store.audit.add_tree_head(**fresh.to_dict())
    return bundle


def sign_tree_head(
    store: Store, signer: TreeHeadSigner, tenant: str = "default", *, now: datetime | None = None
) -> SignedTreeHead:
    """Sign the tenant's current receipt tree and append the head to the store."""
    shas = store.receipt_shas(tenant=tenant)
    root = merkle.root(leaf_hashes(shas))
    head = signer.sign(
        tenant=tenant,
        tree_size=len(shas),
        root_hex=root.hex(),
        timestamp=format_time(now) if now is not None else store.now(),
    )
    store.audit.add_tree_head(**head.to_dict())
    return head


def anchor_now(
    store: Store, signer: TreeHeadSigner, sinks: Sequence[AnchorSink], tenant: str = "default"
) -> tuple[SignedTreeHead, list[AnchorRecord]]:
    """Sign the tenant's current tree head, anchor it to every sink and store the successful
    anchor records (they travel in exported bundles)."""
    head = sign_tree_head(store, signer, tenant)
    records = anchor_tree_head(head, sinks)
    for record in records:
        if record.ok:
            store.audit.add_anchor(
                tenant=tenant,
                tree_size=record.tree_size,
                root_hex=record.root_hex,
                sink=record.sink,
                ref=record.ref,
            )
    return head, records


class AnchorSchedule:
    """Every ``interval`` seconds, sign each tenant's tree head and hand it to the sinks.

    A head that has not changed since its last anchor is not anchored again (the earlier anchor
    already covers it; receipts are append-only, so an unchanged size is an unchanged tree). A
    failing sink is logged, reported through ``on_anchor`` and retried on the next tick:
    anchoring is evidence about the log, never a reason to stop serving.
    """

    def __init__(
        self,
        store: Store,
        signer: TreeHeadSigner,
        sinks: Sequence[AnchorSink],
        *,
        interval: float,
        on_anchor: Callable[[AnchorRecord | None], None] | None = None,
    ) -> None:
        if interval <= 0:
            raise InvalidInputError(f"anchor interval must be positive, got {interval}")
        self._store = store
        self._signer = signer
        self._sinks = list(sinks)
        self._interval = interval
        self._on_anchor = on_anchor or (lambda record: None)
        self._last: dict[str, int] = {}
        self._task: asyncio.Task[None] | None = None
        self.anchored = 0

    def start(self) -> None:
        """Start the periodic task on the running loop (the first tick is immediate)."""
        self._task = asyncio.get_running_loop().create_task(self._run(), name="relgate-anchor")

    async def stop(self) -> None:
        """Cancel the schedule (an anchor in progress finishes in its thread)."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def anchor_once(self) -> int:
        """Sign and anchor every tenant whose tree grew; returns how many heads went out. A
        tenant whose sinks all failed is retried on the next tick."""
        done = 0
        for tenant in await asyncio.to_thread(self._store.tenants):
            size = len(await asyncio.to_thread(self._store.receipt_shas, tenant=tenant))
            if size == 0 or self._last.get(tenant) == size:
                continue
            head, records = await asyncio.to_thread(
                anchor_now, self._store, self._signer, self._sinks, tenant
            )
            for record in records:
                self._on_anchor(record)
                if not record.ok:
                    log.warning("anchor sink %s failed: %s", record.sink, record.error)
            if any(record.ok for record in records):
                self._last[tenant] = head.tree_size
                self.anchored += 1
                done += 1
        return done

    async def _run(self) -> None:
        next_at = time.monotonic()
        while True:
            next_at += self._interval
            try:
                await self.anchor_once()
            except Exception:
                self._on_anchor(None)
                log.exception("anchoring tree heads failed; retrying next interval")
            await asyncio.sleep(max(0.0, next_at - time.monotonic()))
