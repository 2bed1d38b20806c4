"""relgate.attest(..., cache_dir=...): the leaf cache never changes a result.

An unchanged checkpoint re-attests without reading tensor data; a changed shard is re-hashed
alone; restoring the mtime with os.utime does not hide a change (ctime is in the key); a
write that keeps (size, mtime, ctime) is missed through the cache, and only there; damaged
cache files are ignored."""

from __future__ import annotations

import mmap
import os
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import relgate
from safetensors.numpy import save_file

SHARDS = [f"model-{i:05d}-of-00004.safetensors" for i in range(1, 5)]


def _age(path: Path) -> None:
    """Files modified less than 2 s before an attestation are not cached (a later write
    could share their timestamp): make them a minute old."""
    old = time.time_ns() - 60 * 10**9
    os.utime(path, ns=(old, old))


@pytest.fixture
def sharded(tmp_path: Path) -> Path:
    """A 4-shard checkpoint (no index: a directory of safetensors files)."""
    out = tmp_path / "ckpt"
    out.mkdir()
    rng = np.random.default_rng(7)
    for s, name in enumerate(SHARDS):
        tensors = {
            f"layers.{s}.w{i}": rng.standard_normal((32, 16 + i)).astype(np.float32)
            for i in range(3)
        }
        save_file(tensors, str(out / name))
        _age(out / name)
    return out


def _data_bytes(att: relgate.Attestation) -> int:
    return sum(t.bytes for t in att.leaves)


def test_unchanged_checkpoint_reads_no_tensor_bytes(sharded: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    truth = relgate.attest(sharded)
    first = relgate.attest(sharded, cache_dir=cache)
    assert first.tensor_bytes_hashed == _data_bytes(truth) and first.files_from_cache == 0
    assert len(list(cache.glob("*.json"))) == 4
    again = relgate.attest(sharded, cache_dir=cache)
    assert again.tensor_bytes_hashed == 0 and again.files_from_cache == 4
    assert again == truth and again.to_dict() == truth.to_dict()


def test_a_change_in_one_shard_rehashes_exactly_that_shard(sharded: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    before = relgate.attest(sharded, cache_dir=cache)
    victim = before.tensor("layers.2.w1")
    shard = sharded / victim.file
    raw = bytearray(shard.read_bytes())
    raw[victim.offset + 4] ^= 0x01
    shard.write_bytes(bytes(raw))
    _age(shard)
    after = relgate.attest(sharded, cache_dir=cache)
    shard_bytes = sum(t.bytes for t in before.leaves if t.file == victim.file)
    assert after.files_from_cache == 3 and after.tensor_bytes_hashed == shard_bytes
    assert after == relgate.attest(sharded) and after.root != before.root
    changed = [a.name for a, b in zip(after.leaves, before.leaves, strict=True) if a.leaf != b.leaf]
    assert changed == ["layers.2.w1"]


def test_restoring_mtime_does_not_hide_a_change(sharded: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    before = relgate.attest(sharded, cache_dir=cache)
    shard = sharded / SHARDS[0]
    st = shard.stat()
    raw = bytearray(shard.read_bytes())
    raw[before.leaves[0].offset] ^= 0x80
    shard.write_bytes(bytes(raw))
    os.utime(shard, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert shard.stat().st_mtime_ns == st.st_mtime_ns
    assert shard.stat().st_ctime_ns != st.st_ctime_ns  # utime itself moves ctime
    after = relgate.attest(sharded, cache_dir=cache)
    assert after.files_from_cache == 3
    assert after.root == relgate.attest(sharded).root != before.root


def test_a_write_that_keeps_the_key_is_missed_only_through_the_cache(
    sharded: Path, tmp_path: Path
) -> None:
    """The documented blind spot. A writer keeps the file mapped: the kernel updates
    mtime/ctime on the first write fault of a clean page only, so a second write into the
    still-dirty page leaves (size, mtime, ctime) as they were (unless writeback cleaned the
    page in between: then the key moved and the cache must see the change). The cached path
    reports the recorded state; without the cache, and in a spot check, the change is
    seen."""
    cache = tmp_path / "cache"
    shard = sharded / SHARDS[1]
    truth_before = relgate.attest(sharded)
    target = next(t for t in truth_before.leaves if t.file == SHARDS[1])
    with shard.open("r+b") as f, mmap.mmap(f.fileno(), 0) as m:
        m[target.offset] ^= 0x01  # first write fault: the times move
        _age(shard)  # an old mtime, so the entry is recorded; ctime is now
        recorded = relgate.attest(sharded, cache_dir=cache)
        assert recorded.files_from_cache == 0
        key = (shard.stat().st_size, shard.stat().st_mtime_ns, shard.stat().st_ctime_ns)
        m[target.offset + 1] ^= 0x01  # the same dirty page: no fault, no time update
        st = shard.stat()
        unchanged = (st.st_size, st.st_mtime_ns, st.st_ctime_ns) == key
        through_cache = relgate.attest(sharded, cache_dir=cache)
        truth = relgate.attest(sharded)
        spot = relgate.attest(sharded, cache_dir=cache, spot_check=truth.tensors, seed=0)
    assert truth.root != recorded.root
    if unchanged:
        # The blind spot: the cached path reports the state it recorded.
        assert through_cache.files_from_cache == 4 and through_cache.root == recorded.root
    else:
        # Writeback cleaned the page between the writes: the key moved, the cache saw it.
        assert through_cache.files_from_cache == 3 and through_cache.root == truth.root
    assert spot.tensor(target.name).leaf == truth.tensor(target.name).leaf
    assert spot.files_from_cache == 0
    res = relgate.verify_attestation(
        sharded, recorded.root or "", reference=recorded, spot_check=truth.tensors
    )
    assert not res.ok and res.changed == (target.name,)


@pytest.mark.parametrize(
    "damage",
    [
        lambda b: b[: len(b) // 2],
        lambda b: b"\x00\xff garbage",
        lambda b: b"",
        lambda b: b.replace(b'"version":1', b'"version":99'),
        lambda b: b.replace(b'"data_blake3":"', b'"data_blake3":"00', 1),
    ],
    ids=["truncated", "garbage", "empty", "other-version", "bad-digest"],
)
def test_damaged_cache_files_are_ignored(
    sharded: Path, tmp_path: Path, damage: Callable[[bytes], bytes]
) -> None:
    cache = tmp_path / "cache"
    truth = relgate.attest(sharded, cache_dir=cache)
    entries = sorted(cache.glob("*.json"))
    good = entries[0].read_bytes()
    entries[0].write_bytes(damage(good))
    att = relgate.attest(sharded, cache_dir=cache)
    assert att == truth and att.files_from_cache == 3
    assert entries[0].read_bytes() == good  # rewritten
    assert relgate.attest(sharded, cache_dir=cache).files_from_cache == 4
