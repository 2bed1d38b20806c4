"""Anchoring signed tree heads outside relgate (docs/design.md §6).

A signed tree head (STH) kept only by the server proves little against the server's operator;
one copied somewhere they do not control pins history. Sinks:

- ``DirectorySink(path)``: writes the STH as a JSON file (a mounted bucket, a git checkout).
- ``Rfc3161Sink(url)``: asks an RFC 3161 timestamp authority to timestamp the STH's signed
  bytes (SHA-256 imprint) and keeps the DER token, which proves the head existed at that time.
- ``CommandSink(argv)``: runs a command with the STH JSON on stdin (post to a transparency
  log, a chat channel, another region).

``anchor_tree_head`` runs every sink and returns one record per sink; a failing sink does not
stop the others (its record says why). Signing, storing and scheduling are use cases:
``relgate.app.receipts``.

Checking anchors, offline, with what the verifier holds (``AnchorPolicy``):

- a directory anchor: the head file must exist under a directory the verifier names (its own
  copy of the bucket or checkout, looked up by the name the sink gives it, never by the path
  the bundle claims) and equal a head of the bundle after canonicalization;
- an RFC 3161 token: its CMS signature and certificate chain must verify to a TSA root the
  verifier configured (``rfc3161-client``'s verifier), and its imprint must be the SHA-256 of
  the head's signed bytes;
- a command anchor leaves nothing to check offline: it is reported as not checked.

An anchor that cannot be checked (no directory, no TSA root) is "not checked", never
"verified"; ``AnchorPolicy.require`` turns that into a failure.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import logging
import os
import re
import shlex
import subprocess
import urllib.request
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol

from cryptography import x509
from rfc3161_client import (
    HashAlgorithm,
    PKIStatus,
    TimestampRequestBuilder,
    VerificationError,
    VerifierBuilder,
    decode_timestamp_response,
)

from relgate.canonical import canonical_json
from relgate.documents import load_json
from relgate.errors import IntegrityError, InvalidInputError
from relgate.receipts.tree import SignedTreeHead

if TYPE_CHECKING:
    from rfc3161_client.tsp import TimeStampRequest


__all__ = [
    "ANCHOR_KINDS",
    "AnchorCheck",
    "AnchorPolicy",
    "AnchorRecord",
    "AnchorSink",
    "CommandSink",
    "DirectorySink",
    "Rfc3161Sink",
    "anchor_file_name",
    "anchor_tree_head",
    "check_anchor",
    "heads_in_anchor_dirs",
    "load_tsa_roots",
    "parse_anchor_record",
    "parse_sink",
]

_log = logging.getLogger(__name__)

_MAX_REF = 64 * 1024


@dataclass(frozen=True, slots=True)
class AnchorRecord:
    """What one sink did with one tree head: ``ref`` is where it went (a path, a base64
    timestamp token, the command's output); ``error`` is set when it failed."""

    sink: str
    tenant: str
    tree_size: int
    root_hex: str
    ok: bool
    ref: str
    error: str | None = None

    def to_dict(self) -> dict[str, object]:
        """JSON-ready."""
        return asdict(self)


class AnchorSink(Protocol):
    """Somewhere a tree head can be sent. ``anchor`` returns a reference or raises."""

    name: str

    def anchor(self, head: SignedTreeHead) -> str: ...


def _head_json(head: SignedTreeHead) -> bytes:
    return json.dumps(head.to_dict(), sort_keys=True, indent=2).encode() + b"\n"


def _safe_tenant(tenant: str) -> str:
    return "".join(c if c.isalnum() or c in "-_" else "_" for c in tenant)


def anchor_file_name(tenant: str, tree_size: int, root_hex: str) -> str:
    """The file a ``DirectorySink`` writes a head to: ``<tenant>-<size>-<root prefix>.json``
    (characters other than letters, digits, ``-`` and ``_`` become ``_``)."""
    return f"{_safe_tenant(tenant)}-{tree_size:012d}-{root_hex[:16]}.json"


class DirectorySink:
    """Writes ``<tenant>-<tree_size>-<root prefix>.json`` into a directory, atomically
    (temporary file, fsync, rename), so a reader never sees half a head."""

    name = "directory"

    def __init__(self, path: Path) -> None:
        self.path = Path(path)

    def anchor(self, head: SignedTreeHead) -> str:
        self.path.mkdir(parents=True, exist_ok=True)
        target = self.path / anchor_file_name(head.tenant, head.tree_size, head.root_hex)
        tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
        with open(tmp, "wb") as fh:
            fh.write(_head_json(head))
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, target)
        return str(target)


