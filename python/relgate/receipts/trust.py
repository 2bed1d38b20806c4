"""Trust the verifier holds: the tree-head keys it pins (docs/threat-model.md).

A bundle names the key that signed its tree heads, but anyone can build a bundle, sign it with
a key of their own and name that key: a bundle's own key proves that the bundle is
self-consistent, never who wrote it. So a verifier pins the deployment's key (or a key set,
for rotation) and refuses heads signed by anything else.

- ``TrustedKey``: one Ed25519 public key (base64 of the 32 raw bytes) with an optional
  validity period: a head whose signed ``timestamp`` falls outside ``[not_before,
  not_after]`` is refused (a rotated-out key signs nothing new).
- ``Trust``: what a verification trusts: a pinned key set, or, only when asked explicitly,
  the bundle's own key (``Trust.bundle_key``), which is reported as self-asserted.
- ``load_key_set`` reads a key-set file (JSON or YAML)::

      {"format": "relgate.trusted_keys.v1",
       "keys": [{"public_key_b64": "...", "name": "2026",
                 "not_before": "2026-01-01T00:00:00Z", "not_after": null}]}

  ``keys`` items may also be bare base64 strings; a ``fingerprint`` given beside a key must
  match it. ``relgate receipts key --json`` prints such a file.
- ``trust_from_sources`` combines ``--key``/``--keys`` with ``RELGATE_TRUSTED_KEYS`` (keys
  separated by commas or white space) and ``RELGATE_TRUSTED_KEYS_FILE``: keys given on the
  command line replace the environment's, they never add to them.

A key's fingerprint is the SHA-256 of its 32 raw bytes, in hex.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)

from relgate.documents import load_json, load_yaml
from relgate.errors import InvalidInputError
from relgate.receipts.tree import SignedTreeHead

__all__ = [
    "BUNDLE_KEY_TRUST",
    "ENV_KEYS",
    "ENV_KEYS_FILE",
    "KEY_SET_FORMAT",
    "PINNED_TRUST",
    "Trust",
    "TrustedKey",
    "key_fingerprint",
    "load_key_set",
    "parse_time",
    "public_key_of_key_file",
    "trust_from_sources",
]

KEY_SET_FORMAT = "relgate.trusted_keys.v1"
ENV_KEYS = "RELGATE_TRUSTED_KEYS"
ENV_KEYS_FILE = "RELGATE_TRUSTED_KEYS_FILE"
#: How a report names the trust mode (``Trust.label``).
PINNED_TRUST = "pinned"
BUNDLE_KEY_TRUST = "bundle-key (self-asserted: proves consistency only, not origin)"
#: A key-set file is a handful of keys; anything larger is not one.
MAX_KEY_SET_BYTES = 1 << 20
_MAX_KEYS = 1024
_RFC3339 = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(\.\d{1,9})?([Zz]|[+-]\d{2}:\d{2})$"
)


def key_fingerprint(public_key_b64: str) -> str:
    """SHA-256 of the key's raw bytes, hex (``InvalidInputError`` if not a 32-byte key)."""
    return hashlib.sha256(_raw_key(public_key_b64)).hexdigest()


def parse_time(value: str, what: str = "time") -> datetime:
    """An RFC 3339 time (``Z`` or an offset; fractions beyond microseconds are cut) as an
    aware UTC datetime; ``InvalidInputError`` otherwise."""
    match = _RFC3339.match(value) if isinstance(value, str) else None
    if match is None:
        raise InvalidInputError(f"{what} {value!r} is not an RFC 3339 time")
    fraction = (match.group(7) or ".0")[1:7].ljust(6, "0")
    zone = match.group(8).upper()
    text = f"{value[:19].replace('t', 'T').replace(' ', 'T')}.{fraction}"
    text += "+00:00" if zone == "Z" else zone
    try:
        return datetime.fromisoformat(text).astimezone(UTC)
    except ValueError as exc:
        raise InvalidInputError(f"{what} {value!r} is not a valid time: {exc}") from exc


def _raw_key(public_key_b64: str) -> bytes:
    try:
        raw = base64.b64decode(public_key_b64, validate=True)
    except (binascii.Error, ValueError, TypeError) as exc:
        raise InvalidInputError(f"public key {public_key_b64!r:.60} is not base64") from exc
    if len(raw) != 32:
        raise InvalidInputError(
            f"public key {public_key_b64!r:.60} is {len(raw)} bytes; an Ed25519 key is 32"
        )
    return raw


