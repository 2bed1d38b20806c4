"""Anchoring on a schedule: every `interval` seconds, sign each tenant's tree head and hand
it to the configured sinks (a directory of tree-head files, a command, an RFC 3161 TSA).

A head that has not changed since its last anchor is not anchored again (the earlier anchor
already covers it). A failing sink is logged and counted, and the next tick tries again:
anchoring is evidence about the log, never a reason to stop serving.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from relgate.errors import InvalidInputError
from relgate.receipts import TreeHeadSigner
from relgate.store import Store
from relgate.web import Metrics

log = logging.getLogger("relgate.service.anchor")


class AnchorSchedule:
    """Periodic anchoring of every tenant's signed tree head."""

    def __init__(
        self,
        store: Store,
        signer: TreeHeadSigner,
        metrics: Metrics,
        *,
        anchor_dir: Path | None,
        anchor_command: Sequence[str] | None,
        interval: float,
        anchor_tsa: str | None = None,
    ) -> None:
        if interval <= 0:
            raise InvalidInputError(f"anchor interval must be positive, got {interval}")
        # Imported here: the sinks pull rfc3161-client, which a server without anchoring
        # never needs.
        from relgate.anchor import CommandSink, DirectorySink, Rfc3161Sink

        self._store = store
        self._signer = signer
        self._metrics = metrics
        self._sinks: list[Any] = []
        if anchor_dir is not None:
            self._sinks.append(DirectorySink(anchor_dir))
        if anchor_command:
            self._sinks.append(CommandSink(list(anchor_command)))
        if anchor_tsa:
            self._sinks.append(Rfc3161Sink(anchor_tsa))
        self._interval = interval
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
        """Sign and anchor every tenant whose tree grew; returns how many heads went out.

        Receipts are append-only, so an unchanged size means an unchanged tree. A tenant
        whose sinks all failed is retried on the next tick.
        """
        from relgate.anchor import anchor_now

        done = 0
        for tenant in await asyncio.to_thread(self._store.tenants):
            size = len(await asyncio.to_thread(self._store.receipt_shas, tenant=tenant))
            if size == 0 or self._last.get(tenant) == size:
                continue
            head, records = await asyncio.to_thread(
                anchor_now, self._store, self._signer, self._sinks, tenant
            )
            for record in records:
                self._metrics.anchors.labels(outcome="ok" if record.ok else "error").inc()
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
                self._metrics.anchors.labels(outcome="error").inc()
                log.exception("anchoring tree heads failed; retrying next interval")
            await asyncio.sleep(max(0.0, next_at - time.monotonic()))