class Rfc3161Sink:
    """Timestamps the STH's signed message at an RFC 3161 TSA over HTTP(S)."""

    name = "rfc3161"

    def __init__(self, url: str, *, timeout_s: float = 10.0) -> None:
        if not url.startswith(("http://", "https://")):
            raise InvalidInputError(f"TSA URL must be http(s): {url!r}")
        self.url = url
        self.timeout_s = timeout_s

    @staticmethod
    def build_request(head: SignedTreeHead) -> TimeStampRequest:
        """The timestamp query: SHA-256 imprint of the head's signed bytes, a nonce, and a
        request for the TSA's certificate (so the token verifies on its own)."""
        return (
            TimestampRequestBuilder()
            .data(head.message())
            .hash_algorithm(HashAlgorithm.SHA256)
            .nonce(nonce=True)
            .cert_request(cert_request=True)
            .build()
        )

    def anchor(self, head: SignedTreeHead) -> str:
        request = self.build_request(head)
        http = urllib.request.Request(
            self.url,
            data=request.as_bytes(),
            headers={"Content-Type": "application/timestamp-query"},
            method="POST",
        )
        with urllib.request.urlopen(http, timeout=self.timeout_s) as reply:
            body = reply.read(1024 * 1024)
        response = decode_timestamp_response(body)
        if response.status not in (PKIStatus.GRANTED, PKIStatus.GRANTED_WITH_MODS):
            raise IntegrityError(
                f"TSA refused the request: status {response.status} {response.status_string}",
                rule="tsa_refused",
            )
        info = response.tst_info
        if info.message_imprint.message != hashlib.sha256(head.message()).digest():
            raise IntegrityError("TSA timestamped different data", rule="tsa_imprint_mismatch")
        if info.nonce != request.nonce:
            raise IntegrityError("TSA answered another request (nonce)", rule="tsa_nonce_mismatch")
        return base64.b64encode(response.time_stamp_token()).decode("ascii")


class CommandSink:
    """Runs ``argv`` with the STH JSON on stdin; exit 0 is success, stdout is the reference."""

    name = "command"

    def __init__(self, argv: Sequence[str], *, timeout_s: float = 30.0) -> None:
        if not argv:
            raise InvalidInputError("CommandSink needs a command")
        self.argv = list(argv)
        self.timeout_s = timeout_s

    def anchor(self, head: SignedTreeHead) -> str:
        try:
            done = subprocess.run(
                self.argv,
                input=_head_json(head),
                capture_output=True,
                timeout=self.timeout_s,
                check=False,
            )
        except subprocess.TimeoutExpired as exc:
            raise InvalidInputError(f"anchor command timed out after {self.timeout_s}s") from exc
        if done.returncode != 0:
            err = done.stderr.decode(errors="replace").strip()[-500:]
            raise InvalidInputError(f"anchor command exited {done.returncode}: {err}")
        return done.stdout.decode(errors="replace").strip()[:_MAX_REF]


def anchor_tree_head(head: SignedTreeHead, sinks: Sequence[AnchorSink]) -> list[AnchorRecord]:
    """Send ``head`` to every sink; one record per sink, failures included."""
    records = []
    for sink in sinks:
        try:
            ref, error = sink.anchor(head), None
        except Exception as exc:  # a sink's failure is reported, never fatal to the others
            ref, error = "", f"{type(exc).__name__}: {exc}"
        records.append(
            AnchorRecord(
                sink=sink.name,
                tenant=head.tenant,
                tree_size=head.tree_size,
                root_hex=head.root_hex,
                ok=error is None,
                ref=ref,
                error=error,
            )
        )
    return records


def parse_sink(spec: str) -> AnchorSink:
    """A sink from a command-line spec: ``dir:PATH``, ``tsa:URL`` or ``cmd:COMMAND ARGS``
    (the command line is split like a shell would, without running one)."""
    kind, sep, rest = spec.partition(":")
    if not sep or not rest:
        raise InvalidInputError(f"anchor sink {spec!r}: use dir:PATH, tsa:URL or cmd:COMMAND")
    if kind == "dir":
        return DirectorySink(Path(rest))
    if kind == "tsa":
        return Rfc3161Sink(rest)
    if kind == "cmd":
        return CommandSink(shlex.split(rest))
    raise InvalidInputError(f"unknown anchor sink kind {kind!r}: use dir, tsa or cmd")


# ---- checking anchors offline ---------------------------------------------------------------

#: Anchor kinds a verifier can require (``--require-anchor``) and the sink each one names.
ANCHOR_KINDS = {"dir": "directory", "tsa": "rfc3161"}
_SINKS = {"directory", "rfc3161", "command"}
_HEX64 = re.compile(r"^[0-9a-f]{64}$")
#: A head file is a few hundred bytes; a TSA token a few KiB.
MAX_ANCHOR_FILE_BYTES = 64 * 1024
MAX_TOKEN_BYTES = 64 * 1024

