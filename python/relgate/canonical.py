"""Canonical JSON (RFC 8785, JCS) and SHA-256 helpers: the identity of manifests and receipts.

``canonical_json`` is exact RFC 8785 output. The reference implementation (the ``rfc8785``
package) is pure Python and costs ~40 us for a receipt body, which dominates verifying a large
receipt bundle. So the common case takes a fast path through the C JSON encoder, whose output
is byte-identical to JCS when the document has

- no floats (Python's ``repr`` and ECMAScript's number formatting differ: ``1.0`` vs ``1``,
  ``1e-05`` vs ``0.00001``),
- no integers beyond what a double holds exactly (JCS rejects them),
- no characters outside the Basic Multilingual Plane (JCS sorts keys by UTF-16 code units,
  Python by code points; the two orders agree inside the BMP).

String escaping agrees already (both escape only ``"``, ``\\`` and U+0000..U+001F, with the same
short forms and lowercase ``\\u00xx``). The fast path checks its own output for the three
conditions and hands anything doubtful to ``rfc8785``; a false alarm (a string that merely looks
like a float) only costs speed. Tests compare the two paths on generated documents.
"""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any

import rfc8785

from relgate.errors import InvalidInputError

__all__ = ["canonical_json", "canonical_json_slow", "sha256_hex"]

# A number token with a fraction or exponent (every float repr has one), or an integer with 16+
# digits (possibly beyond 2**53). Numbers only ever follow ``[``, ``:`` or ``,``, or open the
# document; strings that happen to contain such text only send the document to the slow path.
_SUSPECT_NUMBER = re.compile(r"(?:^|[\[:,])-?\d+[.eE]|(?:^|[\[:,])-?\d{16}")
_ASTRAL = re.compile("[\U00010000-\U0010ffff]")
_ENCODER = json.JSONEncoder(
    ensure_ascii=False, allow_nan=False, sort_keys=True, separators=(",", ":"), check_circular=True
)


def canonical_json_slow(obj: Any) -> bytes:
    """RFC 8785 through the reference implementation (no fast path)."""
    try:
        return rfc8785.dumps(obj)
    except (rfc8785.CanonicalizationError, TypeError, ValueError) as exc:
        raise InvalidInputError(f"value cannot be canonicalized (RFC 8785): {exc}") from exc


def canonical_json(obj: Any) -> bytes:
    """Return the RFC 8785 canonical JSON encoding of ``obj`` as UTF-8 bytes.

    ``obj`` is built from dict (string keys), list/tuple, str, int, float, bool and None.
    Non-finite floats, integers outside +-(2**53 - 1) and other types raise
    ``InvalidInputError``.
    """
    try:
        text = _ENCODER.encode(obj)
    except (TypeError, ValueError):
        return canonical_json_slow(obj)  # raises the precise error, or handles what we cannot
    if _SUSPECT_NUMBER.search(text) is not None:
        return canonical_json_slow(obj)
    if not text.isascii() and _ASTRAL.search(text) is not None:
        return canonical_json_slow(obj)
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:  # lone surrogates: let the reference implementation decide
        return canonical_json_slow(obj)


def sha256_hex(data: bytes) -> str:
    """Lowercase hex SHA-256 of ``data``."""
    return hashlib.sha256(data).hexdigest()
