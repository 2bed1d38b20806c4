"""The LLM judge for real: ``OpenAIJudge`` against SmolLM2-135M-Instruct on llama.cpp (CPU).

1. logprobs: does a chat completion with ``logprobs``/``top_logprobs`` carry them, and are
   "yes"/"no" among the top tokens after the judge prompt (their ranks, their mass)?
2. calibration per slice on a sample of the subset (K items per slice, all of a smaller
   slice), with ceilings and item-cluster CIs, beside the embedding judge on the same sample;
   with the shipped prompt (reference first) and, optionally, an answer-first layout.
3. throughput: judge pairs/s (rows in suite order, as calibration and the gate send them) at
   concurrency 1/2/4, vs the server's raw prefill measured in the same run on the same prompts
   with a random number in front of the system message (no prefix can be reused). Both layouts
   and llama-cpp-python's ``--cache`` (RAM state cache) are measured. Rounds are interleaved
   because the machine is shared; the server's CPU seconds are recorded beside wall time.

    PYTHONPATH=python /work/main/.venv/bin/python benches/real_model/bench_llm_judge.py \
        [--threads 2] [--items-per-slice 12] [--pairs 96] [--rounds 2] [--answer-first-calibration]
"""

from __future__ import annotations

import argparse
import contextlib
import math
import os
import random
import statistics
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import relgate.judge.llm as llm
from common import DATA, best_answers, machine, subset_suite, write_json
from relgate.engines import LlamaCppServer, chat
from relgate.errors import JudgeError
from relgate.gate.calibration import calibrate
from relgate.judge.embedding import EmbeddingJudge
from relgate.judge.llm import JUDGE_PROMPT, JUDGE_SYSTEM, OpenAIJudge, yes_probability
from relgate.suite import Suite

ANSWER_FIRST = (
    "Candidate answer: {answer}\n"
    "Reference answer: {reference}\n"
    "Does the candidate answer state the same facts as the reference answer? Answer yes or no."
)


def messages(answer: str, reference: str, layout: str, nonce: str = "") -> list[dict[str, str]]:
    template = JUDGE_PROMPT if layout == "reference_first" else ANSWER_FIRST
    return [
        {"role": "system", "content": nonce + JUDGE_SYSTEM},
        {"role": "user", "content": template.format(reference=reference, answer=answer)},
    ]


@contextlib.contextmanager
def layout(name: str) -> Iterator[None]:
    """Score with the answer-first prompt: the judge module builds its messages through
    ``judge_messages``; swapped here for the duration (bench only)."""
    if name == "reference_first":
        yield
        return
    original = llm.judge_messages
    llm.judge_messages = lambda a, r: messages(a, r, "answer_first")
    try:
        yield
    finally:
        llm.judge_messages = original