@dataclass(frozen=True, slots=True)
class TrustedKey:
    """One pinned Ed25519 tree-head key and the period in which it may sign heads."""

    public_key_b64: str
    not_before: datetime | None = None
    not_after: datetime | None = None
    name: str = ""

    def __post_init__(self) -> None:
        raw = _raw_key(self.public_key_b64)
        try:
            Ed25519PublicKey.from_public_bytes(raw)
        except ValueError as exc:
            raise InvalidInputError(f"public key {self.fingerprint[:16]} is not Ed25519") from exc
        # One spelling per key, so that comparing base64 strings compares keys.
        object.__setattr__(self, "public_key_b64", base64.b64encode(raw).decode("ascii"))
        for bound in (self.not_before, self.not_after):
            if bound is not None and bound.tzinfo is None:
                raise InvalidInputError("key validity bounds must be timezone-aware")
        if self.not_before and self.not_after and self.not_after < self.not_before:
            raise InvalidInputError(f"key {self.fingerprint[:16]}: not_after before not_before")

    @property
    def fingerprint(self) -> str:
        """SHA-256 of the raw key, hex."""
        return key_fingerprint(self.public_key_b64)

    def validity(self) -> str:
        """The period as text, for reports."""
        if self.not_before is None and self.not_after is None:
            return "no validity period"
        lo = self.not_before.isoformat() if self.not_before else "-inf"
        hi = self.not_after.isoformat() if self.not_after else "+inf"
        return f"valid {lo} .. {hi}"

    def valid_at(self, moment: datetime) -> bool:
        """Whether a head signed at ``moment`` is inside the validity period."""
        if self.not_before is not None and moment < self.not_before:
            return False
        return self.not_after is None or moment <= self.not_after

    def to_dict(self) -> dict[str, Any]:
        """A key-set file entry."""
        return {
            "public_key_b64": self.public_key_b64,
            "fingerprint": self.fingerprint,
            "name": self.name,
            "not_before": _format(self.not_before),
            "not_after": _format(self.not_after),
        }


def _format(moment: datetime | None) -> str | None:
    return None if moment is None else moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True, slots=True)
class Trust:
    """The keys a verification accepts tree heads from, and how they came to be trusted.

    Build with ``Trust.pinned`` (keys the verifier holds) or ``Trust.bundle_key`` (the
    bundle's own key, only when the user asked for it: it proves consistency, not origin).
    """

    keys: tuple[TrustedKey, ...]
    self_asserted: bool = False

    @classmethod
    def pinned(cls, keys: Iterable[TrustedKey | str]) -> Trust:
        """Trust exactly these keys (base64 strings or ``TrustedKey`` values)."""
        found = tuple(k if isinstance(k, TrustedKey) else TrustedKey(k) for k in keys)
        if not found:
            raise InvalidInputError("a pinned key set needs at least one key")
        return cls(keys=found)

    @classmethod
    def bundle_key(cls, public_key_b64: str) -> Trust:
        """Trust the key a bundle names itself (self-asserted)."""
        return cls(keys=(TrustedKey(public_key_b64, name="bundle"),), self_asserted=True)

    @property
    def label(self) -> str:
        """``pinned`` or the loud self-asserted label."""
        return BUNDLE_KEY_TRUST if self.self_asserted else PINNED_TRUST

    def key_for(self, public_key_b64: str) -> list[TrustedKey]:
        """The trusted entries for this key (several when a key set lists it more than once,
        e.g. two validity periods)."""
        try:
            spelled = base64.b64encode(_raw_key(public_key_b64)).decode("ascii")
        except InvalidInputError:
            return []
        return [k for k in self.keys if k.public_key_b64 == spelled]

    def check(self, head: SignedTreeHead) -> tuple[TrustedKey | None, str, str]:
        """Whether ``head`` is signed by a trusted key valid at the head's time.

        Returns ``(key, "", "")`` when it is, else ``(None, reason, detail)`` with reason
        ``bad signature`` (unknown key or a signature that does not verify) or ``key not
        valid`` (a trusted key outside its validity period).
        """
        candidates = self.key_for(head.public_key_b64)
        if not candidates:
            named = _safe_fingerprint(head.public_key_b64)
            trusted = ", ".join(k.fingerprint[:16] for k in self.keys)
            return (
                None,
                "bad signature",
                f"tree head of size {head.tree_size} is signed by key {named}, which is not "
                f"a trusted key (trusted: {trusted})",
            )
        if not head.verify(candidates[0].public_key_b64):
            return (
                None,
                "bad signature",
                f"tree head of size {head.tree_size}: the signature does not verify under "
                f"trusted key {candidates[0].fingerprint[:16]}",
            )
        if all(k.not_before is None and k.not_after is None for k in candidates):
            return candidates[0], "", ""
        try:
            moment = parse_time(head.timestamp, "tree head timestamp")
        except InvalidInputError as exc:
            return None, "key not valid", str(exc)
        for key in candidates:
            if key.valid_at(moment):
                return key, "", ""
        return (
            None,
            "key not valid",
            f"tree head of size {head.tree_size} was signed at {head.timestamp} by key "
            f"{candidates[0].fingerprint[:16]}, outside its validity "
            f"({'; '.join(k.validity() for k in candidates)})",
        )


