"""Server-side weight paths and the work one attestation request may cost.

A path a client names (the ``Attest`` RPC, a manifest's ``local`` path or ``snapshot_path``)
is resolved under the server's weights root: relative to it, ``..`` refused, an absolute
path accepted only inside it, and symlinks resolved before the check so none leads out.
Errors name the path as the client gave it and never anything read from a file.

:func:`check_budget` bounds the work of one request before any tensor byte is read: the
number of weight files, their total size, each header's size, and the tensor and metadata
counts the headers declare (read from their first bytes, not trusted beyond the count).
"""

from __future__ import annotations

import json
import os
import struct
from dataclasses import dataclass
from pathlib import Path, PurePath

from relgate.errors import InvalidInputError, NotFoundError

__all__ = ["Budget", "check_budget", "resolve_under"]


def resolve_under(root: Path, raw: str) -> Path:
    """``raw`` resolved under ``root`` (see the module doc); :class:`InvalidInputError`
    for a path that leaves it, :class:`NotFoundError` for one that does not exist."""
    if not raw.strip() or "\x00" in raw:
        raise InvalidInputError("path is required")
    given = PurePath(raw)
    if ".." in given.parts:
        raise InvalidInputError(f"{raw}: '..' is not allowed in a weights path")
    base = root.resolve()
    candidate = Path(raw) if given.is_absolute() else base / raw
    resolved = Path(os.path.realpath(candidate))
    if resolved != base and base not in resolved.parents:
        raise InvalidInputError(f"{raw}: outside the server's weights root")
    if not resolved.exists():
        raise NotFoundError(f"no such file or directory under the weights root: {raw}")
    return resolved


@dataclass(frozen=True, slots=True)
class Budget:
    """The most one attestation request may ask of the server."""

    max_files: int = 4096
    max_bytes: int = 4 << 40
    max_header_bytes: int = 64 << 20
    max_tensors: int = 200_000
    max_metadata: int = 100_000


_WEIGHT_SUFFIXES = (".safetensors", ".gguf")


def _weight_files(path: Path, budget: Budget) -> list[Path]:
    if path.is_file():
        return [path] if path.suffix in _WEIGHT_SUFFIXES else []
    out: list[Path] = []
    with os.scandir(path) as entries:
        for entry in entries:
            if entry.name.endswith(_WEIGHT_SUFFIXES) and entry.is_file():
                out.append(Path(entry.path))
                if len(out) > budget.max_files:
                    raise InvalidInputError(f"more than {budget.max_files} weight files")
    return out


def _declared(f: Path, budget: Budget) -> tuple[int, int]:
    """(tensors, metadata entries) the header declares; bounded reads only."""
    with f.open("rb") as fh:
        head = fh.read(24)
        if f.suffix == ".gguf":
            if len(head) < 24 or head[:4] != b"GGUF":
                return 0, 0  # the parser names the rule
            version = struct.unpack_from("<I", head, 4)[0]
            if version < 2:
                return 0, 0
            tensors, kv = struct.unpack_from("<QQ", head, 8)
            return tensors, kv
        if len(head) < 8:
            return 0, 0
        (n,) = struct.unpack_from("<Q", head, 0)
        if n > budget.max_header_bytes:
            raise InvalidInputError(
                f"{f.name}: header larger than the {budget.max_header_bytes} bytes allowed"
            )
        fh.seek(8)
        try:
            header = json.loads(fh.read(n))
        except (ValueError, UnicodeDecodeError):
            return 0, 0  # not ours to describe: the parser refuses it by rule
        if not isinstance(header, dict):
            return 0, 0
        meta = header.get("__metadata__")
        return len(header) - ("__metadata__" in header), len(meta) if isinstance(meta, dict) else 0


def check_budget(path: Path, budget: Budget | None = None) -> None:
    """Refuse (``InvalidInputError``, a one-line reason) a checkpoint whose attestation
    would exceed ``budget``."""
    b = budget or Budget()
    files = _weight_files(path, b)
    total = tensors = meta = 0
    for f in files:
        total += f.stat().st_size
        t, m = _declared(f, b)
        tensors += t
        meta += m
        if total > b.max_bytes:
            raise InvalidInputError(f"weights larger than the {b.max_bytes} bytes allowed")
        if tensors > b.max_tensors:
            raise InvalidInputError(f"more than {b.max_tensors} tensors in one request")
        if meta > b.max_metadata:
            raise InvalidInputError(f"more than {b.max_metadata} metadata entries")
