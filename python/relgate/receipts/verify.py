"""Verify a receipt bundle offline against trust the verifier holds (docs/threat-model.md).

``verify_bundle`` checks, in this order, and names the first broken link:

1. every tree head is signed by a trusted key, valid at the head's time, for the bundle's
   tenant (``Trust``: a pinned key set, or the bundle's own key when asked for explicitly,
   which is reported as self-asserted); two heads of one size with different roots are a fork;
2. against the verifier's witness state (the last head it accepted for the tenant): the
   bundle's newest head is not older, and no head contradicts one seen before;
3. each receipt's sequence number, body hash and both chain links, and its inclusion proof
   against the newest head; that the newest head covers every receipt;
4. every head is a prefix of the tree the receipts rebuild, and an RFC 6962/9162 consistency
   proof holds between every pair of consecutive heads it sees (the bundle's, and the one
   its state holds);
5. the anchors: each record parses and names a head of this tree; directory anchors against
   the verifier's copy of the directory, RFC 3161 tokens against its TSA roots; heads found
   anchored in those directories but missing from the bundle (it was cut back) or different
   (a fork) fail it.

With ``state`` a path, the state is read under a lock and, only when the bundle verifies,
replaced atomically by one whose head is the bundle's newest.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from relgate import merkle
from relgate.errors import InvalidInputError, RelgateError
from relgate.receipts.anchors import (
    ANCHOR_KINDS,
    AnchorCheck,
    AnchorPolicy,
    check_anchor,
    heads_in_anchor_dirs,
    parse_anchor_record,
)
from relgate.receipts.chain import BrokenLink, check_receipts, earliest, proof_failure
from relgate.receipts.document import (
    BUNDLE_FORMAT_V1,
    DEFAULT_LIMITS,
    Limits,
    ParsedBundle,
    load_document,
    parse_bundle,
    split_proof,
    unhex,
)
from relgate.receipts.model import format_time
from relgate.receipts.tree import MerkleLevels, SignedTreeHead, leaf_hashes
from relgate.receipts.trust import Trust, TrustedKey
from relgate.receipts.witness import WitnessState, open_state

__all__ = [
    "BundleReport",
    "ConsistencyCheck",
    "HeadCheck",
    "WitnessCheck",
    "verify_bundle",
]


@dataclass(frozen=True, slots=True)
class HeadCheck:
    """One signed tree head of the bundle and the trusted key that signed it."""

    tree_size: int
    root_hex: str
    timestamp: str
    key_fingerprint: str
    ok: bool
    detail: str = ""


@dataclass(frozen=True, slots=True)
class ConsistencyCheck:
    """A consistency proof between two heads (old -> new) and where it came from: ``bundle``
    (carried by the bundle), ``receipts`` (derived from the receipts: a v1 bundle's missing
    link), ``witness`` (the verifier's state head to the bundle) or ``anchor directory``."""

    old_size: int
    new_size: int
    source: str
    ok: bool


@dataclass(frozen=True, slots=True)
class WitnessCheck:
    """What the verifier's state said, and whether it was moved forward."""

    state: str
    previous_size: int | None
    previous_root_hex: str | None
    outcome: str
    updated: bool = False


@dataclass(frozen=True, slots=True)
class BundleReport:
    """Outcome of ``verify_bundle``: ``ok`` with the number of receipts and the accepted
    (newest) tree head, or the first broken link; and, either way, what was checked: the
    trust mode, the key that signed the accepted head, every head, every consistency proof,
    every anchor and the witness state."""

    ok: bool
    receipts: int
    first_error: BrokenLink | None
    tree_size: int = 0
    root_hex: str = ""
    format: str = ""
    tenant: str = ""
    trust: str = ""
    public_key_b64: str = ""
    key_fingerprint: str = ""
    heads: tuple[HeadCheck, ...] = ()
    consistency: tuple[ConsistencyCheck, ...] = ()
    anchors: tuple[AnchorCheck, ...] = ()
    witness: WitnessCheck | None = None

    def to_dict(self) -> dict[str, Any]:
        """The JSON the CLI prints (``relgate receipts verify --json``)."""
        return {
            "ok": self.ok,
            "receipts": self.receipts,
            "first_error": None if self.first_error is None else self.first_error.to_dict(),
            "format": self.format,
            "tenant": self.tenant,
            "trust": self.trust,
            "key": {"fingerprint": self.key_fingerprint, "public_key_b64": self.public_key_b64}
            if self.key_fingerprint
            else None,
            "tree_size": self.tree_size,
            "root_hex": self.root_hex,
            "heads": [_plain(h) for h in self.heads],
            "consistency": [_plain(c) for c in self.consistency],
            "anchors": [a.to_dict() for a in self.anchors],
            "witness": None if self.witness is None else _plain(self.witness),
        }


def _plain(value: Any) -> dict[str, Any]:
    return {name: getattr(value, name) for name in value.__slots__}


def verify_bundle(
    bundle: dict[str, Any] | Path,
    *,
    trust: Trust | None = None,
    public_key_b64: str | None = None,
    trust_bundle_key: bool = False,
    state: Path | WitnessState | None = None,
    anchors: AnchorPolicy | None = None,
    limits: Limits = DEFAULT_LIMITS,
) -> BundleReport:
    """Verify a bundle offline; see the module docstring for what is checked.

    ``trust`` is the pinned key set (``public_key_b64`` pins one key, the older spelling).
    One of them is required: a proof is checked against trust the verifier holds. To check
    only that a bundle is consistent, say so with ``trust_bundle_key=True``: the bundle's own
    key is used and the report's ``trust`` names it as self-asserted (the CLI's
    ``--trust-bundle-key``).
    ``state`` is the witness state: a file (read under a lock, moved forward on success) or a
    ``WitnessState`` (read only).
    A document that is not a bundle, or exceeds ``limits``, raises ``InvalidInputError``; a
    bundle that fails a check returns a report naming the first broken link.
    """
    given = sum((trust is not None, public_key_b64 is not None, trust_bundle_key))
    if given != 1:
        raise InvalidInputError(
            "no trust anchor: pass trust=Trust.pinned([...]) (the keys you hold for this "
            "server), or trust_bundle_key=True to check consistency only"
            if given == 0
            else "trust, public_key_b64 and trust_bundle_key exclude each other"
        )
    parsed = parse_bundle(load_document(bundle, limits), limits)
    if trust is None:
        trust = (
            Trust.bundle_key(parsed.public_key_b64)
            if trust_bundle_key
            else Trust.pinned([public_key_b64 or ""])
        )
    policy = anchors or AnchorPolicy()
    if not isinstance(state, Path):
        label = "in memory" if state is not None else ""
        return _Verification(parsed, trust, state, label, policy, limits).run()
    with open_state(state) as current:
        report = _Verification(parsed, trust, current, str(state), policy, limits).run()
        if report.ok and report.witness is not None:
            final = max(reversed(parsed.heads), key=lambda h: h.tree_size)
            current.accepted(
                tenant=parsed.tenant,
                head=final,
                key_fingerprint=report.key_fingerprint,
                heads=parsed.heads,
                now=format_time(datetime.now(UTC)),
            ).save(state)
            report = replace(report, witness=replace(report.witness, updated=True))
    return report


@dataclass
class _Verification:
    """One run: the parsed bundle, what the verifier holds, and what was checked so far."""

    bundle: ParsedBundle
    trust: Trust
    state: WitnessState | None
    state_label: str
    policy: AnchorPolicy
    limits: Limits
    heads: list[HeadCheck] = field(default_factory=list)
    consistency: list[ConsistencyCheck] = field(default_factory=list)
    anchors: list[AnchorCheck] = field(default_factory=list)
    witness: WitnessCheck | None = None
    signer: TrustedKey | None = None

    def run(self) -> BundleReport:
        b = self.bundle
        entries = b.entries
        final = max(reversed(b.heads), key=lambda h: h.tree_size)  # the newest covers most
        first = self._check_heads(final) or self._check_witness_early(final)
        if first is not None:
            return self._report(first)
        final_root = unhex(final.root_hex, "tree head root_hex")

        # Receipts one by one: order, body hash, chains; then their inclusion proofs.
        first = check_receipts(b.tenant, entries)
        upto = first.index if first is not None else len(entries)
        leaves = leaf_hashes([e["receipt_sha256"] for e in entries[:upto]])
        if final.tree_size < len(entries):
            extra = final.tree_size
            first = earliest(
                first,
                BrokenLink(
                    extra,
                    entries[extra]["receipt_sha256"],
                    "tree head mismatch",
                    f"the newest signed tree head covers only {final.tree_size} receipts",
                ),
            )
        # Audit paths are against the newest head; receipts beyond it (reported above) mean
        # the paths were made for another tree, and checking them would only blame receipt 0.
        checkable = entries[:upto] if final.tree_size >= len(entries) else []
        for index, (entry, leaf) in enumerate(zip(checkable, leaves, strict=False)):
            proof_hex = entry.get("inclusion_proof")
            if proof_hex is None:
                continue
            proof = split_proof(proof_hex, self.limits.max_proof_hashes)
            if proof is None or not merkle.verify_inclusion(
                leaf, index, final.tree_size, proof, final_root
            ):
                failure = proof_failure(entries, index, leaf, proof, final, final_root)
                first = earliest(first, failure)
                break
        if first is not None:
            return self._report(first)
        if final.tree_size > len(entries):
            return self._fail(
                len(entries),
                "missing receipt",
                f"the signed tree head covers {final.tree_size} receipts; the bundle has "
                f"{len(entries)}",
            )
        levels = MerkleLevels(leaves)
        first = (
            self._check_prefixes(levels)
            or self._check_consistency(levels)
            or self._check_witness(levels)
            or self._check_anchors(levels, final)
        )
        if first is not None:
            return self._report(first)
        return self._report(None, final)

    # ---- 1. heads and keys ------------------------------------------------------------------

    def _check_heads(self, final: SignedTreeHead) -> BrokenLink | None:
        """Every head signed by a trusted key valid at its time, for this tenant; no two
        heads of one size with different roots. The smallest failing head is named."""
        roots: dict[int, str] = {}
        first: BrokenLink | None = None
        for head in sorted(self.bundle.heads, key=lambda h: h.tree_size):
            key, reason, detail = self.trust.check(head)
            fingerprint = key.fingerprint if key is not None else ""
            if key is not None and head.tenant != self.bundle.tenant:
                reason, detail = "tree head mismatch", f"tree head of tenant {head.tenant!r}"
            self.heads.append(
                HeadCheck(
                    head.tree_size,
                    head.root_hex,
                    head.timestamp,
                    fingerprint,
                    ok=not reason,
                    detail=detail,
                )
            )
            if reason and first is None:
                index = 0 if reason == "tree head mismatch" else max(head.tree_size - 1, 0)
                first = self._link(index, reason, detail)
            if head is final and key is not None:
                self.signer = key
            if not reason and roots.setdefault(head.tree_size, head.root_hex) != head.root_hex:
                first = first or self._link(
                    max(head.tree_size - 1, 0),
                    "fork",
                    f"two trusted heads of size {head.tree_size} have different roots "
                    f"({roots[head.tree_size]:.16} and {head.root_hex:.16}): the signer "
                    "showed two histories",
                )
        return first

    # ---- 2. the witness state ---------------------------------------------------------------

    def _check_witness_early(self, final: SignedTreeHead) -> BrokenLink | None:
        """Before the receipts: a bundle older than the witnessed head, or a head that
        contradicts one seen before."""
        if self.state is None:
            return None
        log = self.state.log(self.bundle.tenant)
        if log is None:
            self.witness = WitnessCheck(self.state_label, None, None, "first head for tenant")
            return None
        old = log.head
        self.witness = WitnessCheck(self.state_label, old.tree_size, old.root_hex, "")
        if final.tree_size < old.tree_size:
            self.witness = replace(self.witness, outcome="older than witnessed")
            return self._link(
                final.tree_size,
                "older than witnessed",
                f"the bundle's newest head covers {final.tree_size} receipts; this verifier "
                f"accepted a head of size {old.tree_size} (root {old.root_hex:.16}) on "
                f"{log.accepted_at}: receipts {final.tree_size}..{old.tree_size - 1} are "
                "missing (a bundle cut back, or an old one)",
            )
        for head in sorted(self.bundle.heads, key=lambda h: h.tree_size):
            seen = log.seen.get(head.tree_size)
            if seen is not None and seen != head.root_hex:
                self.witness = replace(self.witness, outcome="fork")
                return self._link(
                    max(head.tree_size - 1, 0),
                    "fork",
                    f"the bundle's head of size {head.tree_size} has root {head.root_hex:.16}; "
                    f"this verifier saw root {seen:.16} at that size",
                )
        return None

    def _check_witness(self, levels: MerkleLevels) -> BrokenLink | None:
        """After the tree is rebuilt: the witnessed head is a prefix of it, by an RFC 6962
        consistency proof from the witnessed head to the next head of the bundle."""
        if self.witness is None or self.witness.previous_size is None:
            return None
        size, root_hex = self.witness.previous_size, self.witness.previous_root_hex or ""
        nxt = min((h for h in self.bundle.heads if h.tree_size >= size), key=lambda h: h.tree_size)
        if nxt.tree_size == size:
            holds = nxt.root_hex == root_hex
        else:
            proof = levels.consistency_proof(size, nxt.tree_size)
            holds = _consistent(size, nxt.tree_size, root_hex, nxt.root_hex, proof)
        self.consistency.append(ConsistencyCheck(size, nxt.tree_size, "witness", holds))
        if not holds:
            self.witness = replace(self.witness, outcome="fork")
            return self._link(
                -1,
                "fork",
                f"the receipts do not extend the head of size {size} (root {root_hex:.16}) "
                "this verifier accepted before: the history was rewritten",
            )
        same = nxt.tree_size == size and size == levels.size
        self.witness = replace(
            self.witness, outcome="same head" if same else "extends witnessed head"
        )
        return None

    # ---- 4. heads against the receipts, and consistency between heads ---------------------

    def _check_prefixes(self, levels: MerkleLevels) -> BrokenLink | None:
        """Every signed head must be a prefix of the tree the receipts rebuild."""
        good = 0
        n = len(self.bundle.entries)
        for head in sorted(self.bundle.heads, key=lambda h: h.tree_size):
            if (
                head.tree_size > levels.size
                or levels.prefix_root(head.tree_size).hex() != head.root_hex
            ):
                return self._link(
                    min(good, max(n - 1, 0)),
                    "tree head mismatch",
                    f"signed tree head of size {head.tree_size} does not match the receipts "
                    f"(the first {good} match a signed head)",
                )
            good = head.tree_size
        return None

    def _check_consistency(self, levels: MerkleLevels) -> BrokenLink | None:
        """Every carried proof holds (RFC 9162 2.1.4.2); in v2 each pair of consecutive
        heads has one; v1 carried proofs to the newest head, so other links are derived."""
        roots: dict[int, str] = {h.tree_size: h.root_hex for h in self.bundle.heads}
        carried: dict[tuple[int, int], bool] = {}
        for item in self.bundle.consistency:
            old_size, new_size = item["old_size"], item["new_size"]
            proof = split_proof(item["proof"], self.limits.max_proof_hashes)
            old_root, new_root = roots.get(old_size), roots.get(new_size)
            holds = (
                old_root is not None
                and new_root is not None
                and proof is not None
                and 0 < old_size < new_size
                and _consistent(old_size, new_size, old_root, new_root, proof)
            )
            carried[(old_size, new_size)] = holds
            self.consistency.append(ConsistencyCheck(old_size, new_size, "bundle", holds))
            if not holds:
                return self._link(
                    max(old_size - 1, 0),
                    "tree head mismatch",
                    f"consistency proof from size {old_size} to {new_size} fails",
                )
        sizes = sorted(roots)
        for old_size, new_size in itertools.pairwise(sizes):
            if old_size == 0 or (old_size, new_size) in carried:
                continue
            if self.bundle.format != BUNDLE_FORMAT_V1:
                return self._link(
                    max(old_size - 1, 0),
                    "tree head mismatch",
                    f"no consistency proof from size {old_size} to {new_size}",
                )
            proof = levels.consistency_proof(old_size, new_size)
            holds = _consistent(old_size, new_size, roots[old_size], roots[new_size], proof)
            self.consistency.append(ConsistencyCheck(old_size, new_size, "receipts", holds))
        return None

    # ---- 5. anchors ---------------------------------------------------------------------

    def _check_anchors(self, levels: MerkleLevels, final: SignedTreeHead) -> BrokenLink | None:
        b = self.bundle

        def trusted(head: SignedTreeHead) -> bool:
            return head.tenant == b.tenant and self.trust.check(head)[0] is not None

        for i, item in enumerate(b.anchors):
            try:
                record = parse_anchor_record(item, b.tenant)
            except InvalidInputError as exc:
                return self._link(-1, "bad anchor", f"anchors[{i}] {exc}: {item!r:.120}")
            where = f"anchors[{i}] ({record.sink}, size {record.tree_size})"
            if record.tree_size > levels.size:
                return self._link(
                    levels.size,
                    "older than witnessed",
                    f"{where} records a head the bundle does not reach (it ends at "
                    f"{levels.size}): receipts were cut off",
                )
            if levels.prefix_root(record.tree_size).hex() != record.root_hex:
                return self._link(
                    -1, "fork", f"{where} anchored root {record.root_hex:.16}, not this tree's"
                )
            candidates = [
                h
                for h in b.heads
                if (h.tree_size, h.root_hex) == (record.tree_size, record.root_hex)
            ]
            status, detail = check_anchor(record, candidates, self.policy, trusted)
            self.anchors.append(
                AnchorCheck(i, record.sink, record.tree_size, record.root_hex, status, detail)
            )
            if status == "failed":
                return self._link(-1, "bad anchor", f"{where}: {detail}")
        for path, head in heads_in_anchor_dirs(
            self.policy.dirs, b.tenant, limit=self.limits.max_heads
        ):
            if not trusted(head):
                continue  # not this deployment's head: nothing it says binds this log
            if head.tree_size > levels.size:
                return self._link(
                    levels.size,
                    "older than witnessed",
                    f"{path} holds a head of size {head.tree_size}, signed by a trusted key; "
                    f"the bundle ends at {levels.size}: receipts were cut off",
                )
            holds = levels.prefix_root(head.tree_size).hex() == head.root_hex
            self.consistency.append(
                ConsistencyCheck(head.tree_size, final.tree_size, "anchor directory", holds)
            )
            if not holds:
                return self._link(
                    -1,
                    "fork",
                    f"{path} holds a trusted head of size {head.tree_size} with "
                    f"root {head.root_hex:.16}, not this tree's",
                )
        for kind in sorted(self.policy.require):
            sink = ANCHOR_KINDS[kind]
            if not any(a.sink == sink and a.status == "verified" for a in self.anchors):
                return self._link(
                    -1,
                    "missing anchor",
                    f"--require-anchor {kind}: no {sink} anchor of this tree verifies",
                )
        return None

    # ---- reports ------------------------------------------------------------------------

    def _link(self, index: int, reason: str, detail: str) -> BrokenLink:
        entries = self.bundle.entries
        sha = entries[index].get("receipt_sha256") if 0 <= index < len(entries) else None
        return BrokenLink(index, sha if isinstance(sha, str) else None, reason, detail)

    def _fail(self, index: int, reason: str, detail: str) -> BundleReport:
        return self._report(self._link(index, reason, detail))

    def _report(
        self, first: BrokenLink | None, final: SignedTreeHead | None = None
    ) -> BundleReport:
        signer = self.signer
        return BundleReport(
            ok=first is None,
            receipts=len(self.bundle.entries),
            first_error=first,
            tree_size=final.tree_size if final is not None else 0,
            root_hex=final.root_hex if final is not None else "",
            format=self.bundle.format,
            tenant=self.bundle.tenant,
            trust=self.trust.label,
            public_key_b64=signer.public_key_b64 if signer is not None else "",
            key_fingerprint=signer.fingerprint if signer is not None else "",
            heads=tuple(self.heads),
            consistency=tuple(self.consistency),
            anchors=tuple(self.anchors),
            witness=self.witness,
        )


def _consistent(
    old_size: int, new_size: int, old_root_hex: str, new_root_hex: str, proof: Sequence[bytes]
) -> bool:
    try:
        return merkle.verify_consistency(
            old_size,
            new_size,
            bytes.fromhex(old_root_hex),
            bytes.fromhex(new_root_hex),
            list(proof),
        )
    except (RelgateError, ValueError):  # sizes the proof cannot relate, roots that are not hex
        return False
