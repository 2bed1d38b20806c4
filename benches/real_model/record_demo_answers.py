"""Record the shipped demo releases' answers from the real model (issue 14, item 7).

``python/relgate/data/truthfulqa_demo_answers_v1.jsonl`` and ``..._v2.jsonl`` used to be
copies of TruthfulQA's best answers (the calibration answers), so v1 scored q = 1 by
construction. This script replaces them with what SmolLM2-135M-Instruct (llama.cpp, CPU)
answers when it serves the releases of ``examples/real-model/``:

- v1: ``examples/real-model/v1.yaml`` on every item of the demo suite (807 items);
- v2: ``examples/real-model/v2.yaml`` (v1 plus the legal class's stop sequence ``" "``). Only
  the Law items are asked again: every other item renders byte for byte as v1's (same
  messages, same settings, same per-request seed; checked here for every item), and llama.cpp
  answers a seeded request the same way each time (20/20 re-asked answers identical,
  ``data/determinism.json``), so v2's other answers are v1's recorded answers.

Each item is rendered by ``ReleaseManifest.render_prompt`` for its slice and answered by
``relgate.answers.from_endpoint``: the gate's own path. Run from the worktree root:

    PYTHONPATH=python /work/main/.venv/bin/python benches/real_model/record_demo_answers.py

About 15 minutes on 2 cores for v1 (one request at a time; the server serializes them).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import yaml
from relgate.answers import Answers, from_endpoint
from relgate.data import demo_answers_path, demo_suite_path
from relgate.engines import LlamaCppServer
from relgate.manifest import ReleaseManifest
from relgate.suite import load_suite

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples" / "real-model"
DATA = Path(__file__).resolve().parent / "data"


def manifest(tag: str, endpoint: str) -> ReleaseManifest:
    doc = yaml.safe_load((EXAMPLES / f"{tag}.yaml").read_text())
    doc["model"] = {**doc["model"], "endpoint": endpoint}
    # The demo suite, not the subset: only the rendering and settings matter here.
    return ReleaseManifest.parse(doc)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--limit", type=int, default=0, help="only the first N items (a try)")
    args = parser.parse_args(argv)
    suite = load_suite(demo_suite_path())
    prompts, slice_of = suite.prompts(), suite.slice_of()
    items = sorted(prompts)[: args.limit or None]
    meta: dict[str, object] = {"items": len(items)}
    with LlamaCppServer("smollm2", n_threads=args.threads, n_ctx=1024) as engine:
        v1, v2 = (manifest(t, engine.base_url) for t in ("v1", "v2"))
        r1 = {i: v1.render_prompt(prompts[i], slice_of[i]) for i in items}
        r2 = {i: v2.render_prompt(prompts[i], slice_of[i]) for i in items}
        law = [i for i in items if r2[i].klass == "legal"]
        same = [i for i in items if r2[i] == r1[i]]
        if sorted(law + same) != items:
            print("v2 renders a non-legal item differently from v1", file=sys.stderr)
            return 1

        def progress(done: int, total: int) -> None:
            if done % 50 == 0 or done == total:
                print(f"  {done}/{total}", flush=True)

        t0 = time.perf_counter()
        a1 = from_endpoint(
            r1, base_url=engine.base_url, model=engine.served_model, concurrency=1,
            timeout_s=300, on_done=progress,
        )  # fmt: skip
        meta["v1_s"] = round(time.perf_counter() - t0, 1)
        t0 = time.perf_counter()
        a2_law = from_endpoint(
            {i: r2[i] for i in law}, base_url=engine.base_url, model=engine.served_model,
            concurrency=1, timeout_s=300, on_done=progress,
        )  # fmt: skip
        meta["v2_law_s"] = round(time.perf_counter() - t0, 1)
    a2 = Answers({**{i: a1[i] for i in same}, **dict(a2_law)})
    for tag, answers in (("v1", a1), ("v2", a2)):
        # A try (--limit) never overwrites the shipped files.
        out = demo_answers_path(tag) if not args.limit else Path(f"/tmp/demo_answers_{tag}.jsonl")
        Answers(dict(answers)).write(out)
        meta[f"{tag}_sha256"] = Answers(dict(answers)).sha256
    meta.update(
        v1_release=v1.sha256, v2_release=v2.sha256, law_items=len(law), model="smollm2 Q4_1"
    )
    if not args.limit:
        (DATA / "demo_answers.json").write_text(json.dumps(meta, indent=2) + "\n")
    print(json.dumps(meta, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
