"""Which ``relgate serve`` decides: one leader per store, the others follow.

Every control plane on a store polls the ``control-plane`` lease (``relgate.store.control``):
the holder renews it, the others take it over once it has expired. The leader ticks rollouts and
writes decisions, each fenced by the epoch it was granted; a follower serves reads (rebuilt from
the store) and refuses commands with the leader's name. A leader that cannot renew in time keeps
nothing: a takeover bumps the epoch, and its next write is refused in the write's own
transaction, after which it steps down.

SQLite: every process on the file meets the same lease, but SQLite is a single host's database
with one writer at a time; several control planes there buy no availability (see
docs/scale-out.md).
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass

from relgate.errors import InvalidInputError
from relgate.store import Store
from relgate.store.control import CONTROL_PLANE_LEASE, Fence, LeaseLostError, LeaseState

__all__ = ["LeaderOptions", "Leadership", "Term"]

log = logging.getLogger("relgate.leader")


@dataclass(frozen=True)
class LeaderOptions:
    """Lease knobs. A leader renews every ``ttl_s / 3``; a dead leader is replaced within
    ``ttl_s`` plus one poll (``poll_s``, at most ``ttl_s / 3``) of its last renewal."""

    ttl_s: float = 5.0
    holder: str | None = None
    wall: Callable[[], float] = time.time

    def __post_init__(self) -> None:
        if not (0.1 <= self.ttl_s <= 3600):
            raise InvalidInputError("the leader lease lasts 0.1 to 3600 seconds")


@dataclass(frozen=True)
class Term:
    """The outcome of one poll: leading or not, and whether a new term began (this control
    plane just became leader, or won the lease back after losing it: its view of the store is
    stale and must be rebuilt before it decides anything)."""

    leading: bool
    new_term: bool
    lease: LeaseState


class Leadership:
    """This control plane's standing on the store's lease. Thread-safe."""

    def __init__(self, store: Store, options: LeaderOptions | None = None) -> None:
        self._store = store
        self.options = opt = options or LeaderOptions()
        self.holder = opt.holder or (
            f"{socket.gethostname()[:64]}:{os.getpid()}:{uuid.uuid4().hex[:12]}"
        )
        self._lock = threading.Lock()
        self._fence: Fence | None = None
        self._renewed_at = 0.0
        self.lease: LeaseState | None = None

    @property
    def fence(self) -> Fence | None:
        """The fence this control plane holds now (None: it follows)."""
        return self._fence

    @property
    def leading(self) -> bool:
        """Whether it leads (as of its last poll)."""
        return self._fence is not None

    def poll(self) -> Term:
        """Renew (leader, at most every ``ttl_s / 3``) or try to take over (follower)."""
        opt = self.options
        now = opt.wall()
        with self._lock:
            fence = self._fence
            if (
                fence is not None
                and self.lease is not None
                and now < self._renewed_at + (opt.ttl_s / 3)
            ):
                return Term(True, False, self.lease)
        granted, state = self._store.control.acquire(
            CONTROL_PLANE_LEASE, self.holder, ttl_s=opt.ttl_s, now=now
        )
        with self._lock:
            new_term = granted is not None and (fence is None or granted.epoch != fence.epoch)
            if fence is not None and granted is None:
                log.warning("lost the control-plane lease to %s (epoch %d)", state.holder,
                            state.epoch)  # fmt: skip
            if new_term:
                log.info("leading the control plane (epoch %d)", state.epoch)
            self._fence = granted
            self._renewed_at = now if granted is not None else 0.0
            self.lease = state
        return Term(granted is not None, new_term, state)

    def require(self) -> Fence:
        """The fence for a decision write; raises ``LeaseLostError`` naming the leader when this
        control plane follows."""
        fence = self._fence
        if fence is None:
            lease = self.lease
            leader = "unknown" if lease is None else f"{lease.holder} (epoch {lease.epoch})"
            raise LeaseLostError(
                f"this control plane follows; the leader is {leader}: send commands there"
            )
        return fence

    def step_down(self) -> None:
        """Forget the fence (a write was refused: another control plane took over)."""
        with self._lock:
            self._fence = None
            self._renewed_at = 0.0

    def release(self) -> None:
        """Give the lease up (clean shutdown): a follower takes over at its next poll."""
        with self._lock:
            fence, self._fence = self._fence, None
        if fence is not None:
            self._store.control.release(fence)
