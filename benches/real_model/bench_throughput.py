"""Throughput of SmolLM2-135M-Instruct on llama.cpp's server, CPU: startup, answers/s and
generated tokens/s by max_tokens and concurrency, and raw prefill (prompt tokens/s).

The machine these numbers come from is shared (other people compile and test on the same two
cores), so every configuration is measured in several interleaved rounds (shuffled order) and
reported as median and range, with the server's own CPU seconds beside wall time: tokens per
server CPU-second moves much less with the neighbours' load than tokens per wall-second.

Prefill is plain ``/v1/completions`` with ``max_tokens=1`` on prompts that share no prefix (each
starts with a random number, so llama.cpp's prefix reuse cannot skip work): the anchor for the
judge (``bench_llm_judge.py``). ``--logits_all False`` (which makes logprobs impossible) shows
what computing logits at every prompt position costs.

    PYTHONPATH=python /work/main/.venv/bin/python benches/real_model/bench_throughput.py \
        [--rounds 3] [--items 8] [--out benches/real_model/data/throughput.json]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path
from typing import Any

from common import DATA, answer_items, machine, subset_suite, suite_items, write_json
from releases import release
from relgate.engines import LlamaCppServer

# Legal-sounding filler words for prompts of a chosen length.
LEGAL_TEXT = (
    "the court held that a contract signed under duress is void because consent was not freely "
    "given and the statute of limitations had not yet expired when the claim was filed in the "
    "district where the parties lived and worked for many years before moving abroad"
)
WORDS = LEGAL_TEXT.split()


def cpu_seconds(pid: int | None) -> float:
    """User + system CPU seconds of a process (all its threads)."""
    assert pid is not None
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def complete(base_url: str, prompt: str, max_tokens: int = 1) -> tuple[float, dict[str, Any]]:
    body = json.dumps(
        {"model": "smollm2", "prompt": prompt, "max_tokens": max_tokens, "temperature": 0.0}
    ).encode()
    req = urllib.request.Request(
        base_url + "/completions", data=body, headers={"Content-Type": "application/json"}
    )
    t0 = time.perf_counter()
    with urllib.request.urlopen(req, timeout=600) as resp:
        doc = json.load(resp)
    return time.perf_counter() - t0, doc["usage"]


def prefill(engine: LlamaCppServer, words: int, n: int, concurrency: int, seed: int) -> dict:
    rng = random.Random(seed)
    prompts = [
        f"{rng.randint(10**8, 10**9)} " + " ".join(rng.choice(WORDS) for _ in range(words))
        for _ in range(n)
    ]
    cpu0, t0 = cpu_seconds(engine.pid), time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        results = list(pool.map(lambda p: complete(engine.base_url, p), prompts))
    wall, cpu = time.perf_counter() - t0, cpu_seconds(engine.pid) - cpu0
    tokens = sum(u["prompt_tokens"] for _, u in results)
    return {
        "prompt_tokens_mean": tokens / n,
        "prompt_tokens_per_s": tokens / wall,
        "prompt_tokens_per_cpu_s": tokens / cpu if cpu > 0 else None,
        "wall_s": wall,
        "server_cpu_s": cpu,
    }


def generation(
    engine: LlamaCppServer,
    items: list[tuple[str, str, str]],
    max_tokens: int,
    concurrency: int,
    seed: int,
) -> dict[str, Any]:
    base = release("v1")
    rel = replace(base, default=replace(base.default, max_tokens=max_tokens))
    cpu0 = cpu_seconds(engine.pid)
    run = answer_items(
        engine.base_url, engine.served_model, rel, items, seed=seed, concurrency=concurrency
    )
    cpu = cpu_seconds(engine.pid) - cpu0
    gen = sum(a.completion_tokens or 0 for a in run.answers)
    return {
        "answers_per_s": len(run.answers) / run.wall_s,
        "generated_tokens_per_s": gen / run.wall_s,
        "generated_tokens_per_cpu_s": gen / cpu if cpu > 0 else None,
        "completion_tokens_mean": gen / len(run.answers),
        "prompt_tokens_mean": statistics.fmean(a.prompt_tokens or 0 for a in run.answers),
        "stopped_by_length": sum(a.finish_reason == "length" for a in run.answers),
        "latency_p50_s": statistics.median(a.seconds for a in run.answers),
        "wall_s": run.wall_s,
        "server_cpu_s": cpu,
    }


def summarize(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Median and range of every numeric field over the rounds."""
    out: dict[str, Any] = {"rounds": len(rows)}
    for key in rows[0]:
        values = [r[key] for r in rows if isinstance(r[key], int | float)]
        if values:
            out[key] = statistics.median(values)
            out[key + "_range"] = [min(values), max(values)]
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--items", type=int, default=8)
    parser.add_argument("--prompts", type=int, default=6)
    parser.add_argument("--out", type=Path, default=DATA / "throughput.json")
    args = parser.parse_args()

    result: dict[str, Any] = {"machine_before": machine()}
    starts = []
    for threads in (1, 2, 1, 2):
        t0 = time.perf_counter()
        with LlamaCppServer("smollm2", n_threads=threads) as engine:
            ready = time.perf_counter() - t0
            dt, _ = complete(engine.base_url, "Hello", 1)
        starts.append({"threads": threads, "ready_s": ready, "first_completion_s": dt})
    result["startup"] = starts
    print("startup", starts, flush=True)

    items = random.Random(0).sample(suite_items(subset_suite()), args.items)
    configs: list[tuple[str, int, Any, int]] = []
    for mt in (32, 64, 128):
        for c in (1, 2, 4):
            configs.append(("generation", 2, mt, c))
    configs.append(("generation", 1, 64, 1))
    for words in (40, 80, 160):
        for c in (1, 2):
            configs.append(("prefill", 2, words, c))
    configs.append(("prefill", 1, 80, 1))
    configs.append(("prefill_no_logits_all", 2, 80, 1))
    raw: dict[str, list[dict[str, Any]]] = {}
    engines = {
        ("logits_all", 2): LlamaCppServer("smollm2", n_threads=2),
        ("logits_all", 1): LlamaCppServer("smollm2", n_threads=1),
        ("no_logits_all", 2): LlamaCppServer(
            "smollm2", n_threads=2, extra_args=("--logits_all", "False")
        ),
    }
    try:
        for engine in engines.values():
            engine.start()
            complete(engine.base_url, "warm up", 2)
        rng = random.Random(1)
        for rnd in range(args.rounds):
            order = configs[:]
            rng.shuffle(order)
            for kind, threads, size, conc in order:
                key = f"{kind} threads={threads} size={size} concurrency={conc}"
                if kind == "generation":
                    engine = engines[("logits_all", threads)]
                    row = generation(engine, items, size, conc, seed=100 + rnd)
                else:
                    which = "no_logits_all" if kind.endswith("no_logits_all") else "logits_all"
                    engine = engines[(which, threads)]
                    row = prefill(engine, size, args.prompts, conc, seed=1000 * rnd + size)
                row["loadavg"] = machine()["loadavg"][0]
                raw.setdefault(key, []).append(row)
                print(
                    rnd,
                    key,
                    json.dumps(
                        {k: round(v, 2) if isinstance(v, float) else v for k, v in row.items()}
                    ),
                    flush=True,
                )
    finally:
        for engine in engines.values():
            engine.stop()
    result["configs"] = {key: summarize(rows) for key, rows in raw.items()}
    result["raw"] = raw
    result["machine_after"] = machine()
    write_json(args.out, result)
    print("wrote", args.out)


if __name__ == "__main__":
    main()
