"""Receipt-by-receipt checks of a bundle: order, body hash, both chain links, inclusion proofs.

``BrokenLink`` names the first problem: the receipt's index (its expected ``seq``), its
``receipt_sha256`` as the bundle gives it, and one of ``REASONS``. Checks that concern the
bundle as a whole (a key, a fork, an anchor) use index -1, or the index of the first receipt
the bundle lacks when it is cut short.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from relgate import merkle
from relgate.canonical import canonical_sha256
from relgate.errors import RelgateError
from relgate.receipts.document import split_proof
from relgate.receipts.model import BODY_FIELDS
from relgate.receipts.tree import MerkleLevels, SignedTreeHead, leaf_hashes

__all__ = ["REASONS", "BrokenLink", "check_receipts", "earliest", "proof_failure"]

#: Why a bundle fails, as ``BrokenLink.reason`` says it.
REASONS = (
    "altered body",
    "broken chain link",
    "missing receipt",
    "bad signature",
    "tree head mismatch",
    "bad inclusion proof",
    # a head signed by a trusted key outside the key's validity period
    "key not valid",
    # two heads of one size with different roots, or receipts that do not extend a head the
    # verifier accepted before or found anchored
    "fork",
    # the bundle ends before a head the verifier accepted before or found anchored
    "older than witnessed",
    # an anchor record that does not parse or does not verify
    "bad anchor",
    # a kind of anchor the verifier requires is not there, or none verifies
    "missing anchor",
)
_ENTRY_KEYS = BODY_FIELDS | {"receipt_sha256", "seq", "inclusion_proof"}


@dataclass(frozen=True, slots=True)
class BrokenLink:
    """The first problem found: the receipt's index in the bundle (its expected ``seq``; -1
    for a problem of the bundle as a whole), its ``receipt_sha256`` as the bundle gives it
    (None when it is missing), one of ``REASONS``, and a sentence of detail."""

    index: int
    receipt_sha256: str | None
    reason: str
    detail: str = ""

    def __str__(self) -> str:
        where = (
            f"receipt {self.index} ({self.receipt_sha256 or '-'})" if self.index >= 0 else "bundle"
        )
        return f"{where}: {self.reason}: {self.detail}"

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        return {
            "index": self.index,
            "receipt_sha256": self.receipt_sha256 or None,
            "reason": self.reason,
            "detail": self.detail,
        }


def check_receipts(tenant: str, entries: list[dict[str, Any]]) -> BrokenLink | None:
    """Order, body hash and both chain links, in one pass; the first failure."""
    known = {e.get("receipt_sha256") for e in entries if isinstance(e.get("receipt_sha256"), str)}
    prev: str | None = None
    release_heads: dict[str, str] = {}
    for index, entry in enumerate(entries):
        sha = entry.get("receipt_sha256")
        seq = entry.get("seq")
        if seq != index or isinstance(seq, bool):
            if isinstance(seq, int) and seq > index:
                return BrokenLink(index, None, "missing receipt", f"next receipt has seq {seq}")
            return BrokenLink(index, sha, "broken chain link", f"seq {seq!r} out of order")
        keys = entry.keys() - {"inclusion_proof"}
        if keys != _ENTRY_KEYS - {"inclusion_proof"}:
            odd = sorted(keys ^ (_ENTRY_KEYS - {"inclusion_proof"}))
            return BrokenLink(index, sha, "altered body", f"unexpected or missing field(s) {odd}")
        body = {k: entry[k] for k in BODY_FIELDS}
        try:
            actual = canonical_sha256(body)
        except RelgateError as exc:
            return BrokenLink(index, sha, "altered body", str(exc))
        if actual != sha:
            return BrokenLink(
                index, sha, "altered body", f"body hashes to {actual}, not its receipt_sha256"
            )
        wrong = _mistyped(body)
        if wrong is not None:
            return BrokenLink(index, sha, "altered body", f"field {wrong} has the wrong type")
        if body["tenant"] != tenant:
            return BrokenLink(index, sha, "broken chain link", f"tenant {body['tenant']!r}")
        link = body["prev_receipt_sha256"]
        if link != prev:
            return _link_failure(index, sha, "tenant", link, prev, known)
        release = body["release_sha256"]
        release_link = body["prev_release_receipt_sha256"]
        if release_link != release_heads.get(release):
            return _link_failure(
                index, sha, "release", release_link, release_heads.get(release), known
            )
        release_heads[release] = sha
        prev = sha
    return None


def _mistyped(body: dict[str, Any]) -> str | None:
    """The first body field whose JSON type is not what receipts carry, if any."""
    for name in ("kind", "tenant", "release_sha256", "actor", "reason", "time"):
        if not isinstance(body[name], str):
            return name
    for name in ("prev_receipt_sha256", "prev_release_receipt_sha256"):
        if body[name] is not None and not isinstance(body[name], str):
            return name
    return None if isinstance(body["evidence"], dict) else "evidence"


def _link_failure(
    index: int, sha: str, chain: str, link: Any, want: str | None, known: set[Any]
) -> BrokenLink:
    if link is not None and link not in known:
        return BrokenLink(
            index,
            sha,
            "missing receipt",
            f"its {chain}-chain predecessor {link} is not in the bundle",
        )
    return BrokenLink(
        index, sha, "broken chain link", f"{chain} chain points at {link}, expected {want}"
    )


def proof_failure(
    entries: list[dict[str, Any]],
    index: int,
    leaf: bytes,
    proof: list[bytes] | None,
    head: SignedTreeHead,
    signed_root: bytes,
) -> BrokenLink:
    sha = entries[index]["receipt_sha256"]
    if proof is None:
        return BrokenLink(index, sha, "bad inclusion proof", "proof is not a list of hashes")
    shas = [e["receipt_sha256"] for e in entries[: head.tree_size]]
    try:
        leaves = leaf_hashes(shas)
        levels = MerkleLevels(leaves)
    except RelgateError:
        return BrokenLink(index, sha, "bad inclusion proof", "audit path does not reach the root")
    if not merkle.verify_inclusion(leaf, index, len(leaves), proof, levels.root()):
        return BrokenLink(index, sha, "bad inclusion proof", "audit path does not reach the root")
    # The proof is intact (it fits the tree the bundle's own receipts build), so either this
    # receipt was replaced, re-hashed included, or the signed head does not match the
    # receipts. A replaced receipt leaves every other receipt's proof valid against the
    # signed root; a wrong head leaves none valid.
    other = len(leaves) - 1 if index != len(leaves) - 1 else 0
    if other != index:
        other_proof = split_proof(entries[other].get("inclusion_proof")) or levels.inclusion_proof(
            other
        )
        if merkle.verify_inclusion(leaves[other], other, len(leaves), other_proof, signed_root):
            return BrokenLink(
                index,
                sha,
                "altered body",
                "receipt and its receipt_sha256 were replaced: the signed tree holds another leaf",
            )
    return BrokenLink(
        index,
        sha,
        "tree head mismatch",
        f"signed tree head of size {head.tree_size} does not match the receipts",
    )


def earliest(a: BrokenLink | None, b: BrokenLink) -> BrokenLink:
    return b if a is None or b.index < a.index else a
