"""The cache's default location, --no-cache and --paranoid: the cache cannot change a
result that a paranoid run or a spot check reports."""

from __future__ import annotations

import json
import mmap
import os
import time
from pathlib import Path

import numpy as np
import pytest
import relgate
from relgate.attest import cache_entry_path, default_cache_dir, paranoid_attest
from relgate.attest.cache import CACHE_ENV
from relgate.cli import app
from safetensors.numpy import save_file
from typer.testing import CliRunner

runner = CliRunner()


def _age(path: Path) -> None:
    old = time.time_ns() - 60 * 10**9
    os.utime(path, ns=(old, old))


@pytest.fixture
def ckpt(tmp_path: Path) -> Path:
    out = tmp_path / "ckpt"
    out.mkdir()
    rng = np.random.default_rng(3)
    for s in range(2):
        f = out / f"model-{s + 1:05d}-of-00002.safetensors"
        save_file(
            {f"l{s}.w{i}": rng.standard_normal((64, 32)).astype(np.float32) for i in range(3)},
            str(f),
        )
        _age(f)
    return out


def test_default_cache_dir_follows_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(CACHE_ENV, str(tmp_path / "c"))
    assert default_cache_dir() == tmp_path / "c" and (tmp_path / "c").is_dir()
    assert (tmp_path / "c").stat().st_mode & 0o777 == 0o700
    monkeypatch.setenv(CACHE_ENV, "")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert default_cache_dir() == tmp_path / "home" / ".cache" / "relgate" / "attest"


def test_cli_uses_the_default_cache_unless_no_cache(ckpt: Path) -> None:
    cache = default_cache_dir()
    assert not list(cache.glob("*.json"))
    r = runner.invoke(app, ["attest", str(ckpt), "--no-cache", "--json"])
    assert r.exit_code == 0, r.output
    assert not list(cache.glob("*.json"))
    r = runner.invoke(app, ["attest", str(ckpt), "--json"])
    assert r.exit_code == 0, r.output
    assert len(list(cache.glob("*.json"))) == 2
    assert json.loads(r.stdout)["root"] == relgate.attest(ckpt).root
    # entries are where the Python side says the Rust core puts them
    for f in ckpt.iterdir():
        assert cache_entry_path(cache, f).is_file()


def test_reattest_uses_the_cache(ckpt: Path) -> None:
    cache = default_cache_dir()
    r = runner.invoke(app, ["reattest", str(ckpt), "--json"])
    assert r.exit_code == 0, r.output
    assert len(list(cache.glob("*.json"))) == 2


def test_byte_changed_mtime_restored_is_caught_by_paranoid_and_spot_check(ckpt: Path) -> None:
    cache = default_cache_dir()
    before = relgate.attest(ckpt, cache_dir=cache)
    victim = before.tensor("l1.w2")
    shard = ckpt / victim.file
    st = shard.stat()
    raw = bytearray(shard.read_bytes())
    raw[victim.offset + 8] ^= 0x20
    shard.write_bytes(bytes(raw))
    os.utime(shard, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert shard.stat().st_mtime_ns == st.st_mtime_ns
    truth = relgate.attest(ckpt)
    assert truth.root != before.root
    r = runner.invoke(app, ["attest", str(ckpt), "--paranoid", "--json"])
    assert json.loads(r.stdout)["root"] == truth.root
    spot = relgate.verify_attestation(
        ckpt, before.root or "", reference=before, spot_check=before.tensors, seed=1
    )
    assert not spot.ok and spot.changed == ("l1.w2",)


def test_paranoid_names_a_cached_leaf_that_lies_and_drops_its_entry(ckpt: Path) -> None:
    """A cache entry whose digest is not what the bytes hash to (what a write the key cannot
    see leaves behind, made deterministic here by rewriting the entry)."""
    cache = default_cache_dir()
    truth = relgate.attest(ckpt, cache_dir=cache)
    victim = truth.tensor("l0.w1")
    entry = cache_entry_path(cache, ckpt / victim.file)
    forged = entry.read_text().replace(victim.data_blake3 or "", "ab" * 32)
    assert forged != entry.read_text()
    entry.write_text(forged)
    lied = relgate.attest(ckpt, cache_dir=cache)
    assert lied.root != truth.root and lied.files_from_cache == 2  # the blind spot
    r = runner.invoke(app, ["attest", str(ckpt), "--paranoid", "--json"])
    assert r.exit_code == 1
    out = json.loads(r.stdout)
    assert out["root"] == truth.root
    assert [(d["tensor"], d["cached_data_blake3"]) for d in out["cache_disagreements"]] == [
        ("l0.w1", "ab" * 32)
    ]
    assert "cache disagrees" in r.stderr and "l0.w1" in r.stderr
    assert not entry.exists()
    assert relgate.attest(ckpt, cache_dir=cache).root == truth.root
    assert paranoid_attest(ckpt, cache).ok


def test_paranoid_catches_a_write_the_key_cannot_see(ckpt: Path) -> None:
    """A second write through a mapping into a still-dirty page keeps (size, mtime, ctime)."""
    cache = default_cache_dir()
    shard = sorted(ckpt.iterdir())[0]
    target = relgate.attest(ckpt).leaves[0]
    with shard.open("r+b") as f, mmap.mmap(f.fileno(), 0) as m:
        m[target.offset] ^= 0x01
        _age(shard)
        recorded = relgate.attest(ckpt, cache_dir=cache)
        st = shard.stat()
        key = (st.st_size, st.st_mtime_ns, st.st_ctime_ns)
        m[target.offset + 1] ^= 0x01
        st = shard.stat()
        unchanged = (st.st_size, st.st_mtime_ns, st.st_ctime_ns) == key
        result = paranoid_attest(ckpt, cache)
    assert result.attestation.root == relgate.attest(ckpt).root != recorded.root
    if unchanged:
        assert [d.tensor for d in result.disagreements] == [target.name]
    else:  # writeback moved the key: the cache saw it itself
        assert result.ok


def test_paranoid_refuses_conflicting_flags(ckpt: Path) -> None:
    r = runner.invoke(app, ["attest", str(ckpt), "--paranoid", "--no-cache"])
    assert r.exit_code != 0 and "--paranoid" in r.output
