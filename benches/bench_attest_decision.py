"""Decision latency with open weights: what ``Store.record_decision`` cost when it re-hashed
the whole checkpoint (``measure_weights="full"``, the old default) vs the spot check of k
tensors with inclusion proofs (the default now), vs a decision that measures nothing, on a
generated ``--size`` GiB checkpoint (4 shards, in a temporary directory deleted at the end).
Best of ``--repeat`` interleaved rounds, warm page cache.

    PYTHONPATH=python .venv/bin/python benches/bench_attest_decision.py [--size 1] [--repeat 5]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

from relgate.manifest import ReleaseManifest
from relgate.store import Store

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_attest_incremental import GiB, make_checkpoint

MANIFEST = Path(__file__).resolve().parents[1] / "examples" / "manifests"


def manifest(path: str) -> ReleaseManifest:
    doc = json.loads(next(MANIFEST.glob("*.json")).read_text())
    doc["model"] = {"kind": "local", "path": path, "endpoint": "http://127.0.0.1:9/v1"}
    doc.pop("weights_attestation", None)
    return ReleaseManifest.parse(doc)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=float, default=1.0, help="checkpoint size in GiB")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--k", type=int, default=4)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="relgate-bench-") as tmp:
        data = Path(tmp) / "data"
        data.mkdir()
        make_checkpoint(data, int(args.size * GiB))
        with Store.open(data_dir=data, spot_check_k=args.k, sync_commits=False) as store:
            reg = store.register_release(manifest("ckpt"), actor="bench")
            sha = reg.release.sha256
            att = reg.release.manifest.weights_attestation or {}
            print(f"checkpoint: {att['bytes'] / GiB:.2f} GiB, {att['tensors']} tensors")
            times: dict[str, list[float]] = {"full": [], "spot": [], "none": []}
            modes: dict[str, bool | str] = {"full": "full", "spot": "spot", "none": False}
            for _ in range(args.repeat + 1):  # the first round warms up
                for name, mode in modes.items():
                    t = time.perf_counter()
                    r = store.record_decision(
                        tenant="default",
                        release_sha=sha,
                        kind="checkpoint_promote",
                        evidence={},
                        actor="bench",
                        reason="bench",
                        measure_weights=mode,
                    )
                    times[name].append(time.perf_counter() - t)
                    if name != "none":
                        assert r.evidence["weights"]["matches_registered"] is True
            best = {n: min(v[1:]) for n, v in times.items()}
    print(f"decision, full re-hash (before): {best['full'] * 1000:.1f} ms")
    print(f"decision, spot check k={args.k} (after): {best['spot'] * 1000:.1f} ms")
    print(f"decision, weights not measured: {best['none'] * 1000:.1f} ms")
    ratio = best["spot"] / best["full"]
    print(f"  spot / full: {ratio:.4f} ({1 / ratio:.0f}x faster)")


if __name__ == "__main__":
    main()
