"""Record the releases' answers on the suite subset through the real model server.

Every run is one release answering items with one sampling seed (temperature 0.7) or greedily
(``@t0``), written to ``data/answers/<release>__s<seed>.jsonl`` (first line: metadata with wall
time and machine load). A release that changes only the legal class answers only the Law items;
its other classes are v1's content, so the analysis takes them from the v1 run with the same
seed (same requests, same per-request seeds). ``--check-determinism N`` re-asks N non-Law items
of such a v1 run and reports how many answers come back identical.

    PYTHONPATH=python /work/main/.venv/bin/python benches/real_model/record_releases.py \
        --runs v1:1 v1:2 v1@t0:0 law_typo:2 ... [--threads 1]
"""

from __future__ import annotations

import argparse
import json
import sys
import time

from common import ANSWERS, LEGAL_SLICE, Run, answer_items, subset_suite, suite_items, write_json
from releases import LEGAL_ONLY, release
from relgate.engines import LlamaCppServer


def run_path(name: str, seed: int):  # type: ignore[no-untyped-def]
    return ANSWERS / f"{name}__s{seed}.jsonl"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", nargs="+", required=True, help="RELEASE:SEED ...")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--concurrency", type=int, default=1)
    parser.add_argument("--force", action="store_true", help="re-record existing runs")
    parser.add_argument("--check-determinism", type=int, default=0, metavar="N")
    args = parser.parse_args()

    suite = subset_suite()
    all_items = suite_items(suite)
    law_items = [it for it in all_items if it[1] == LEGAL_SLICE]
    with LlamaCppServer("smollm2", n_threads=args.threads, seed=0) as engine:
        print(f"server ready in {engine.startup_s:.2f} s at {engine.base_url}", flush=True)
        for spec in args.runs:
            name, _, seed_text = spec.partition(":")
            seed = int(seed_text or 0)
            rel = release(name)
            path = run_path(name, seed)
            if path.exists() and not args.force:
                print(f"skip {path.name} (exists)", flush=True)
                continue
            base = name.partition("@")[0]
            items = law_items if base in LEGAL_ONLY else all_items
            started = time.monotonic()

            def progress(
                done: int, n: int = len(items), label: str = spec, started: float = started
            ) -> None:
                if done % 50 == 0 or done == n:
                    print(f"  {label}: {done}/{n} ({time.monotonic() - started:.0f} s)", flush=True)

            run = answer_items(
                engine.base_url,
                engine.served_model,
                rel,
                items,
                seed=seed,
                concurrency=args.concurrency,
                progress=progress,
            )
            run.write(path)
            print(
                f"{spec}: {len(items)} answers in {run.wall_s:.1f} s "
                f"({len(items) / run.wall_s:.2f}/s), load {run.machine_after['loadavg']}",
                flush=True,
            )
        if args.check_determinism:
            report = {}
            for spec in ("v1:2", "v1@t0:0"):
                name, _, seed_text = spec.partition(":")
                path = run_path(name, int(seed_text))
                if not path.exists():
                    continue
                recorded = Run.read(path)
                texts = recorded.texts()
                sample = [it for it in all_items if it[1] != LEGAL_SLICE][
                    :: max(1, (len(all_items) - len(law_items)) // args.check_determinism)
                ][: args.check_determinism]
                again = answer_items(
                    engine.base_url,
                    engine.served_model,
                    release(name),
                    sample,
                    seed=int(seed_text),
                )
                same = sum(a.answer == texts[a.item_id] for a in again.answers)
                report[spec] = {"asked": len(sample), "identical": same}
                print(f"determinism {spec}: {same}/{len(sample)} identical", flush=True)
            write_json(ANSWERS.parent / "determinism.json", report)
    json.dump({"done": args.runs}, sys.stdout)
    print()


if __name__ == "__main__":
    main()
