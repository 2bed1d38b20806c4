"""The receipt value (docs/design.md §6): what a decision leaves behind, hash-chained.

A receipt's body is canonical JSON (RFC 8785) of exactly these fields: ``kind``, ``tenant``,
``release_sha256``, ``evidence``, ``actor``, ``reason``, ``time`` (RFC 3339, UTC),
``prev_receipt_sha256`` (the tenant chain: the tenant's previous receipt, null for its first)
and ``prev_release_receipt_sha256`` (the release chain: the previous receipt about the same
release in the same tenant, null for the first). ``receipt_sha256`` is SHA-256 over the body.
``seq`` is not in the body: it is the receipt's leaf index in the tenant's Merkle tree, which
the tenant chain already fixes.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from relgate.canonical import canonical_json, sha256_hex
from relgate.errors import InvalidInputError
from relgate.manifest import ReleaseManifest

__all__ = [
    "BODY_FIELDS",
    "MAX_RECEIPT_BYTES",
    "RECEIPT_KINDS",
    "TENANT_RECEIPT_KINDS",
    "TENANT_SUBJECT",
    "Receipt",
    "ReceiptKind",
    "format_time",
    "live_release_of",
    "make_receipt",
    "receipt_from_dict",
    "weights_evidence",
]


class ReceiptKind(StrEnum):
    """Every decision kind a receipt can record (docs/design.md §6). Kinds are added, never
    removed: a bundle written today must verify tomorrow."""

    REGISTER = "register"
    GATE_PASS = "gate_pass"
    GATE_FAIL = "gate_fail"
    GATE_OVERRIDE = "gate_override"
    CHECKPOINT_PROMOTE = "checkpoint_promote"
    CHECKPOINT_HOLD = "checkpoint_hold"
    CHECKPOINT_INCONCLUSIVE = "checkpoint_inconclusive"
    AUTO_ROLLBACK = "auto_rollback"
    MANUAL_ROLLBACK = "manual_rollback"
    SHADOW_START = "shadow_start"
    SHADOW_END = "shadow_end"
    ROLLOUT_START = "rollout_start"
    ROLLOUT_COMPLETE = "rollout_complete"
    ROLLOUT_ABORT = "rollout_abort"
    REATTEST = "reattest"
    ROLLOUT_PAUSE = "rollout_pause"
    ROLLOUT_RESUME = "rollout_resume"
    ROLLOUT_PROMOTE = "rollout_promote"
    KEY_CREATE = "key_create"
    KEY_REVOKE = "key_revoke"
    OPERATOR_ACCESS = "operator_access"
    # A routing swap reached the gateway fleet: which replicas acked it, when, which did not.
    SWAP_ACKED = "swap_acked"


#: Every kind's value, in declaration order.
RECEIPT_KINDS: tuple[str, ...] = tuple(k.value for k in ReceiptKind)

#: The subject of a receipt about the tenant itself rather than one of its releases (a key
#: created or revoked, an operator's cross-tenant access): these receipts chain like any other
#: (their release chain is the tenant's administrative chain).
TENANT_SUBJECT = "0" * 64
#: The kinds whose subject is ``TENANT_SUBJECT``.
TENANT_RECEIPT_KINDS: frozenset[str] = frozenset(
    {ReceiptKind.KEY_CREATE, ReceiptKind.KEY_REVOKE, ReceiptKind.OPERATOR_ACCESS}
)

#: The fields of a receipt body, in no particular order (canonical JSON sorts them).
BODY_FIELDS: frozenset[str] = frozenset(
    {
        "kind",
        "tenant",
        "release_sha256",
        "evidence",
        "actor",
        "reason",
        "time",
        "prev_receipt_sha256",
        "prev_release_receipt_sha256",
    }
)

_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_MAX_ACTOR = 256
_MAX_REASON = 64 * 1024
#: A receipt body larger than this is refused: evidence is a summary, not a data dump.
MAX_RECEIPT_BYTES = 4 * 1024 * 1024


def format_time(moment: datetime) -> str:
    """RFC 3339 UTC with microseconds, e.g. ``2026-11-26T22:04:18.123456Z``."""
    if moment.tzinfo is None:
        raise InvalidInputError("receipt time must be timezone-aware")
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass(frozen=True, slots=True)
class Receipt:
    """One receipt. Build it with ``make_receipt`` (which computes ``receipt_sha256``) or
    read it from the store; ``evidence`` must not be mutated."""

    kind: str
    tenant: str
    release_sha256: str
    evidence: dict[str, Any]
    actor: str
    reason: str
    time: str
    prev_receipt_sha256: str | None
    prev_release_receipt_sha256: str | None
    receipt_sha256: str
    seq: int

    def body(self) -> dict[str, Any]:
        """The hashed part, as a plain dict."""
        return {
            "kind": self.kind,
            "tenant": self.tenant,
            "release_sha256": self.release_sha256,
            "evidence": self.evidence,
            "actor": self.actor,
            "reason": self.reason,
            "time": self.time,
            "prev_receipt_sha256": self.prev_receipt_sha256,
            "prev_release_receipt_sha256": self.prev_release_receipt_sha256,
        }

    def canonical_body(self) -> bytes:
        """RFC 8785 canonical JSON of ``body()``: what ``receipt_sha256`` is taken over."""
        return canonical_json(self.body())

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: the body plus ``receipt_sha256`` and ``seq``."""
        return {**self.body(), "receipt_sha256": self.receipt_sha256, "seq": self.seq}


