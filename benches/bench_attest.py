"""Weight attestation throughput: relgate vs plain file hashing, as ratios in one run.

Writes a synthetic LLM-like checkpoint (per layer: q/k/v/o, three MLP matrices, two norms;
BF16; random bytes) of ``--size`` GiB into a temporary directory, once as a single file and
once as 3 shards with an index, and deletes it afterwards. With a warm page cache, best of
``--repeat`` runs each:

- relgate ``attest`` full (tensor tree + per-file BLAKE3 digests), and tree only
  (``file_digests=False``, what ``verify`` and ``reattest`` use);
- the anchor: blake3-py ``update_mmap(max_threads=AUTO)`` over the same files, one after
  another; blake3-py on one thread;
- ``sha256sum`` and ``b3sum`` when installed (``cargo install b3sum --locked``);
- sigstore ``model_signing`` (default SHA-256, SHA-256 with 1 GB shards, BLAKE3) when it is
  importable here or in the interpreter given by ``--model-signing-python`` (it needs
  ``pyopenssl`` beside it; keep it out of relgate's environment, e.g.
  ``python -m venv /tmp/ms && /tmp/ms/bin/pip install model-signing pyopenssl``).

Each method is timed ``--repeat`` times in interleaved rounds after a warm-up run; the best
wall time gives GB/s and the ratio to the anchor, and the best CPU time (user + system, all
threads) gives CPU seconds per GB, which stays meaningful when other work shares the cores.

Memory: ``attest`` runs in a child process at 1/4 of the size and at the full size while a
thread samples ``RssAnon`` (anonymous memory: what relgate allocates) and ``RssFile``;
``VmHWM`` (peak RSS) is printed too, but it counts the mapped file pages that were touched,
so it grows with the file by construction. ``--cold`` also times each method after
``echo 3 > /proc/sys/vm/drop_caches`` (root only; it slows everything else on the machine
for a moment).

    .venv/bin/python benches/bench_attest.py [--size 2] [--repeat 3] [--cold]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import struct
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import blake3
import numpy as np
import relgate

GiB = 1 << 30
LAYER = [
    ("self_attn.q_proj", 8 << 20),
    ("self_attn.k_proj", 2 << 20),
    ("self_attn.v_proj", 2 << 20),
    ("self_attn.o_proj", 8 << 20),
    ("mlp.gate_proj", 22 << 20),
    ("mlp.up_proj", 22 << 20),
    ("mlp.down_proj", 22 << 20),
    ("input_layernorm", 8 << 10),
    ("post_attention_layernorm", 8 << 10),
]


def layout(size: int) -> list[tuple[str, int]]:
    tensors, total, layer = [], 0, 0
    while total < size:
        for name, n in LAYER:
            tensors.append((f"model.layers.{layer}.{name}.weight", n))
            total += n
        layer += 1
    return tensors


def write_file(path: Path, tensors: list[tuple[str, int]], rng: np.random.Generator) -> None:
    header, pos = {}, 0
    for name, n in tensors:
        header[name] = {"dtype": "BF16", "shape": [n // 2], "data_offsets": [pos, pos + n]}
        pos += n
    h = json.dumps(header).encode()
    h += b" " * (-len(h) % 8)
    with path.open("wb") as f:
        f.write(struct.pack("<Q", len(h)) + h)
        for _, n in tensors:
            f.write(rng.integers(0, 256, n, dtype=np.uint8).tobytes())


def make_checkpoints(root: Path, size: int) -> tuple[Path, Path]:
    """The same tensors as one file and as 3 shards with an index."""
    tensors = layout(size)
    single = root / "single"
    single.mkdir()
    write_file(single / "model.safetensors", tensors, np.random.default_rng(0))
    sharded = root / "sharded"
    sharded.mkdir()
    weight_map = {}
    for i in range(3):
        part = tensors[i::3]
        name = f"model-{i + 1:05d}-of-00003.safetensors"
        # Same seed per tensor order is not needed: the point is equal sizes, not roots.
        write_file(sharded / name, part, np.random.default_rng(i + 1))
        weight_map.update({t: name for t, _ in part})
    index = {"metadata": {}, "weight_map": weight_map}
    (sharded / "model.safetensors.index.json").write_text(json.dumps(index))
    return single, sharded


def files_of(ckpt: Path) -> list[Path]:
    return sorted(ckpt.glob("*.safetensors"))


def drop_caches() -> bool:
    try:
        os.sync()
        Path("/proc/sys/vm/drop_caches").write_text("3\n")
        return True
    except OSError:
        return False


MS_SNIPPET = """
import sys, time, model_signing
path, mode = sys.argv[1], sys.argv[2]
cfg = model_signing.hashing.Config()
if mode == "sha256-shards":
    cfg.use_shard_serialization(hashing_algorithm="sha256", shard_size=1_000_000_000)
