"""How a gateway is fed: routing snapshots applied in order, each acked once it is live.

One :class:`SnapshotFeed` sits in front of one :class:`~relgate.gateway.server.Gateway`, in
every hosting: ``relgate serve``'s in-process gateway is offered each snapshot directly by the
control plane's fleet hub, a ``relgate gateway`` replica by its watch stream
(docs/scale-out-gateway.md). Either way :meth:`SnapshotFeed.offer` is the one door:

- Snapshots are ordered by ``(epoch, version)``: the epoch names a control-plane start, the
  version counts that control plane's publications of the tenant. A snapshot ordered at or before
  the last one the feed acked is refused, so a replica never goes back to a release older than
  one it acked (a stale control plane, a replayed stream).
- The gateway's own version stays strictly increasing across epochs (a new control plane counts
  from 1 again): the feed gives the gateway ``max(version, live + 1)``.
- The swap is the gateway's atomic store; the ack (``ack(tenant, epoch, version)``) follows it,
  so an acked version is one that every later admission reads.

The feed also says whether its source is connected: a replica that loses the control plane keeps
serving its last snapshots (nothing here expires them) and reports ``connected False`` with the
time it was lost, for ``/healthz`` and the metrics.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from relgate.gateway.server import Gateway
from relgate.routing import RoutingSnapshot

#: ack(tenant, epoch, version): called after the snapshot is live.
AckFn = Callable[[str, int, int], None]


@dataclass(frozen=True, slots=True)
class FeedState:
    """What a feed serves and whether its source is there (for /healthz and metrics)."""

    connected: bool
    disconnected_for_s: float | None
    served: dict[str, tuple[int, int]]
    refused: int


class SnapshotFeed:
    """Applies snapshots to a gateway in (epoch, version) order and acks them. Thread-safe."""

    def __init__(self, gateway: Gateway, ack: AckFn | None = None) -> None:
        self.gateway = gateway
        self._ack = ack
        self._lock = threading.Lock()
        self._served: dict[str, tuple[int, int]] = {}
        self._refused = 0
        self._connected = False
        self._lost_at: float | None = time.monotonic()

    def set_ack(self, ack: AckFn | None) -> None:
        """Where acks go from now on (a replica's new session after a reconnect)."""
        self._ack = ack

    def offer(self, epoch: int, snapshot: RoutingSnapshot) -> bool:
        """Serve ``snapshot`` unless it is ordered at or before the tenant's served one; ack it.

        Returns True when it was made live (False: refused as stale, not acked again).
        """
        tenant, key = snapshot.tenant, (epoch, snapshot.version)
        with self._lock:
            served = self._served.get(tenant)
            if served is not None and key <= served:
                # The same snapshot again (a re-sync on reconnect): ack it, change nothing.
                if key != served:
                    self._refused += 1
                    return False
                ack = self._ack
            else:
                live = self.gateway.snapshot_of(tenant)
                if live is not None and snapshot.version <= live.version:
                    snapshot = replace(snapshot, version=live.version + 1)
                self.gateway.swap(snapshot)
                self._served[tenant] = key
                ack = self._ack
        if ack is not None:
            ack(tenant, epoch, key[1])
        return True

    def served(self, tenant: str) -> tuple[int, int] | None:
        """The (epoch, version) the tenant is served at (None: nothing yet)."""
        with self._lock:
            return self._served.get(tenant)

    def connection(self, connected: bool) -> None:
        """The source came (True) or went (False)."""
        with self._lock:
            if connected:
                self._connected, self._lost_at = True, None
            elif self._connected or self._lost_at is None:
                self._connected, self._lost_at = False, time.monotonic()

    def state(self) -> FeedState:
        """A consistent view of the feed."""
        with self._lock:
            lost = None if self._lost_at is None else time.monotonic() - self._lost_at
            return FeedState(self._connected, lost, dict(self._served), self._refused)

    def health(self) -> dict[str, Any]:
        """The ``/healthz`` body: serving (stale when the control plane is gone) and what."""
        st = self.state()
        return {
            "status": "ok" if st.connected else "stale",
            "control_plane_connected": st.connected,
            "disconnected_for_s": st.disconnected_for_s,
            "serving": {t: {"epoch": e, "version": v} for t, (e, v) in sorted(st.served.items())},
            "refused_stale_snapshots": st.refused,
        }


__all__ = ["AckFn", "FeedState", "SnapshotFeed"]