def _check_sha(name: str, value: str | None, *, nullable: bool) -> None:
    if value is None and nullable:
        return
    if not isinstance(value, str) or not _SHA256.match(value):
        raise InvalidInputError(f"{name} must be 64 lowercase hex characters")


def make_receipt(
    *,
    kind: str,
    tenant: str,
    release_sha256: str,
    evidence: dict[str, Any],
    actor: str,
    reason: str,
    time: str,
    prev_receipt_sha256: str | None,
    prev_release_receipt_sha256: str | None,
    seq: int,
) -> Receipt:
    """Validate the fields and compute ``receipt_sha256`` over the canonical body."""
    if kind not in RECEIPT_KINDS:
        raise InvalidInputError(f"unknown receipt kind {kind!r}; known: {', '.join(RECEIPT_KINDS)}")
    if not tenant or len(tenant) > _MAX_ACTOR:
        raise InvalidInputError("tenant must be 1 to 256 characters")
    if not isinstance(actor, str) or not actor.strip() or len(actor) > _MAX_ACTOR:
        raise InvalidInputError("actor must be 1 to 256 characters, not blank")
    if not isinstance(reason, str) or len(reason) > _MAX_REASON:
        raise InvalidInputError(f"reason must be a string of at most {_MAX_REASON} characters")
    if not isinstance(evidence, dict):
        raise InvalidInputError("evidence must be a JSON object")
    _check_sha("release_sha256", release_sha256, nullable=False)
    _check_sha("prev_receipt_sha256", prev_receipt_sha256, nullable=True)
    _check_sha("prev_release_receipt_sha256", prev_release_receipt_sha256, nullable=True)
    body: dict[str, Any] = {
        "kind": kind,
        "tenant": tenant,
        "release_sha256": release_sha256,
        "evidence": evidence,
        "actor": actor,
        "reason": reason,
        "time": time,
        "prev_receipt_sha256": prev_receipt_sha256,
        "prev_release_receipt_sha256": prev_release_receipt_sha256,
    }
    canonical = canonical_json(body)  # InvalidInputError for evidence JSON cannot carry
    if len(canonical) > MAX_RECEIPT_BYTES:
        raise InvalidInputError(
            f"receipt body of {len(canonical)} bytes exceeds {MAX_RECEIPT_BYTES}: "
            "store bulky evidence as a fact and put its hash in the receipt"
        )
    return Receipt(**body, receipt_sha256=sha256_hex(canonical), seq=seq)


def receipt_from_dict(data: dict[str, Any]) -> Receipt:
    """Rebuild a receipt from ``to_dict()`` output without recomputing its sha (the caller
    verifies). Raises ``InvalidInputError`` when fields are missing or of the wrong type."""
    missing = (BODY_FIELDS | {"receipt_sha256", "seq"}) - data.keys()
    if missing:
        raise InvalidInputError(f"receipt lacks field(s): {', '.join(sorted(missing))}")
    if not isinstance(data["seq"], int) or isinstance(data["seq"], bool):
        raise InvalidInputError("receipt seq must be an integer")
    return Receipt(**{k: data[k] for k in (*BODY_FIELDS, "receipt_sha256", "seq")})


def live_release_of(receipts: Iterable[Receipt]) -> str | None:
    """The release serving a tenant's traffic, from its receipts in chain order: the
    ``live_release`` of the latest receipt that names one (the decision that changed it wrote
    it: a completed rollout or shadow, an automatic or manual rollback). None: nothing is live.
    The one place this is derived: the server, the API and the dashboard all ask here."""
    live: str | None = None
    for receipt in receipts:
        if "live_release" in receipt.evidence:
            value = receipt.evidence["live_release"]
            live = value if isinstance(value, str) else None
    return live


def weights_evidence(
    manifest: ReleaseManifest,
    measured: dict[str, Any] | None,
    *,
    why: str = "weights were not reachable from the control plane at decision time",
) -> dict[str, Any]:
    """What a receipt says about the weights (docs/design.md §6).

    Open weights: the attestation measured at decision time (root, scheme, sizes) and whether
    it equals the one registered in the manifest; ``measured=None`` says they were not
    measured, and ``why``. Closed weights (API models): that weights
    cannot be attested, and why; the receipt still covers the decision chain.
    """
    model = manifest.model
    if model.kind == "api":
        return {
            "attestable": False,
            "why": (
                f"closed-weight API model {model.provider}/{model.model}: the provider does not "
                "expose the weights, so they cannot be measured; this receipt covers the "
                "decision chain only"
            ),
        }
    registered = manifest.weights_attestation
    if measured is None:
        return {
            "attestable": True,
            "measured": None,
            "registered_root": registered.get("root") if registered else None,
            "why": why,
        }
    summary = {k: measured[k] for k in ("root", "scheme", "tensors", "bytes") if k in measured}
    return {
        "attestable": True,
        "measured": summary,
        "registered_root": registered.get("root") if registered else None,
        "matches_registered": registered is not None
        and registered.get("root") == measured.get("root"),
    }
