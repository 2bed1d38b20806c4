"""Receipt bundle verification throughput (target: 100,000 receipts well under 10 s, 2 cores).

Builds a realistic tenant chain in memory through the public receipts API (register receipts,
gate receipts with per-slice floats, checkpoint receipts with monitor readings), assembles
the bundle exactly as ``relgate receipts export`` does, writes it to disk, then times
``verify_bundle`` from the file (JSON parse included) with and without per-receipt inclusion
proofs. Anchors, in the same run: the 10 s target, and the canonicalization that dominates
the cost timed on its own, through relgate's fast path and through the ``rfc8785`` reference
implementation.

    .venv/bin/python benches/bench_receipts.py [--receipts 100000]
"""

from __future__ import annotations

import argparse
import json
import random
import tempfile
import time
from pathlib import Path
from typing import Any

import rfc8785
from relgate.canonical import canonical_json, takes_fast_path
from relgate.receipts import BODY_FIELDS, TreeHeadSigner, Trust, make_receipt, verify_bundle
from relgate.receipts.bundle import assemble_bundle

TARGET_S = 10.0
SLICES = ("law", "health", "finance", "history", "science", "misconceptions")


def evidence(kind: str, rng: random.Random) -> dict[str, Any]:
    if kind == "register":
        return {"manifest_sha256": f"{rng.getrandbits(256):064x}", "weights": {"attestable": False}}
    if kind.startswith("gate"):
        return {
            "judge_sha256": f"{rng.getrandbits(256):064x}",
            "slices": {
                s: {
                    "q": rng.random(),
                    "ci": [rng.random(), rng.random()],
                    "n": 60,
                    "verdict": "PASS",
                }
                for s in SLICES
            },
        }
    return {
        "step": rng.randrange(5),
        "traffic_pct": rng.choice([1, 5, 25, 50]),
        "monitors": {
            "quality": {"value": rng.random(), "threshold": 0.65},
            "latency_p99_ms": {"value": rng.uniform(100, 900), "threshold": 1200.0},
            "error_rate": {"value": rng.random() / 100, "threshold": 0.02},
        },
    }


def build_rows(n: int) -> list[tuple[int, str, str]]:
    rng = random.Random(7)
    rows = []
    prev: str | None = None
    release_heads: dict[str, str] = {}
    release = ""
    for seq in range(n):
        if seq % 100 == 0:
            kind, release = "register", f"{rng.getrandbits(256):064x}"
        elif seq % 100 == 1:
            kind = "gate_pass"
        else:
            kind = "checkpoint_promote"
        receipt = make_receipt(
            kind=kind,
            tenant="default",
            release_sha256=release,
            evidence=evidence(kind, rng),
            actor="controller",
            reason=f"{kind} at step {seq % 100}",
            time=f"2026-11-26T12:{seq // 6000 % 60:02d}:{seq // 100 % 60:02d}.{seq:06d}Z",
            prev_receipt_sha256=prev,
            prev_release_receipt_sha256=release_heads.get(release),
            seq=seq,
        )
        rows.append((seq, receipt.receipt_sha256, receipt.canonical_body().decode()))
        prev = release_heads[release] = receipt.receipt_sha256
    return rows


def timed(fn: Any) -> tuple[float, Any]:
    start = time.perf_counter()
    result = fn()
    return time.perf_counter() - start, result


def timed_cpu(fn: Any) -> tuple[float, float, Any]:
    """Wall and CPU seconds (this process and its threads): on a shared machine the CPU time
    is what the same run costs on an idle one."""
    wall, cpu = time.perf_counter(), time.process_time()
    result = fn()
    return time.perf_counter() - wall, time.process_time() - cpu, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--receipts", type=int, default=100_000)
    args = parser.parse_args()
    n = args.receipts

    t_build, rows = timed(lambda: build_rows(n))
    print(f"built {n} receipts in {t_build:.2f} s")
    with tempfile.TemporaryDirectory() as tmp:
        signer = TreeHeadSigner(Path(tmp))
        results = {}
        for proofs in (True, False):
            t_export, (bundle, _) = timed(
                lambda proofs=proofs: assemble_bundle(
                    tenant="default",
                    rows=rows,
                    signer=signer,
                    stored_heads=[],
                    anchors=[],
                    timestamp="2026-11-26T13:00:00.000000Z",
                    inclusion_proofs=proofs,
                )
            )
            path = Path(tmp) / f"bundle-{proofs}.json"
            path.write_text(json.dumps(bundle))
            size_mb = path.stat().st_size / 1e6
            t_verify, cpu_verify, report = timed_cpu(
                lambda path=path: verify_bundle(path, trust=Trust.pinned([signer.public_key_b64]))
            )
            assert report.ok and report.receipts == n, report
            results[proofs] = t_verify
            label = "with inclusion proofs" if proofs else "without inclusion proofs"
            print(
                f"verify {label}: {t_verify:.2f} s wall, {cpu_verify:.2f} s CPU "
                f"({n / t_verify:,.0f} receipts/s), bundle {size_mb:.0f} MB, assembled in "
                f"{t_export:.2f} s; {t_verify / TARGET_S:.2f} x the {TARGET_S:.0f} s target"
            )

        bodies = [{k: e[k] for k in BODY_FIELDS} for e in bundle["receipts"]]
        t_fast, _ = timed(lambda: [canonical_json(b) for b in bodies])
        t_ref, _ = timed(lambda: [rfc8785.dumps(b) for b in bodies])
        fast = sum(1 for b in bodies if takes_fast_path(b))
        print(
            f"canonicalization of {n} bodies: relgate {t_fast:.2f} s, rfc8785 reference "
            f"{t_ref:.2f} s (ratio {t_fast / t_ref:.2f}); {fast} of {n} took the C-encoder "
            f"path; canonicalization is {t_fast / results[True]:.0%} of verify with proofs"
        )


if __name__ == "__main__":
    main()
