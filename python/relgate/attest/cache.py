"""The leaf cache's default location and its paranoid mode.

The cache itself lives in the Rust core (``rust/relgate-core/src/attest/cache.rs`` documents
its format and what it trusts): one JSON entry per weight file, keyed by (device, inode,
size, mtime_ns, ctime_ns, BLAKE3(header)). ``relgate attest``, batch ``reattest`` and its
Ray tasks use :func:`default_cache_dir` unless told ``--no-cache``;
``relgate.attest(path)`` uses no cache unless given ``cache_dir``.

What the cache cannot see is a change that leaves the whole key as it was (a write through
a shared mapping into an already dirty page, a filesystem without ctime, a change below the
filesystem). :func:`paranoid_attest` answers that doubt: it hashes every byte, compares each
tensor with what the cache would have reported, names every cached leaf that disagrees,
and drops those files' entries so the next cached run re-hashes them.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import blake3

from relgate.attest.core import Attestation, PathLike, attest

CACHE_ENV = "RELGATE_CACHE_DIR"

__all__ = [
    "CACHE_ENV",
    "CacheDisagreement",
    "ParanoidResult",
    "cache_entry_path",
    "default_cache_dir",
    "paranoid_attest",
]


def default_cache_dir() -> Path:
    """``$RELGATE_CACHE_DIR`` when set (and not empty), else ``~/.cache/relgate/attest``.

    Created here when missing, with mode 0700: whoever can write it can choose the digests
    a cached attestation reports."""
    env = os.environ.get(CACHE_ENV, "").strip()
    path = Path(env).expanduser() if env else Path.home() / ".cache" / "relgate" / "attest"
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    return path


def cache_entry_path(cache_dir: PathLike, weight_file: PathLike) -> Path:
    """The cache entry of one weight file (named as the Rust core names it: the first 16
    bytes of BLAKE3("relgate-leaf-cache\\0" + canonical absolute path), in hex)."""
    canonical = os.path.realpath(os.fspath(weight_file))
    digest = blake3.blake3(b"relgate-leaf-cache\0" + canonical.encode()).digest()[:16]
    return Path(cache_dir) / f"{digest.hex()}.json"


@dataclass(frozen=True, slots=True)
class CacheDisagreement:
    """One tensor whose cached digest is not what its bytes hash to now."""

    file: str
    tensor: str
    cached_data_blake3: str | None
    actual_data_blake3: str | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "file": self.file,
            "tensor": self.tensor,
            "cached_data_blake3": self.cached_data_blake3,
            "actual_data_blake3": self.actual_data_blake3,
        }


@dataclass(frozen=True, slots=True)
class ParanoidResult:
    """The attestation of every byte as it is now, and the cached leaves that disagree
    with it (empty: the cache told the truth). ``cached_root`` is what the cache would
    have reported."""

    attestation: Attestation
    cached_root: str | None
    disagreements: tuple[CacheDisagreement, ...]

    @property
    def ok(self) -> bool:
        return not self.disagreements


def _base(path: Path) -> Path:
    return path if path.is_dir() else path.parent


def paranoid_attest(path: PathLike, cache_dir: PathLike | None = None) -> ParanoidResult:
    """Hash every byte of the checkpoint at ``path`` and check the leaf cache against it.

    The cached view is read first (it hashes only what the cache does not know), then
    every byte is hashed without the cache. A tensor whose two digests differ is a
    :class:`CacheDisagreement`; the entries of its files are deleted, so the cache does not
    keep reporting them. The returned attestation is always the uncached one.
    """
    cache = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    cached = attest(path, cache_dir=cache)
    actual = attest(path)
    by_name = {t.name: t for t in cached.leaves}
    found: list[CacheDisagreement] = []
    for t in actual.leaves:
        c = by_name.get(t.name)
        if c is None or c.data_blake3 != t.data_blake3 or (c.dtype, c.shape) != (t.dtype, t.shape):
            found.append(
                CacheDisagreement(
                    t.file, t.name, None if c is None else c.data_blake3, t.data_blake3
                )
            )
    base = _base(Path(path))
    for file in sorted({d.file for d in found}):
        cache_entry_path(cache, base / file).unlink(missing_ok=True)
    return ParanoidResult(actual, cached.root, tuple(found))
