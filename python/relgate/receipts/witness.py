"""The verifier's memory: the last tree head it accepted, per tenant (a CT monitor's state).

A signed head proves what the log held at one size; it cannot prove that the log was not
bigger. A bundle cut back to its first k receipts with the genuine head of size k verifies on
its own. A verifier that remembers the newest head it accepted refuses it: the new bundle's
newest head must be at least as big as the remembered one and consistent with it (the
remembered tree is a prefix of the new one). A head at a size seen before with another root
is a fork.

The state file (``relgate receipts verify --state FILE``)::

    {"format": "relgate.witness.v1",
     "logs": {"<tenant>": {"head": <signed tree head>, "key_fingerprint": "...",
                           "accepted_at": "...", "seen": [[tree_size, root_hex], ...]}}}

One state file belongs to one deployment: a tenant is one log whatever key signs it, so
rotating keys cannot be used to present an older head signed by the old key (the state is
per tenant, and records which key signed the head it holds). ``seen`` keeps the most recent
``MAX_SEEN`` heads the verifier accepted, to name a fork at any of them.

``open_state`` takes an exclusive lock (``FILE.lock``) for the whole verification, so two
verifiers sharing a file cannot move it backwards; ``save`` writes atomically (temporary
file, fsync, rename), and only after a verification succeeded.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from relgate.documents import load_json
from relgate.errors import InvalidInputError
from relgate.receipts.tree import SignedTreeHead

__all__ = ["MAX_SEEN", "WITNESS_FORMAT", "WitnessState", "WitnessedLog", "open_state"]

WITNESS_FORMAT = "relgate.witness.v1"
MAX_SEEN = 4096
_MAX_STATE_BYTES = 64 << 20


@dataclass(frozen=True, slots=True)
class WitnessedLog:
    """What the verifier accepted for one tenant: the newest head, the key that signed it,
    when, and the heads seen (``tree_size -> root_hex``)."""

    head: SignedTreeHead
    key_fingerprint: str
    accepted_at: str
    seen: Mapping[int, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        return {
            "head": self.head.to_dict(),
            "key_fingerprint": self.key_fingerprint,
            "accepted_at": self.accepted_at,
            "seen": [[size, root] for size, root in sorted(self.seen.items())],
        }


@dataclass(frozen=True, slots=True)
class WitnessState:
    """Per-tenant witnessed logs (see the module docstring). Immutable: ``accepted`` returns
    the next state."""

    logs: Mapping[str, WitnessedLog] = field(default_factory=dict)

    def log(self, tenant: str) -> WitnessedLog | None:
        """What was accepted for ``tenant`` (None: nothing yet)."""
        return self.logs.get(tenant)

    def accepted(
        self,
        *,
        tenant: str,
        head: SignedTreeHead,
        key_fingerprint: str,
        heads: Sequence[SignedTreeHead],
        now: str,
    ) -> WitnessState:
        """The state after accepting ``head`` (and seeing ``heads``) for ``tenant``."""
        old = self.logs.get(tenant)
        seen = dict(old.seen) if old is not None else {}
        for h in (*heads, head):
            seen[h.tree_size] = h.root_hex
        if len(seen) > MAX_SEEN:
            seen = dict(sorted(seen.items())[-MAX_SEEN:])
        log = WitnessedLog(head=head, key_fingerprint=key_fingerprint, accepted_at=now, seen=seen)
        return WitnessState(logs={**self.logs, tenant: log})

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        return {
            "format": WITNESS_FORMAT,
            "logs": {tenant: log.to_dict() for tenant, log in sorted(self.logs.items())},
        }

    @classmethod
    def from_dict(cls, doc: Any, *, where: str = "witness state") -> WitnessState:
        """Parse ``to_dict()`` output; ``InvalidInputError`` naming what is wrong."""
        if not isinstance(doc, dict) or doc.get("format") != WITNESS_FORMAT:
            raise InvalidInputError(f"{where}: not a witness state (format {WITNESS_FORMAT!r})")
        logs = doc.get("logs")
        if not isinstance(logs, dict):
            raise InvalidInputError(f"{where}: logs must be an object")
        parsed = {}
        for tenant, entry in logs.items():
            if not isinstance(entry, dict) or not isinstance(entry.get("head"), dict):
                raise InvalidInputError(f"{where}: log {tenant!r} lacks its head")
            head = SignedTreeHead.from_dict(entry["head"])
            seen_raw = entry.get("seen", [])
            if not isinstance(seen_raw, list) or not all(
                isinstance(s, list)
                and len(s) == 2
                and isinstance(s[0], int)
                and isinstance(s[1], str)
                for s in seen_raw
            ):
                raise InvalidInputError(f"{where}: log {tenant!r}: seen must be [size, root] pairs")
            fingerprint, accepted_at = entry.get("key_fingerprint"), entry.get("accepted_at")
            if not isinstance(fingerprint, str) or not isinstance(accepted_at, str):
                raise InvalidInputError(f"{where}: log {tenant!r} lacks key_fingerprint or time")
            parsed[tenant] = WitnessedLog(
                head=head,
                key_fingerprint=fingerprint,
                accepted_at=accepted_at,
                seen={int(s[0]): s[1] for s in seen_raw},
            )
        return cls(logs=parsed)

    @classmethod
    def load(cls, path: Path) -> WitnessState:
        """The state in ``path``; an empty state when the file does not exist yet."""
        path = Path(path)
        try:
            with open(path, "rb") as fh:
                data = fh.read(_MAX_STATE_BYTES + 1)
        except FileNotFoundError:
            return cls()
        except OSError as exc:
            raise InvalidInputError(f"cannot read witness state {path}: {exc}") from exc
        if len(data) > _MAX_STATE_BYTES:
            raise InvalidInputError(f"witness state {path} is larger than {_MAX_STATE_BYTES}")
        doc = load_json(data, f"witness state {path}")
        return cls.from_dict(doc, where=f"witness state {path}")

    def save(self, path: Path) -> None:
        """Write atomically: a crash leaves the old state or the new one, never half."""
        path = Path(path)
        data = json.dumps(self.to_dict(), indent=1, sort_keys=True).encode() + b"\n"
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            os.write(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
        with contextlib.suppress(OSError):  # make the rename durable where the OS allows
            dir_fd = os.open(path.parent, os.O_RDONLY)
            try:
                os.fsync(dir_fd)
            finally:
                os.close(dir_fd)


@contextlib.contextmanager
def open_state(path: Path) -> Iterator[WitnessState]:
    """Load the state under an exclusive lock held until the block ends (save inside it)."""
    path = Path(path)
    if path.is_dir():
        raise InvalidInputError(f"witness state {path} is a directory")
    lock = path.with_name(path.name + ".lock")
    try:
        fd = os.open(lock, os.O_WRONLY | os.O_CREAT, 0o644)
    except OSError as exc:
        raise InvalidInputError(f"cannot lock witness state {path}: {exc.strerror}") from exc
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield WitnessState.load(path)
    finally:
        os.close(fd)  # closing releases the lock