AnchorStatus = Literal["verified", "failed", "not checked"]


@dataclass(frozen=True, slots=True)
class AnchorPolicy:
    """What the verifier holds to check anchors: its copies of anchor directories, the TSA
    root certificates it trusts, and which kinds of anchor it requires (``dir``, ``tsa``)."""

    dirs: tuple[Path, ...] = ()
    tsa_roots: tuple[x509.Certificate, ...] = ()
    require: frozenset[str] = frozenset()

    def __post_init__(self) -> None:
        unknown = set(self.require) - set(ANCHOR_KINDS)
        if unknown:
            raise InvalidInputError(f"unknown anchor kind(s) {sorted(unknown)}: use dir or tsa")
        if "dir" in self.require and not self.dirs:
            raise InvalidInputError("--require-anchor dir needs --anchor-dir (your copy of it)")
        if "tsa" in self.require and not self.tsa_roots:
            raise InvalidInputError("--require-anchor tsa needs --tsa-root (the TSA's root PEM)")

    @classmethod
    def build(
        cls,
        *,
        dirs: Iterable[Path] = (),
        tsa_root_files: Iterable[Path] = (),
        require: Iterable[str] = (),
    ) -> AnchorPolicy:
        """From command-line values: directories, PEM files of TSA roots, required kinds."""
        roots: list[x509.Certificate] = []
        for path in tsa_root_files:
            roots += load_tsa_roots(path)
        folders = tuple(Path(d) for d in dirs)
        for d in folders:
            if not d.is_dir():
                raise InvalidInputError(f"anchor directory {d} does not exist")
        return cls(dirs=folders, tsa_roots=tuple(roots), require=frozenset(require))


def load_tsa_roots(path: Path) -> list[x509.Certificate]:
    """The certificates of a PEM file (one or more roots)."""
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise InvalidInputError(f"cannot read TSA root {path}: {exc.strerror or exc}") from exc
    try:
        certs = x509.load_pem_x509_certificates(data)
    except ValueError as exc:
        raise InvalidInputError(f"TSA root {path} is not a PEM certificate: {exc}") from exc
    if not certs:
        raise InvalidInputError(f"TSA root {path} holds no certificate")
    return certs


@dataclass(frozen=True, slots=True)
class AnchorCheck:
    """The outcome for one anchor record of a bundle (``index`` in its ``anchors`` list)."""

    index: int
    sink: str
    tree_size: int
    root_hex: str
    status: AnchorStatus
    detail: str

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        return asdict(self)


def parse_anchor_record(item: Any, tenant: str) -> AnchorRecord:
    """An anchor record of a bundle; ``InvalidInputError`` saying what is wrong with it (a
    record that does not parse is an error, never skipped)."""
    if not isinstance(item, dict):
        raise InvalidInputError("is not an object")
    missing = {"tenant", "tree_size", "root_hex", "sink", "ref"} - item.keys()
    if missing:
        raise InvalidInputError(f"lacks {', '.join(sorted(missing))}")
    size, root, sink, ref = item["tree_size"], item["root_hex"], item["sink"], item["ref"]
    if item["tenant"] != tenant:
        raise InvalidInputError(f"names tenant {item['tenant']!r}, not {tenant!r}")
    if not isinstance(size, int) or isinstance(size, bool) or size < 0:
        raise InvalidInputError("tree_size is not a non-negative integer")
    if not isinstance(root, str) or not _HEX64.match(root):
        raise InvalidInputError("root_hex is not 64 lowercase hex characters")
    if sink not in _SINKS:
        raise InvalidInputError(f"unknown sink {sink!r}")
    if not isinstance(ref, str):
        raise InvalidInputError("ref is not a string")
    return AnchorRecord(sink=sink, tenant=tenant, tree_size=size, root_hex=root, ok=True, ref=ref)


def check_anchor(
    record: AnchorRecord,
    candidates: Sequence[SignedTreeHead],
    policy: AnchorPolicy,
    trusted: Callable[[SignedTreeHead], bool],
) -> tuple[AnchorStatus, str]:
    """Check one anchor of a head the bundle's tree holds. ``candidates`` are the bundle's
    heads of the record's size and root (already checked against the trusted keys);
    ``trusted`` says whether another head is signed by a trusted key."""
    if record.sink == "directory":
        if not policy.dirs:
            return "not checked", "no --anchor-dir given"
        return _check_directory(record, candidates, policy.dirs, trusted)
    if record.sink == "rfc3161":
        if not policy.tsa_roots:
            return "not checked", "no --tsa-root given"
        return _check_rfc3161(record, candidates, policy.tsa_roots)
    return "not checked", "a command anchor leaves nothing to check offline"


