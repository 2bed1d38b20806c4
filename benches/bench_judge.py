"""Judge throughput: rows/s, tokens/s, per-batch latency and peak memory per backend.

The anchor is the same judge scoring the same rows one pair per call (no batching), in the
same run: the ratio is what batching buys. Each mode uses a fresh judge (empty embedding
cache), and the rows are the demo suite's (best answer, reference) pairs.

    .venv/bin/python benches/bench_judge.py [--backend embedding] [--rows 1000]
        [--batch-size 64] [--model PATH] [--device cpu|cuda] [--anchor-rows 200]
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from relgate.bench.judge import bench_rows, measure_judge
from relgate.judge import make_judge


def options(args: argparse.Namespace, batch_size: int) -> dict[str, Any]:
    opts: dict[str, Any] = {}
    if args.backend == "openai":
        opts = {"base_url": args.base_url, "model": args.model or "judge"}
    elif args.backend in ("transformers", "vllm"):
        opts = {"model": args.model}
    if args.backend in ("embedding", "transformers"):
        opts["batch_size"] = batch_size
        if args.device:
            opts["device"] = args.device
    return opts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--backend", default="embedding")
    parser.add_argument("--rows", type=int, default=1000)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--anchor-rows", type=int, default=200)
    parser.add_argument("--model")
    parser.add_argument("--base-url", default="http://127.0.0.1:8000/v1")
    parser.add_argument("--device")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    answers, refs = bench_rows(args.rows)
    batched = measure_judge(
        make_judge(args.backend, **options(args, args.batch_size)),
        answers,
        refs,
        batch_size=args.batch_size,
        backend=args.backend,
    )
    n = min(args.anchor_rows, args.rows)
    anchor = measure_judge(
        make_judge(args.backend, **options(args, 1)),
        answers[:n],
        refs[:n],
        batch_size=1,
        backend=args.backend,
    )
    ratio = batched.rows_per_s / anchor.rows_per_s
    if args.json:
        print(
            json.dumps(
                {"batched": batched.to_dict(), "unbatched": anchor.to_dict(), "ratio": ratio}
            )
        )
        return
    print("\n".join(batched.lines()))
    print("anchor (same judge, one pair per call):")
    print("\n".join(anchor.lines()))
    print(f"batched / unbatched rows/s: {ratio:.1f}x")


if __name__ == "__main__":
    main()
