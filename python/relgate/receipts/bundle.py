"""Receipt bundles: assemble one from stored rows, verify it offline (docs/design.md §6).

A bundle is one JSON document::

    {"format": "relgate.receipts.bundle.v1", "tenant": ..., "exported_at": ...,
     "public_key_b64": ...,                      # Ed25519 key of the tree heads
     "receipts": [{<body fields>, "receipt_sha256", "seq",
                   "inclusion_proof": <hex of the audit path, concatenated>}, ...],
     "tree_heads": [<signed tree head>, ...],    # oldest first; the last covers every receipt
     "consistency_proofs": [{"old_size", "new_size", "proof": <hex>}, ...],
     "anchors": [<where tree heads were anchored>, ...]}

``verify_bundle`` needs nothing but the bundle (and, to trust the signer rather than only
check self-consistency, a pinned public key). It checks, and names the first receipt that
fails: the tree heads' signatures; each receipt's sequence number, body hash, inclusion
proof against the newest signed head and both chain links; then that every signed head's root
equals the tree the receipts rebuild and that the consistency proofs hold.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from relgate import merkle
from relgate.canonical import canonical_sha256
from relgate.errors import InvalidInputError, RelgateError
from relgate.receipts.model import BODY_FIELDS
from relgate.receipts.tree import MerkleLevels, SignedTreeHead, TreeHeadSigner, leaf_hashes

__all__ = [
    "BUNDLE_FORMAT",
    "REASONS",
    "BrokenLink",
    "BundleReport",
    "assemble_bundle",
    "verify_bundle",
]

BUNDLE_FORMAT = "relgate.receipts.bundle.v1"
#: Older signed heads carried in a bundle (each with a consistency proof to the newest).
MAX_OLD_HEADS = 32
#: Why a bundle fails, as ``BrokenLink.reason`` says it.
REASONS = (
    "altered body",
    "broken chain link",
    "missing receipt",
    "bad signature",
    "tree head mismatch",
    "bad inclusion proof",
)
_ENTRY_KEYS = BODY_FIELDS | {"receipt_sha256", "seq", "inclusion_proof"}


@dataclass(frozen=True, slots=True)
class BrokenLink:
    """The first problem found: the receipt's index in the bundle (its expected ``seq``; -1
    when the bundle's public key is not the pinned one), its ``receipt_sha256`` as the bundle
    gives it (None when it is missing), one of ``REASONS``, and a sentence of detail."""

    index: int
    receipt_sha256: str | None
    reason: str
    detail: str = ""

    def __str__(self) -> str:
        return f"receipt {self.index} ({self.receipt_sha256 or '-'}): {self.reason}: {self.detail}"


@dataclass(frozen=True, slots=True)
class BundleReport:
    """Outcome of ``verify_bundle``: ``ok`` with the number of receipts and the verified
    tree head, or the first broken link."""

    ok: bool
    receipts: int
    first_error: BrokenLink | None
    tree_size: int = 0
    root_hex: str = ""


# ---- export ---------------------------------------------------------------------------------


def assemble_bundle(
    *,
    tenant: str,
    rows: Sequence[tuple[int, str, str]],
    signer: TreeHeadSigner,
    stored_heads: Sequence[dict[str, Any]],
    anchors: Sequence[dict[str, Any]],
    timestamp: str,
    inclusion_proofs: bool = True,
) -> tuple[dict[str, Any], SignedTreeHead | None]:
    """The bundle for ``rows`` (``(seq, receipt_sha256, canonical body)`` in chain order),
    and the tree head it had to sign, if any (the caller stores it)."""
    shas = [sha for _seq, sha, _body in rows]
    levels = MerkleLevels(leaf_hashes(shas))
    root_hex = levels.root().hex()
    current = [
        h
        for h in stored_heads
        if (h["tree_size"], h["root_hex"], h["public_key_b64"])
        == (len(shas), root_hex, signer.public_key_b64)
    ]
    fresh = None
    if current:
        head = SignedTreeHead.from_dict(current[-1])
    else:
        head = fresh = signer.sign(
            tenant=tenant, tree_size=len(shas), root_hex=root_hex, timestamp=timestamp
        )

    receipts = []
    for index, (seq, sha, body) in enumerate(rows):
        entry = json.loads(body)
        entry["receipt_sha256"] = sha
        entry["seq"] = seq
        if inclusion_proofs:
            entry["inclusion_proof"] = b"".join(levels.inclusion_proof(index)).hex()
        receipts.append(entry)

    # Older heads (newest first, distinct, at most MAX_OLD_HEADS) with a consistency proof
    # each: whoever kept one of them can check that this tree extends it.
    older: list[dict[str, Any]] = []
    seen = {(head.tree_size, head.root_hex)}
    for old in reversed(stored_heads):
        key = (old["tree_size"], old["root_hex"])
        if key in seen or old["tree_size"] > head.tree_size:
            continue
        seen.add(key)
        older.append(old)
        if len(older) == MAX_OLD_HEADS:
            break
    older.reverse()
    leaves = levels.levels[0]
    consistency = [
        {
            "old_size": old["tree_size"],
            "new_size": head.tree_size,
            "proof": b"".join(merkle.consistency_proof(leaves, old["tree_size"])).hex(),
        }
        for old in older
        if 0 < old["tree_size"] < head.tree_size
    ]
    bundle = {
        "format": BUNDLE_FORMAT,
        "tenant": tenant,
        "exported_at": timestamp,
        "public_key_b64": signer.public_key_b64,
        "leaf": "sha256(0x00 || bytes.fromhex(receipt_sha256)); RFC 6962 tree in seq order",
        "receipts": receipts,
        "tree_heads": [*older, head.to_dict()],
        "consistency_proofs": consistency,
        "anchors": list(anchors),
    }
    return bundle, fresh


# ---- verify ---------------------------------------------------------------------------------


def verify_bundle(
    bundle: dict[str, Any] | Path, *, public_key_b64: str | None = None
) -> BundleReport:
    """Verify a bundle offline; see the module docstring for what is checked.

    ``public_key_b64`` pins the signer's key (otherwise the bundle's own key is used, which
    shows the bundle is self-consistent but not who signed it). A document that is not a
    bundle at all raises ``InvalidInputError``; a bundle that fails a check returns a report
    naming the first broken receipt.
    """
    doc = _load(bundle)
    tenant, key, entries, heads, consistency = _structure(doc)
    if public_key_b64 is not None and public_key_b64 != key:
        return _fail(entries, -1, "bad signature", "the bundle's public key is not the pinned key")

    # 1. Signatures: nothing else means anything if the heads are forged.
    for head in heads:
        if head.public_key_b64 != key or not head.verify(key):
            return _fail(
                entries,
                max(head.tree_size - 1, 0),
                "bad signature",
                f"tree head of size {head.tree_size} is not signed by the bundle's key",
            )
        if head.tenant != tenant:
            return _fail(entries, 0, "tree head mismatch", f"tree head of tenant {head.tenant!r}")
    final = max(reversed(heads), key=lambda h: h.tree_size)  # the newest: covers the most
    final_root = _unhex(final.root_hex, "tree head root_hex")

    # 2. Receipts one by one: order, body hash, chains.
    first = _check_receipts(tenant, entries)
    upto = first.index if first is not None else len(entries)

    # 3. Inclusion proofs of the receipts before that, against the newest signed head.
    shas = [e["receipt_sha256"] for e in entries[:upto]]
    leaves = leaf_hashes(shas)
    if final.tree_size < len(entries):
        extra = final.tree_size
        first = _earliest(
            first,
            BrokenLink(
                extra,
                entries[extra]["receipt_sha256"],
                "tree head mismatch",
                f"the newest signed tree head covers only {final.tree_size} receipts",
            ),
        )
    # Audit paths are against the newest head; receipts beyond it (reported above) mean the
    # paths were made for another tree, and checking them would only blame receipt 0.
    checkable = entries[:upto] if final.tree_size >= len(entries) else []
    for index, (entry, leaf) in enumerate(zip(checkable, leaves, strict=False)):
        proof_hex = entry.get("inclusion_proof")
        if proof_hex is None:
            continue
        proof = _split(proof_hex)
        if proof is None or not merkle.verify_inclusion(
            leaf, index, final.tree_size, proof, final_root
        ):
            first = _earliest(first, _proof_failure(entries, index, leaf, proof, final, final_root))
            break

    if first is not None:
        return _report(entries, first)
    if final.tree_size > len(entries):
        return _fail(
            entries,
            len(entries),
            "missing receipt",
            f"the signed tree head covers {final.tree_size} receipts; the bundle has "
            f"{len(entries)}",
        )

    # 4. Every signed head must be a prefix of the tree the receipts rebuild.
    levels = MerkleLevels(leaves)
    good = 0
    for head in sorted(heads, key=lambda h: h.tree_size):
        if (
            head.tree_size > levels.size
            or levels.prefix_root(head.tree_size).hex() != head.root_hex
        ):
            return _fail(
                entries,
                min(good, max(len(entries) - 1, 0)),
                "tree head mismatch",
                f"signed tree head of size {head.tree_size} does not match the receipts "
                f"(the first {good} match a signed head)",
            )
        good = head.tree_size
    roots = {h.tree_size: h.root_hex for h in heads}
    for item in consistency:
        old_size, proof = item["old_size"], _split(item["proof"])
        old_root = roots.get(old_size)
        try:
            holds = (
                old_root is not None
                and proof is not None
                and item["new_size"] == final.tree_size
                and merkle.verify_consistency(
                    old_size, final.tree_size, bytes.fromhex(old_root), final_root, proof
                )
            )
        except RelgateError:  # sizes the proof cannot relate
            holds = False
        if not holds:
            return _fail(
                entries,
                max(old_size - 1, 0),
                "tree head mismatch",
                f"consistency proof from size {old_size} to {final.tree_size} fails",
            )
    return BundleReport(
        ok=True,
        receipts=len(entries),
        first_error=None,
        tree_size=final.tree_size,
        root_hex=final.root_hex,
    )


def _check_receipts(tenant: str, entries: list[dict[str, Any]]) -> BrokenLink | None:
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


def _proof_failure(
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
        other_proof = _split(entries[other].get("inclusion_proof")) or levels.inclusion_proof(other)
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


def _earliest(a: BrokenLink | None, b: BrokenLink) -> BrokenLink:
    return b if a is None or b.index < a.index else a


def _fail(entries: list[dict[str, Any]], index: int, reason: str, detail: str) -> BundleReport:
    sha = entries[index].get("receipt_sha256") if 0 <= index < len(entries) else None
    return _report(entries, BrokenLink(index, sha, reason, detail))


def _report(entries: list[dict[str, Any]], link: BrokenLink) -> BundleReport:
    return BundleReport(ok=False, receipts=len(entries), first_error=link)


def _load(bundle: dict[str, Any] | Path) -> dict[str, Any]:
    if isinstance(bundle, dict):
        return bundle
    try:
        doc = json.loads(Path(bundle).read_bytes())
    except (OSError, ValueError) as exc:
        raise InvalidInputError(f"cannot read receipt bundle {bundle}: {exc}") from exc
    if not isinstance(doc, dict):
        raise InvalidInputError("a receipt bundle is a JSON object")
    return doc


def _structure(
    doc: dict[str, Any],
) -> tuple[str, str, list[dict[str, Any]], list[SignedTreeHead], list[dict[str, Any]]]:
    if doc.get("format") != BUNDLE_FORMAT:
        raise InvalidInputError(f"not a receipt bundle (format must be {BUNDLE_FORMAT!r})")
    tenant, key = doc.get("tenant"), doc.get("public_key_b64")
    entries, raw_heads = doc.get("receipts"), doc.get("tree_heads")
    consistency = doc.get("consistency_proofs", [])
    if not isinstance(tenant, str) or not isinstance(key, str):
        raise InvalidInputError("bundle lacks tenant or public_key_b64")
    if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
        raise InvalidInputError("bundle receipts must be a list of objects")
    if not isinstance(raw_heads, list) or not raw_heads:
        raise InvalidInputError("bundle has no signed tree head")
    heads = [SignedTreeHead.from_dict(h) if isinstance(h, dict) else None for h in raw_heads]
    if any(h is None for h in heads):
        raise InvalidInputError("bundle tree heads must be objects")
    if not isinstance(consistency, list) or not all(
        isinstance(c, dict)
        and isinstance(c.get("old_size"), int)
        and isinstance(c.get("new_size"), int)
        and isinstance(c.get("proof"), str)
        for c in consistency
    ):
        raise InvalidInputError("bundle consistency_proofs must be {old_size, new_size, proof}")
    return tenant, key, entries, [h for h in heads if h is not None], consistency


def _split(proof_hex: Any) -> list[bytes] | None:
    if not isinstance(proof_hex, str):
        return None
    try:
        raw = bytes.fromhex(proof_hex)
    except ValueError:
        return None
    if len(raw) % 32:
        return None
    return [raw[i : i + 32] for i in range(0, len(raw), 32)]


def _unhex(value: str, what: str) -> bytes:
    try:
        raw = bytes.fromhex(value)
    except ValueError as exc:
        raise InvalidInputError(f"{what} is not hex") from exc
    if len(raw) != 32:
        raise InvalidInputError(f"{what} is not 32 bytes")
    return raw
