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
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import os
import shlex
import subprocess
import urllib.request
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from rfc3161_client import (
    HashAlgorithm,
    PKIStatus,
    TimestampRequestBuilder,
    decode_timestamp_response,
)

from relgate.errors import IntegrityError, InvalidInputError
from relgate.receipts.tree import SignedTreeHead

if TYPE_CHECKING:
    from rfc3161_client.tsp import TimeStampRequest


__all__ = [
    "AnchorRecord",
    "AnchorSink",
    "CommandSink",
    "DirectorySink",
    "Rfc3161Sink",
    "anchor_tree_head",
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


class DirectorySink:
    """Writes ``<tenant>-<tree_size>-<root prefix>.json`` into a directory, atomically
    (temporary file, fsync, rename), so a reader never sees half a head."""

    name = "directory"

    def __init__(self, path: Path) -> None:
        self.path = Path(path)

    def anchor(self, head: SignedTreeHead) -> str:
        self.path.mkdir(parents=True, exist_ok=True)
        safe_tenant = "".join(c if c.isalnum() or c in "-_" else "_" for c in head.tenant)
        target = self.path / f"{safe_tenant}-{head.tree_size:012d}-{head.root_hex[:16]}.json"
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
