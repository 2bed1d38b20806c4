"""Canonical JSON (RFC 8785, JCS) and SHA-256: every identity relgate computes goes through here
(manifests, receipts, gate results, calibrations, answers, judges, overrides, sample sets).

- ``canonical_json(obj)``: the RFC 8785 bytes;
- ``canonical_sha256(obj)``: SHA-256 hex of those bytes (the identity of one JSON value);
- ``jsonl_sha256(rows)``: SHA-256 hex over the sorted canonical lines of many values (the
  identity of a set, whatever its order);
- ``text_sha256(text)`` / ``sha256_hex(data)``: SHA-256 hex of a text's UTF-8 bytes / of bytes.

``canonical_json`` is exact RFC 8785 output. The reference implementation (the ``rfc8785``
package) is pure Python and costs ~80 us for a receipt body with a dozen floats, which would
dominate verifying a large receipt bundle. So there are two faster routes to the same bytes:

1. The C JSON encoder (sorted keys, no whitespace, no ASCII escaping). Its output is
   byte-identical to JCS unless the document holds a float whose Python ``repr`` differs
   from ECMAScript's ``Number.prototype.toString`` (integral floats: ``1.0`` vs ``1``;
   exponent forms: ``1e-05`` vs ``0.00001``, ``1e+16`` vs ``10000000000000000``), an
   integer beyond 2**53 (JCS rejects it), or a character outside the Basic Multilingual Plane
   (JCS sorts keys by UTF-16 code units, Python by code points; the orders agree in the BMP).
   Strings are escaped alike (only ``"``, ``\\`` and U+0000..U+001F, same short forms,
   lowercase ``\\u00xx``). The output is scanned for those cases; a string that merely looks
   like one costs speed, never correctness.
2. Otherwise a small recursive encoder that formats floats the ECMAScript way and sorts keys
   by UTF-16 code units.

Tests compare both routes with ``rfc8785`` on generated documents.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Iterable
from typing import Any

import rfc8785

from relgate.errors import InvalidInputError

__all__ = [
    "canonical_json",
    "canonical_json_slow",
    "canonical_sha256",
    "jsonl_sha256",
    "sha256_hex",
    "takes_fast_path",
    "text_sha256",
]

# Tokens the C encoder writes differently from JCS: floats printed as ``X.0`` (such a token
# always ends at ``,``, ``]``, ``}`` or the end of the document), floats in exponent form
# (``e+``/``e-`` right after a digit) and integers of 16+ digits (maybe beyond 2**53). Each
# check starts with a cheap scan; a string that merely contains such text only costs the
# slower route. (One combined regex costs ~90 us on a 1 KB receipt; these ~10 us.)
_INTEGRAL_FLOAT = re.compile(r"\.0[,\]}]")
_EXPONENT = re.compile(r"\de[+-]")
_LONG_INT = re.compile(r"[:,\[][-0-9][0-9]{15}")
_ASTRAL = re.compile("[\U00010000-\U0010ffff]")
_ENCODER = json.JSONEncoder(
    ensure_ascii=False, allow_nan=False, sort_keys=True, separators=(",", ":"), check_circular=True
)
_ENCODE_STR = json.encoder.encode_basestring  # the C escaper, same rules as JCS
_MAX_SAFE_INT = 2**53 - 1
_MAX_DEPTH = 256
_ERROR_PREFIX = "value cannot be canonicalized (RFC 8785): "


def canonical_json_slow(obj: Any) -> bytes:
    """RFC 8785 through the reference implementation (no fast path)."""
    try:
        return rfc8785.dumps(obj)
    except (rfc8785.CanonicalizationError, TypeError, ValueError) as exc:
        raise InvalidInputError(f"{_ERROR_PREFIX}{exc}") from exc


def canonical_json(obj: Any) -> bytes:
    """Return the RFC 8785 canonical JSON encoding of ``obj`` as UTF-8 bytes.

    ``obj`` is built from dict (string keys), list/tuple, str, int, float, bool and None.
    Non-finite floats, integers outside +-(2**53 - 1), lone surrogates and other types raise
    ``InvalidInputError``. Keys must be strings (a dict whose keys are all ints is encoded
    the way ``json`` does, with the keys as strings; mixed keys raise).
    """
    try:
        text = _ENCODER.encode(obj)
    except (TypeError, ValueError, RecursionError):
        text = None
    if text is not None and _is_jcs(text):
        try:
            return text.encode("utf-8")
        except UnicodeEncodeError:
            pass  # lone surrogates: the encoder below rejects them with a clear message
    parts: list[str] = []
    try:
        _encode(obj, parts.append, 0)
        return "".join(parts).encode("utf-8")
    except (InvalidInputError, UnicodeEncodeError) as exc:
        message = str(exc)
        if not message.startswith(_ERROR_PREFIX):
            message = _ERROR_PREFIX + message
        raise InvalidInputError(message) from exc


def takes_fast_path(obj: Any) -> bool:
    """Whether ``canonical_json(obj)`` is served by the C encoder (for benchmarks and tests)."""
    try:
        return _is_jcs(_ENCODER.encode(obj))
    except (TypeError, ValueError, RecursionError):
        return False


def _is_jcs(text: str) -> bool:
    """True when the C encoder's ``text`` is already the RFC 8785 form (see module doc)."""
    if _INTEGRAL_FLOAT.search(text) is not None or text.endswith(".0"):
        return False
    if ("e+" in text or "e-" in text) and _EXPONENT.search(text) is not None:
        return False
    if _LONG_INT.search(text) is not None or (len(text) >= 16 and text[0] in "-0123456789"):
        return False
    return text.isascii() or _ASTRAL.search(text) is None