def _check_directory(
    record: AnchorRecord,
    candidates: Sequence[SignedTreeHead],
    dirs: Sequence[Path],
    trusted: Callable[[SignedTreeHead], bool],
) -> tuple[AnchorStatus, str]:
    name = anchor_file_name(record.tenant, record.tree_size, record.root_hex)
    # The bundle's ref is the path on the anchoring host; only its file name is compared.
    if record.ref and Path(record.ref).name != name:
        return "failed", f"ref {record.ref!r:.80} does not name the head's file {name}"
    found = [d / name for d in dirs if (d / name).is_file()]
    if not found:
        return "failed", f"{name} is not in {', '.join(str(d) for d in dirs)}"
    path = found[0]
    try:
        head = _read_head_file(path)
    except InvalidInputError as exc:
        return "failed", f"{path}: {exc}"
    if (head.tenant, head.tree_size, head.root_hex) != (
        record.tenant,
        record.tree_size,
        record.root_hex,
    ):
        return "failed", f"{path} holds another head (size {head.tree_size}, {head.root_hex:.16})"
    wanted = canonical_json(head.to_dict())
    if any(canonical_json(c.to_dict()) == wanted for c in candidates):
        return "verified", f"{path} equals the bundle's head"
    if trusted(head):
        return "verified", f"{path} holds a head of this tree signed by a trusted key"
    return "failed", f"{path} differs from the bundle's head and is not signed by a trusted key"


def _read_head_file(path: Path) -> SignedTreeHead:
    try:
        with open(path, "rb") as fh:
            data = fh.read(MAX_ANCHOR_FILE_BYTES + 1)
    except OSError as exc:
        raise InvalidInputError(f"cannot read: {exc.strerror or exc}") from exc
    if len(data) > MAX_ANCHOR_FILE_BYTES:
        raise InvalidInputError(f"larger than {MAX_ANCHOR_FILE_BYTES} bytes: not a head")
    doc = load_json(data, "the file")
    if not isinstance(doc, dict):
        raise InvalidInputError("not a tree head object")
    return SignedTreeHead.from_dict(doc)


def _timestamp_response(token: bytes) -> Any:
    """A granted TimeStampResp around a stored TimeStampToken (the sink keeps the token; the
    verifier API takes a response): ``SEQUENCE { PKIStatusInfo { 0 }, token }``."""
    body = bytes.fromhex("3003020100") + token
    n = len(body)
    length = bytes([n]) if n < 0x80 else bytes([0x80 | ((n.bit_length() + 7) // 8)])
    if n >= 0x80:
        length += n.to_bytes((n.bit_length() + 7) // 8, "big")
    return decode_timestamp_response(b"\x30" + length + body)


def _check_rfc3161(
    record: AnchorRecord, candidates: Sequence[SignedTreeHead], roots: Sequence[x509.Certificate]
) -> tuple[AnchorStatus, str]:
    if len(record.ref) > (MAX_TOKEN_BYTES + 2) // 3 * 4:
        return "failed", f"token is larger than {MAX_TOKEN_BYTES} bytes"
    try:
        token = base64.b64decode(record.ref, validate=True)
        response = _timestamp_response(token)
    except (binascii.Error, ValueError) as exc:
        return "failed", f"not an RFC 3161 token: {exc}"
    if not candidates:
        return "failed", "the bundle lacks the timestamped head (its signed bytes are needed)"
    builder = VerifierBuilder()
    for root in roots:
        builder = builder.add_root_certificate(root)
    verifier = builder.build()
    errors: list[str] = []
    for head in candidates:
        try:
            verifier.verify_message(response, head.message())
        except (VerificationError, ValueError) as exc:
            errors.append(str(exc))
            continue
        when = response.tst_info.gen_time
        return "verified", f"timestamped {when.isoformat()} by a TSA chaining to the root"
    return "failed", f"token does not verify: {errors[0]}"


def heads_in_anchor_dirs(
    dirs: Sequence[Path], tenant: str, *, limit: int
) -> list[tuple[Path, SignedTreeHead]]:
    """The tenant's heads anchored in ``dirs`` (newest ``limit`` per directory by file
    name, which orders by tree size). A file that is not a head of this tenant is skipped:
    the caller checks which are signed by a trusted key."""
    pattern = re.compile(re.escape(_safe_tenant(tenant)) + r"-\d{12}-[0-9a-f]{16}\.json")
    out: list[tuple[Path, SignedTreeHead]] = []
    for d in dirs:
        if not Path(d).is_dir():
            continue  # not created yet: nothing was anchored there
        names = sorted(p.name for p in Path(d).iterdir() if pattern.fullmatch(p.name))
        for name in names[-limit:]:
            try:
                head = _read_head_file(Path(d) / name)
            except InvalidInputError:
                continue
            if head.tenant == tenant:
                out.append((Path(d) / name, head))
    return out