elif mode == "blake3":
    cfg.use_file_serialization(hashing_algorithm="blake3")
cfg.hash(path)  # warm
t, c = time.perf_counter(), time.process_time()
cfg.hash(path)
print(time.perf_counter() - t, time.process_time() - c)
"""


def model_signing_python(arg: str | None) -> str | None:
    if arg:
        return arg
    try:
        import model_signing  # noqa: F401
    except ImportError:
        return None
    return sys.executable


def methods(ckpt: Path, ms_python: str | None) -> dict[str, Callable[[], object]]:
    files = [str(f) for f in files_of(ckpt)]
    out: dict[str, Callable[[], object]] = {
        "relgate attest (tree + file digests)": lambda: relgate.attest(ckpt),
        "relgate attest (tree only)": lambda: relgate.attest(ckpt, file_digests=False),
        "blake3-py update_mmap AUTO (anchor)": lambda: [
            blake3.blake3(max_threads=blake3.blake3.AUTO).update_mmap(f).digest() for f in files
        ],
        "blake3-py update_mmap 1 thread": lambda: [
            blake3.blake3().update_mmap(f).digest() for f in files
        ],
    }
    for tool in ("b3sum", "sha256sum"):
        exe = shutil.which(tool)
        if exe is not None:
            out[tool] = lambda exe=exe: subprocess.run(
                [exe, *files], check=True, capture_output=True
            )
    if ms_python is not None:
        for mode in ("sha256", "sha256-shards", "blake3"):
            out[f"model_signing {mode}"] = lambda mode=mode: (
                subprocess.run(
                    [ms_python, "-c", MS_SNIPPET, str(ckpt), mode],
                    check=True,
                    capture_output=True,
                    text=True,
                ).stdout
            )
    return out


def cpu_seconds() -> float:
    """CPU time (user + system, all threads) of this process and its finished children."""
    me, kids = (resource.getrusage(w) for w in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN))
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def run_once(name: str, fn: Callable[[], object]) -> tuple[float, float]:
    """(wall, cpu) seconds of one run."""
    t, c = time.perf_counter(), cpu_seconds()
    out = fn()
    wall, cpu = time.perf_counter() - t, cpu_seconds() - c
    if name.startswith("model_signing"):
        # The child times its own second run (interpreter start and import excluded).
        wall, cpu = (float(x) for x in str(out).split())
    return wall, cpu


def measure(ms: dict[str, Callable[[], object]], repeat: int) -> dict[str, tuple[float, float]]:
    """Best wall and best CPU time of each method. Rounds interleave the methods, so load
    from other processes spreads over all of them instead of hitting one."""
    for name, fn in ms.items():
        run_once(name, fn)  # warm the page cache and the thread pools
    runs: dict[str, list[tuple[float, float]]] = {name: [] for name in ms}
    for _ in range(repeat):
        for name, fn in ms.items():
            runs[name].append(run_once(name, fn))
    return {n: (min(w for w, _ in r), min(c for _, c in r)) for n, r in runs.items()}


RSS_CHILD = """
import sys, threading, time, relgate
def status():
    return {l.split(":")[0]: int(l.split()[1]) for l in open("/proc/self/status")
            if l.startswith(("RssAnon:", "RssFile:", "VmHWM:"))}