def _safe_fingerprint(public_key_b64: str) -> str:
    try:
        return key_fingerprint(public_key_b64)[:16]
    except InvalidInputError:
        return f"{public_key_b64!r:.24} (not a key)"


# ---- key-set files and sources --------------------------------------------------------------


def load_key_set(path: Path) -> list[TrustedKey]:
    """The keys of a key-set file (JSON or YAML; see the module docstring)."""
    path = Path(path)
    try:
        with open(path, "rb") as fh:
            data = fh.read(MAX_KEY_SET_BYTES + 1)
    except OSError as exc:
        raise InvalidInputError(f"cannot read key set {path}: {exc.strerror or exc}") from exc
    if len(data) > MAX_KEY_SET_BYTES:
        raise InvalidInputError(f"key set {path} is larger than {MAX_KEY_SET_BYTES} bytes")
    what = f"key set {path}"
    doc = load_json(data, what) if data.lstrip()[:1] in (b"{", b"[") else load_yaml(data, what)
    return parse_key_set(doc, where=str(path))


def parse_key_set(doc: Any, *, where: str = "key set") -> list[TrustedKey]:
    """Keys from a parsed key-set document (an object with ``keys``, or a bare list)."""
    if isinstance(doc, Mapping):
        fmt = doc.get("format", KEY_SET_FORMAT)
        if fmt != KEY_SET_FORMAT:
            raise InvalidInputError(f"{where}: format must be {KEY_SET_FORMAT!r}, not {fmt!r}")
        items = doc.get("keys")
    else:
        items = doc
    if not isinstance(items, list) or not items:
        raise InvalidInputError(f"{where}: expected a non-empty list of keys under 'keys'")
    if len(items) > _MAX_KEYS:
        raise InvalidInputError(f"{where}: more than {_MAX_KEYS} keys")
    return [_key_entry(item, f"{where}: keys[{i}]") for i, item in enumerate(items)]


def _key_entry(item: Any, where: str) -> TrustedKey:
    if isinstance(item, str):
        return TrustedKey(item.strip())
    if not isinstance(item, Mapping) or not isinstance(item.get("public_key_b64"), str):
        raise InvalidInputError(f"{where}: needs public_key_b64 (base64 of an Ed25519 key)")
    unknown = set(item) - {"public_key_b64", "fingerprint", "name", "not_before", "not_after"}
    if unknown:
        raise InvalidInputError(f"{where}: unknown field(s) {sorted(unknown)}")
    bounds = {}
    for name in ("not_before", "not_after"):
        value = item.get(name)
        if isinstance(value, datetime):  # YAML reads unquoted times itself
            value = value if value.tzinfo else value.replace(tzinfo=UTC)
            bounds[name] = value.astimezone(UTC)
        elif value is not None:
            bounds[name] = parse_time(value, f"{where}.{name}")
    key = TrustedKey(item["public_key_b64"].strip(), name=str(item.get("name") or ""), **bounds)
    given = item.get("fingerprint")
    if given is not None and given != key.fingerprint:
        raise InvalidInputError(f"{where}: fingerprint {given!r} is not the key's")
    return key


def trust_from_sources(
    *,
    keys: Sequence[str] = (),
    key_files: Sequence[Path] = (),
    env: Mapping[str, str] | None = None,
) -> Trust | None:
    """The pinned key set from command-line keys and key files, else from the environment
    (``RELGATE_TRUSTED_KEYS``, ``RELGATE_TRUSTED_KEYS_FILE``); None when nothing is pinned."""
    found: list[TrustedKey] = [TrustedKey(k.strip()) for k in keys]
    for path in key_files:
        found += load_key_set(path)
    if not found and env is not None:
        found += [TrustedKey(k) for k in re.split(r"[\s,]+", env.get(ENV_KEYS, "")) if k]
        if env.get(ENV_KEYS_FILE):
            found += load_key_set(Path(env[ENV_KEYS_FILE]))
    return Trust.pinned(found) if found else None


def public_key_of_key_file(path: Path) -> str:
    """The base64 public half of a tree-head signing key file (``receipt_signing.key``,
    PKCS#8 PEM), read without creating or changing anything."""
    try:
        pem = Path(path).read_bytes()
    except OSError as exc:
        raise InvalidInputError(f"cannot read signing key {path}: {exc.strerror or exc}") from exc
    try:
        key = serialization.load_pem_private_key(pem, password=None)
    except (ValueError, TypeError) as exc:
        raise InvalidInputError(f"{path} is not a PEM private key") from exc
    if not isinstance(key, Ed25519PrivateKey):
        raise InvalidInputError(f"{path} does not hold an Ed25519 private key")
    raw = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return base64.b64encode(raw).decode("ascii")