class LayoutJudge(OpenAIJudge):
    """OpenAIJudge whose identity names the prompt layout it is used with."""

    def __init__(self, *args: Any, layout_name: str, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.layout_name = layout_name
        if layout_name != "reference_first":
            self._sha, self._description = llm.judge_sha256(
                self.backend,
                model=self.model,
                weights=f"served-model:{self.model}",
                prompt=ANSWER_FIRST,
                settings=llm._settings(
                    top_logprobs=self.top_logprobs, max_tokens=1, temperature=0.0
                ),
            )


def cpu_seconds(pid: int | None) -> float:
    """User + system CPU seconds of a process (all its threads)."""
    if pid is None:
        return math.nan
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks


def sample_suite(suite: Suite, k: int, seed: int = 0) -> Suite:
    """K random items per slice (all items of a slice with fewer)."""
    rng = random.Random(seed)
    slice_of = suite.slice_of()
    keep: list[str] = []
    for s in suite.slices:
        items = sorted(i for i in suite.item_ids if slice_of[i] == s)
        keep += items if len(items) <= k else rng.sample(items, k)
    import polars as pl

    return Suite.from_frame(suite.frame.filter(pl.col("item_id").is_in(keep)))


def pairs_in_suite_order(suite: Suite, answers: dict[str, str], n: int) -> list[tuple[str, str]]:
    items = suite.frame["item_id"].to_list()
    refs = suite.frame["reference"].to_list()
    rows = [(answers[i], r) for i, r in zip(items, refs, strict=True) if answers[i] != r]
    return rows[:n]


def logprob_probe(engine: LlamaCppServer, pairs: list[tuple[str, str]]) -> dict[str, Any]:
    """What the server returns after the judge prompt."""
    present = 0
    ranks_yes: list[int] = []
    ranks_no: list[int] = []
    mass: list[float] = []
    neither = 0
    first_tokens: dict[str, int] = {}
    n_top: list[int] = []
    for a, r in pairs:
        reply = chat(
            engine.base_url,
            engine.served_model,
            messages(a, r, "reference_first"),
            max_tokens=1,
            temperature=0.0,
            logprobs=True,
            top_logprobs=20,
        )
        first_tokens[reply.text] = first_tokens.get(reply.text, 0) + 1
        if not reply.top_logprobs:
            continue
        present += 1
        top = reply.top_logprobs[0]
        n_top.append(len(top))
        words = [llm._word(t) for t, _ in top]
        if "yes" in words:
            ranks_yes.append(words.index("yes") + 1)
        if "no" in words:
            ranks_no.append(words.index("no") + 1)
        mass.append(sum(math.exp(lp) for t, lp in top if llm._word(t) in ("yes", "no")))
        try:
            yes_probability(top)
        except JudgeError:
            neither += 1
    return {
        "requests": len(pairs),
        "with_top_logprobs": present,
        "top_logprobs_returned": sorted(set(n_top)),
        "yes_in_top": len(ranks_yes),
        "no_in_top": len(ranks_no),
        "yes_rank_median": statistics.median(ranks_yes) if ranks_yes else None,
        "no_rank_median": statistics.median(ranks_no) if ranks_no else None,
        "yes_no_mass_median": statistics.median(mass) if mass else None,
        "yes_no_mass_min": min(mass) if mass else None,
        "neither_in_top": neither,
        "first_tokens": dict(sorted(first_tokens.items(), key=lambda kv: -kv[1])[:8]),
    }


def time_judge(
    engine: LlamaCppServer, pairs: list[tuple[str, str]], layout_name: str, concurrency: int
) -> dict[str, Any]:
    judge = LayoutJudge(
        engine.base_url,
        engine.served_model,
        concurrency=concurrency,
        timeout_s=600,
        layout_name=layout_name,
    )
    cpu0, t0 = cpu_seconds(engine.pid), time.perf_counter()
    with layout(layout_name):
        scores = judge.score([a for a, _ in pairs], [r for _, r in pairs])
    wall, cpu = time.perf_counter() - t0, cpu_seconds(engine.pid) - cpu0
    return {
        "kind": "judge",
        "layout": layout_name,
        "concurrency": concurrency,
        "pairs": len(pairs),
        "wall_s": wall,
        "server_cpu_s": cpu,
        "pairs_per_s": len(pairs) / wall,
        "score_mean": float(np.mean(scores)),
    }


def time_anchor(engine: LlamaCppServer, pairs: list[tuple[str, str]], layout_name: str) -> dict:
    """Raw prefill: the same prompts, max_tokens 1, nothing reusable (random number first)."""
    rng = random.Random(len(pairs))
    tokens = 0
    cpu0, t0 = cpu_seconds(engine.pid), time.perf_counter()
    for a, r in pairs:
        reply = chat(
            engine.base_url,
            engine.served_model,
            messages(a, r, layout_name, nonce=f"{rng.randint(10**8, 10**9)} "),
            max_tokens=1,
            temperature=0.0,
        )
        tokens += reply.prompt_tokens or 0
    wall, cpu = time.perf_counter() - t0, cpu_seconds(engine.pid) - cpu0
    return {
        "kind": "anchor",
        "layout": layout_name,
        "pairs": len(pairs),
        "wall_s": wall,
        "server_cpu_s": cpu,
        "pairs_per_s": len(pairs) / wall,
        "prompt_tokens_mean": tokens / len(pairs),
        "prompt_tokens_per_s": tokens / wall,
    }


def ceilings(cal: Any) -> dict[str, Any]:
    return {
        s.slice: {
            "ceiling": s.rho,
            "low": s.rho_low,
            "high": s.rho_high,
            "n_items": s.n_items,
            "n_rows": s.n_rows,
        }
        for s in cal.slices
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--items-per-slice", type=int, default=12)
    parser.add_argument("--pairs", type=int, default=96)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--probe", type=int, default=40)
    parser.add_argument("--skip-calibration", action="store_true")
    parser.add_argument("--answer-first-calibration", action="store_true")
    parser.add_argument("--out", type=Path, default=DATA / "llm_judge.json")
    args = parser.parse_args()

    suite = subset_suite()
    best = best_answers()
    result: dict[str, Any] = {"machine_before": machine(), "threads": args.threads}
    sample = sample_suite(suite, args.items_per_slice)
    result["sample"] = {"items": len(sample.item_ids), "rows": sample.n_rows}
    pairs = pairs_in_suite_order(sample, best, args.pairs)

    with LlamaCppServer("smollm2", alias="smollm2-judge", n_threads=args.threads) as engine:
        result["startup_s"] = engine.startup_s
        probe_pairs = pairs_in_suite_order(sample, best, 10**9)
        probe_pairs = random.Random(1).sample(probe_pairs, min(args.probe, len(probe_pairs)))
        result["logprobs"] = logprob_probe(engine, probe_pairs)
        print("logprobs", result["logprobs"], flush=True)

        timings = []
        for rnd in range(args.rounds):
            for layout_name in ("reference_first", "answer_first"):
                row = time_anchor(engine, pairs, layout_name)
                row["round"] = rnd
                timings.append(row)
                print(row, flush=True)
                for concurrency in (1, 4) if layout_name == "answer_first" else (1, 2, 4):
                    row = time_judge(engine, pairs, layout_name, concurrency)
                    row["round"] = rnd
                    timings.append(row)
                    print(row, flush=True)
        result["throughput"] = timings

        if not args.skip_calibration:
            for layout_name in ("reference_first",) + (
                ("answer_first",) if args.answer_first_calibration else ()
            ):
                judge = LayoutJudge(
                    engine.base_url,
                    engine.served_model,
                    concurrency=2,
                    timeout_s=600,
                    layout_name=layout_name,
                )
                t0 = time.perf_counter()
                try:
                    with layout(layout_name):
                        cal = calibrate(
                            sample, judge, answers={i: best[i] for i in sample.item_ids}
                        )
                    result[f"calibration_{layout_name}"] = ceilings(cal)
                except JudgeError as exc:
                    result[f"calibration_{layout_name}"] = {"error": str(exc)}
                result[f"calibration_{layout_name}_s"] = time.perf_counter() - t0
                print(layout_name, result[f"calibration_{layout_name}"], flush=True)

    # --cache (llama-cpp-python's RAM cache of evaluated states) on the same pairs.
    with LlamaCppServer(
        "smollm2",
        alias="smollm2-judge",
        n_threads=args.threads,
        extra_args=("--cache", "True"),
    ) as engine:
        cached = []
        for layout_name in ("reference_first", "answer_first"):
            row = time_judge(engine, pairs, layout_name, 1)
            row["cache"] = True
            cached.append(row)
            print(row, flush=True)
        result["throughput_cache"] = cached

    embedding = EmbeddingJudge()
    cal = calibrate(sample, embedding, answers={i: best[i] for i in sample.item_ids})
    result["calibration_embedding_same_sample"] = ceilings(cal)
    result["calibration_embedding_full_subset"] = ceilings(
        calibrate(suite, embedding, answers={i: best[i] for i in suite.item_ids})
    )
    result["machine_after"] = machine()
    write_json(args.out, result)
    print("wrote", args.out)


if __name__ == "__main__":
    main()
