"""The receipt bundle as a document: its formats, reading it with bounded work, and its parts.

Format ``relgate.receipts.bundle.v2`` (written since the verifier trusts only what it holds)::

    {"format": "relgate.receipts.bundle.v2", "tenant": ..., "exported_at": ...,
     "public_key_b64": ...,          # the key of the newest head (a claim, not trust)
     "leaf": "sha256(0x00 || bytes.fromhex(receipt_sha256)); RFC 6962 tree in seq order",
     "receipts": [{<body fields>, "receipt_sha256", "seq",
                   "inclusion_proof": <hex of the audit path against the newest head>}, ...],
     "tree_heads": [<signed tree head>, ...],   # ascending tree size; the last covers all
     "consistency_proofs": [{"old_size", "new_size", "proof": <hex>}, ...],
                                     # one per pair of consecutive heads (RFC 6962 2.1.2)
     "anchors": [{"tenant", "tree_size", "root_hex", "sink", "ref", "created_at"}, ...]}

``tree_heads`` holds the newest head, every head an exported anchor names, and the most
recent older heads (``MAX_OLD_HEADS``); ``anchors`` the most recent anchor records.

Format v1 (before) is still read: its consistency proofs go from each older head to the
newest, not between consecutive heads, and the verifier derives the missing links from the
receipts (every v1 bundle carries every leaf), reporting them as derived.

``load_document`` refuses a bundle larger than ``Limits.max_bundle_bytes`` and a document
nested deeper than the JSON parser can follow, with ``InvalidInputError``, never a
``RecursionError``; ``parse_bundle`` caps the heads, proofs and anchors it will process.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from relgate.documents import load_json
from relgate.errors import InvalidInputError
from relgate.receipts.tree import SignedTreeHead

__all__ = [
    "BUNDLE_FORMAT",
    "BUNDLE_FORMAT_V1",
    "DEFAULT_LIMITS",
    "READABLE_FORMATS",
    "Limits",
    "ParsedBundle",
    "load_document",
    "parse_bundle",
    "split_proof",
    "unhex",
]

BUNDLE_FORMAT = "relgate.receipts.bundle.v2"
BUNDLE_FORMAT_V1 = "relgate.receipts.bundle.v1"
READABLE_FORMATS = (BUNDLE_FORMAT, BUNDLE_FORMAT_V1)


@dataclass(frozen=True, slots=True)
class Limits:
    """Bounds on the work one verification does on a hostile bundle."""

    #: Bytes read from a bundle file (a 100,000-receipt bundle is ~200 MB).
    max_bundle_bytes: int = 1 << 30
    #: Signed tree heads in a bundle, and heads read from an anchor directory.
    max_heads: int = 4096
    max_consistency_proofs: int = 4096
    max_anchors: int = 4096
    #: Hashes in one proof: 64 covers any tree of up to 2**64 leaves.
    max_proof_hashes: int = 128

    def __post_init__(self) -> None:
        for name in ("max_bundle_bytes", "max_heads", "max_consistency_proofs", "max_anchors"):
            if getattr(self, name) < 1:
                raise InvalidInputError(f"{name} must be positive")


DEFAULT_LIMITS = Limits()


@dataclass(frozen=True, slots=True)
class ParsedBundle:
    """A bundle's parts, structurally checked (not yet verified)."""

    format: str
    tenant: str
    public_key_b64: str
    entries: list[dict[str, Any]]
    heads: list[SignedTreeHead]
    consistency: list[dict[str, Any]]
    anchors: list[Any]


