"""What a decision receipt says about the weights, without hashing the checkpoint on the
decision path (docs/attestation.md, "How decisions attach weights").

Register time attests the weights fully (``ReleaseManifest.with_attestation``): that
attestation, with its root, is in the manifest. A decision then checks a sample:
:func:`spot_check_evidence` hashes ``k`` randomly chosen tensors (only their bytes) and
verifies each against the registered root with its inclusion proof; the receipt says
``mode: "spot_check"``, ``k``, which tensors, the result and when. The full re-check runs
off the decision path in :class:`Rechecker` (one background thread, one re-check at a time,
at most one pending per release, a bounded queue) and records its outcome as a
``reattest`` receipt (``mode: "full"``). ``mode: "full"`` on a decision receipt is what
``record_decision(measure_weights="full")`` asks for: the old synchronous full hash.
"""

from __future__ import annotations

import logging
import secrets
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from relgate.attest import Attestation, verify_tensor
from relgate.errors import InvalidInputError, RelgateError
from relgate.manifest import ReleaseManifest
from relgate.receipts.model import ReceiptKind, weights_evidence

__all__ = ["DEFAULT_SPOT_K", "RECHECK_KIND", "Rechecker", "full_evidence", "spot_check_evidence"]

log = logging.getLogger(__name__)

#: Tensors a decision's spot check hashes by default.
DEFAULT_SPOT_K = 4
#: The receipt kind of a background full re-check.
RECHECK_KIND = ReceiptKind.REATTEST.value


def full_evidence(
    manifest: ReleaseManifest, root_dir: Path | None, now: Callable[[], str]
) -> dict[str, Any]:
    """Every byte hashed now (no cache) and compared with the registered root. ``now`` is
    read only when the weights are open (the store's clock)."""
    try:
        measured = manifest.measure_weights(root_dir, confine=True)
    except InvalidInputError as exc:  # a path that leaves the weights root is not read
        return weights_evidence(manifest, None, why=str(exc))
    evidence = weights_evidence(manifest, measured)
    if manifest.open_weights:
        evidence.update(mode="full", checked_at=now())
    return evidence


def spot_check_evidence(
    manifest: ReleaseManifest, root_dir: Path | None, k: int, now: Callable[[], str]
) -> dict[str, Any]:
    """``k`` random tensors hashed and checked with their inclusion proofs against the
    registered root (every file's header is validated on the way)."""
    if not manifest.open_weights:
        return weights_evidence(manifest, None)
    registered = manifest.weights_attestation
    if registered is None or registered.get("root") is None:
        return weights_evidence(
            manifest,
            None,
            why="no registered attestation to spot-check against (weights were not reachable "
            "at register time)",
        )
    try:
        path = manifest.weights_path(root_dir, confine=True)
    except InvalidInputError as exc:  # a path that leaves the weights root is not read
        return weights_evidence(manifest, None, why=str(exc))
    if path is None:
        return weights_evidence(manifest, None)
    att = Attestation.from_dict(registered)  # every leaf and the root recomputed
    root = att.root or ""
    names = secrets.SystemRandom().sample([t.name for t in att.leaves], min(k, att.tensors))
    mismatched: list[str] = []
    error: str | None = None
    for name in sorted(names):
        try:
            if not verify_tensor(path, name, att.prove(name), root):
                mismatched.append(name)
        except RelgateError as exc:  # a header that no longer parses, a tensor gone
            mismatched.append(name)
            error = str(exc)[:300]
    ok = not mismatched and error is None
    evidence: dict[str, Any] = {
        "attestable": True,
        "mode": "spot_check",
        "registered_root": root,
        "matches_registered": ok,
        "spot_check": {
            "k": k,
            "tensors": sorted(names),
            "of": att.tensors,
            "mismatched": mismatched,
        },
        "checked_at": now(),
    }
    if error is not None:
        evidence["spot_check"]["error"] = error
    return evidence


class Rechecker:
    """Background full re-checks of releases' weights, off the decision path.

    ``record(tenant, release_sha)`` is the work (the store's: hash fully, write the
    ``reattest`` receipt). One worker thread runs them one at a time; a release already
    queued or running is not queued again, one re-checked less than ``min_interval`` seconds
    ago is not queued, and at most ``max_pending`` wait (the rest are dropped: the next
    decision schedules again)."""

    def __init__(
        self,
        record: Callable[[str, str], None],
        *,
        max_pending: int = 16,
        min_interval: float = 600.0,
    ) -> None:
        self._record = record
        self._max_pending = max_pending
        self._min_interval = min_interval
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="relgate-recheck")
        self._lock = threading.Lock()
        self._pending: set[tuple[str, str]] = set()
        self._last: dict[tuple[str, str], float] = {}
        self._closed = False

    def schedule(self, tenant: str, release_sha: str) -> bool:
        """Queue a full re-check; False when it was not queued (see the class doc)."""
        key = (tenant, release_sha)
        with self._lock:
            if self._closed or key in self._pending or len(self._pending) >= self._max_pending:
                return False
            last = self._last.get(key)
            if last is not None and time.monotonic() - last < self._min_interval:
                return False
            self._pending.add(key)
        self._pool.submit(self._run, key)
        return True

    def _run(self, key: tuple[str, str]) -> None:
        try:
            if not self._closed:
                self._record(*key)
        except Exception:  # a background task must not die silently nor kill the pool
            log.exception("weights re-check of %s (tenant %s) failed", key[1], key[0])
        finally:
            with self._lock:
                self._pending.discard(key)
                self._last[key] = time.monotonic()

    def wait(self, timeout: float = 60.0) -> bool:
        """Block until nothing is queued or running (tests, shutdown); True when idle."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                if not self._pending:
                    return True
            time.sleep(0.01)
        return False

    def close(self) -> None:
        """Stop taking work; a running re-check finishes, queued ones are skipped."""
        with self._lock:
            self._closed = True
        self._pool.shutdown(wait=True, cancel_futures=True)