def _encode(obj: Any, out: Any, depth: int) -> None:
    kind = type(obj)
    if kind is str:
        out(_ENCODE_STR(obj))
    elif obj is None:
        out("null")
    elif obj is True:
        out("true")
    elif obj is False:
        out("false")
    elif kind is int:
        if not -_MAX_SAFE_INT <= obj <= _MAX_SAFE_INT:
            raise InvalidInputError(f"integer {obj} is beyond what RFC 8785 JSON carries exactly")
        out(str(obj))
    elif kind is float:
        out(_es_number(obj))
    elif kind is dict:
        if depth > _MAX_DEPTH:
            raise InvalidInputError("value nests too deeply to canonicalize")
        for key in obj:
            if type(key) is not str:
                raise InvalidInputError(f"object keys must be strings, not {key!r}")
        keys = sorted(obj)
        if not all(k.isascii() for k in keys) and any(_ASTRAL.search(k) for k in keys):
            keys.sort(key=lambda k: k.encode("utf-16-be"))
        out("{")
        first = True
        for key in keys:
            if not first:
                out(",")
            first = False
            out(_ENCODE_STR(key))
            out(":")
            _encode(obj[key], out, depth + 1)
        out("}")
    elif kind is list or kind is tuple:
        if depth > _MAX_DEPTH:
            raise InvalidInputError("value nests too deeply to canonicalize")
        out("[")
        for i, item in enumerate(obj):
            if i:
                out(",")
            _encode(item, out, depth + 1)
        out("]")
    else:
        # Subclasses (str enums, int enums) are canonicalized by the reference implementation.
        out(canonical_json_slow(obj).decode("utf-8"))


def _es_number(value: float) -> str:
    """ECMAScript ``Number.prototype.toString`` of a finite float (RFC 8785 section 3.2.2.3),
    from the shortest round-trip digits that ``repr`` gives (the same digits ECMAScript
    picks); only their placement differs."""
    if not math.isfinite(value):
        raise InvalidInputError(f"{value} has no JSON representation")
    if value == 0:
        return "0"
    text = repr(value)
    if "e" not in text and not text.endswith(".0"):
        return text  # plain decimal notation: already the ECMAScript form
    sign = ""
    if text[0] == "-":
        sign, text = "-", text[1:]
    mantissa, _, exp_text = text.partition("e")
    int_part, _, frac_part = mantissa.partition(".")
    digits = int_part + frac_part
    point = len(int_part) + (int(exp_text) if exp_text else 0)
    stripped = digits.lstrip("0")
    point -= len(digits) - len(stripped)
    digits = stripped.rstrip("0")
    k, n = len(digits), point  # value = 0.DIGITS x 10**n, as in the ECMAScript algorithm
    if k <= n <= 21:
        return sign + digits + "0" * (n - k)
    if 0 < n <= 21:
        return f"{sign}{digits[:n]}.{digits[n:]}"
    if -6 < n <= 0:
        return f"{sign}0.{'0' * -n}{digits}"
    exponent = f"e{'+' if n - 1 >= 0 else '-'}{abs(n - 1)}"
    return f"{sign}{digits[0]}{'.' + digits[1:] if k > 1 else ''}{exponent}"


def sha256_hex(data: bytes) -> str:
    """Lowercase hex SHA-256 of ``data``."""
    return hashlib.sha256(data).hexdigest()


def text_sha256(text: str) -> str:
    """Lowercase hex SHA-256 of a text's UTF-8 bytes (answers and references are keyed by it)."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def canonical_sha256(obj: Any) -> str:
    """Lowercase hex SHA-256 of ``canonical_json(obj)``: the identity of a JSON value."""
    return hashlib.sha256(canonical_json(obj)).hexdigest()


def jsonl_sha256(rows: Iterable[Any]) -> str:
    """SHA-256 over the sorted canonical JSON lines (each ending in a newline) of ``rows``: the
    identity of a set of values, independent of their order."""
    lines = sorted(canonical_json(row) + b"\n" for row in rows)
    return hashlib.sha256(b"".join(lines)).hexdigest()