def load_document(bundle: dict[str, Any] | Path, limits: Limits = DEFAULT_LIMITS) -> dict[str, Any]:
    """The bundle's JSON object, read from ``bundle`` (a path) with bounded work."""
    if isinstance(bundle, dict):
        return bundle
    path = Path(bundle)
    cap = limits.max_bundle_bytes
    try:
        size = path.stat().st_size
        if size > cap:
            raise InvalidInputError(
                f"receipt bundle {path} is {size} bytes, over the limit of {cap} "
                "(raise it with --max-bundle-bytes)"
            )
        with open(path, "rb") as fh:
            data = fh.read(cap + 1)
    except OSError as exc:
        raise InvalidInputError(f"cannot read receipt bundle {path}: {exc}") from exc
    if len(data) > cap:
        raise InvalidInputError(f"receipt bundle {path} is over the limit of {cap} bytes")
    # No shape walk: a genuine bundle has millions of values; parse_bundle caps what it uses.
    doc = load_json(data, f"cannot read receipt bundle {path}:", shape=False)
    if not isinstance(doc, dict):
        raise InvalidInputError("a receipt bundle is a JSON object")
    return doc


def parse_bundle(doc: dict[str, Any], limits: Limits = DEFAULT_LIMITS) -> ParsedBundle:
    """The parts of a bundle document; ``InvalidInputError`` when it is not a bundle or
    carries more than ``limits`` allow."""
    fmt = doc.get("format")
    if fmt not in READABLE_FORMATS:
        raise InvalidInputError(
            f"not a receipt bundle (format must be {BUNDLE_FORMAT!r} or the older "
            f"{BUNDLE_FORMAT_V1!r}, not {fmt!r:.80})"
        )
    tenant, key = doc.get("tenant"), doc.get("public_key_b64")
    entries, raw_heads = doc.get("receipts"), doc.get("tree_heads")
    consistency = doc.get("consistency_proofs", [])
    anchors = doc.get("anchors", [])
    if not isinstance(tenant, str) or not isinstance(key, str):
        raise InvalidInputError("bundle lacks tenant or public_key_b64")
    if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
        raise InvalidInputError("bundle receipts must be a list of objects")
    if not isinstance(raw_heads, list) or not raw_heads:
        raise InvalidInputError("bundle has no signed tree head")
    _cap(len(raw_heads), limits.max_heads, "tree heads", "--max-heads")
    if not all(isinstance(h, dict) for h in raw_heads):
        raise InvalidInputError("bundle tree heads must be objects")
    heads = [SignedTreeHead.from_dict(h) for h in raw_heads]
    if not isinstance(consistency, list) or not all(
        isinstance(c, dict)
        and _is_size(c.get("old_size"))
        and _is_size(c.get("new_size"))
        and isinstance(c.get("proof"), str)
        for c in consistency
    ):
        raise InvalidInputError("bundle consistency_proofs must be {old_size, new_size, proof}")
    _cap(len(consistency), limits.max_consistency_proofs, "consistency proofs", "--max-heads")
    if not isinstance(anchors, list):
        raise InvalidInputError("bundle anchors must be a list")
    _cap(len(anchors), limits.max_anchors, "anchor records", "--max-heads")
    return ParsedBundle(
        format=fmt,
        tenant=tenant,
        public_key_b64=key,
        entries=entries,
        heads=heads,
        consistency=consistency,
        anchors=anchors,
    )


def _is_size(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _cap(count: int, limit: int, what: str, flag: str) -> None:
    if count > limit:
        raise InvalidInputError(f"bundle carries {count} {what}; the limit is {limit} ({flag})")


def split_proof(
    proof_hex: Any, max_hashes: int = DEFAULT_LIMITS.max_proof_hashes
) -> list[bytes] | None:
    """A proof's hex as a list of 32-byte hashes; None when it is not one (or too long)."""
    if not isinstance(proof_hex, str) or len(proof_hex) > 64 * max_hashes:
        return None
    try:
        raw = bytes.fromhex(proof_hex)
    except ValueError:
        return None
    if len(raw) % 32:
        return None
    return [raw[i : i + 32] for i in range(0, len(raw), 32)]


def unhex(value: str, what: str) -> bytes:
    """32 bytes from 64 hex characters, or ``InvalidInputError``."""
    try:
        raw = bytes.fromhex(value)
    except ValueError as exc:
        raise InvalidInputError(f"{what} is not hex") from exc
    if len(raw) != 32:
        raise InvalidInputError(f"{what} is not 32 bytes")
    return raw