peak = {"RssAnon": 0, "RssFile": 0}
done = False
def sample():
    while not done:
        s = status()
        for k in peak:
            peak[k] = max(peak[k], s[k])
        time.sleep(0.002)
before = status()["RssAnon"]
t = threading.Thread(target=sample); t.start()
relgate.attest(sys.argv[1])
done = True; t.join()
print(before, peak["RssAnon"], peak["RssFile"], status()["VmHWM"])
"""


def memory(root: Path, size: int) -> None:
    print("\nmemory of `relgate.attest` in a fresh child process (KiB)")
    heads = ("RssAnon start", "RssAnon peak", "RssFile peak", "VmHWM")
    print(f"  {'size':>8}  " + "  ".join(f"{h:>13}" for h in heads))
    for s in (size // 4, size):
        d = root / f"mem{s}"
        d.mkdir()
        write_file(d / "m.safetensors", layout(s), np.random.default_rng(9))
        out = subprocess.run(
            [sys.executable, "-c", RSS_CHILD, str(d)], check=True, capture_output=True, text=True
        ).stdout.split()
        before, anon, file_rss, hwm = (int(x) for x in out)
        cells = "  ".join(f"{v:>13,}" for v in (before, anon, file_rss, hwm))
        print(f"  {s / GiB:>6.2f}Gi  {cells}")
        shutil.rmtree(d)
    print(
        "  RssAnon: memory the process allocates (flat = nothing sized by the checkpoint);\n"
        "  RssFile / VmHWM include the page-cache pages of the mapped files that were hashed,\n"
        "  which the kernel can drop at any time: they grow with the file by construction."
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=float, default=2.0, help="checkpoint size in GiB")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--cold", action="store_true", help="also time with caches dropped")
    parser.add_argument("--model-signing-python", help="interpreter that has model_signing")
    parser.add_argument("--no-memory", action="store_true")
    args = parser.parse_args()
    size = int(args.size * GiB)
    ms_python = model_signing_python(args.model_signing_python)
    with tempfile.TemporaryDirectory(prefix="relgate-bench-attest-") as tmp:
        root = Path(tmp)
        single, sharded = make_checkpoints(root, size)
        for label, ckpt in (("single file", single), ("3 shards + index", sharded)):
            total = sum(f.stat().st_size for f in files_of(ckpt))
            print(f"\n{label}: {total / GiB:.2f} GiB, {relgate.attest(ckpt).tensors} tensors")
            ms = methods(ckpt, ms_python)
            timings = measure(ms, args.repeat)
            anchor = timings["blake3-py update_mmap AUTO (anchor)"][0]
            gb = total / 1e9
            print(f"  {'method':<40} {'GB/s':>7} {'vs anchor':>10} {'CPU s/GB':>9}  (warm cache)")
            for name, (wall, cpu) in timings.items():
                print(f"  {name:<40} {gb / wall:>7.2f} {anchor / wall:>9.2f}x {cpu / gb:>9.3f}")
            if args.cold:
                print("  cold cache (one run each after dropping caches):")
                for name in (
                    "relgate attest (tree only)",
                    "relgate attest (tree + file digests)",
                    "blake3-py update_mmap AUTO (anchor)",
                ):
                    if not drop_caches():
                        print("  (cannot drop caches: not root)")
                        break
                    t0 = time.perf_counter()
                    ms[name]()
                    t = time.perf_counter() - t0
                    print(f"  {name:<40} {total / t / 1e9:>7.2f}")
        if not args.no_memory:
            memory(root, size)
    print(f"\n{os.cpu_count()} CPUs; model_signing: {ms_python or 'not available'}")


if __name__ == "__main__":
    main()
