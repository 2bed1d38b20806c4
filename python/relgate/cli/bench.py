"""`relgate bench ...`: throughput of the judge backends."""

from __future__ import annotations

from typing import Annotated

import typer

from relgate.cli._common import JsonOpt, handle_errors, print_json
from relgate.cli._judge import BaseUrlOpt, ModelOpt, judge_options

app = typer.Typer(help="Benchmarks: judge throughput.", no_args_is_help=True)


@app.command("judge")
@handle_errors
def judge_cmd(
    backend: Annotated[
        str, typer.Option("--backend", help="embedding, openai, transformers or vllm.")
    ] = "embedding",
    rows: Annotated[int, typer.Option("--rows", min=1, help="Pairs to score.")] = 2000,
    batch_size: Annotated[int, typer.Option("--batch-size", min=1)] = 64,
    model: ModelOpt = None,
    base_url: BaseUrlOpt = None,
    device: Annotated[
        str | None, typer.Option("--device", help="cpu or cuda (local backends).")
    ] = None,
    worker: Annotated[
        bool,
        typer.Option(
            "--worker",
            help="End to end through judge workers: a loopback control plane and "
            "`relgate worker` processes running the backend.",
        ),
    ] = False,
    workers: Annotated[
        int, typer.Option("--workers", min=1, help="Worker processes (with --worker).")
    ] = 1,
    concurrency: Annotated[
        int, typer.Option("--concurrency", min=1, help="Requests in flight (openai backend).")
    ] = 4,
    prefill_anchor: Annotated[
        bool,
        typer.Option(
            "--prefill-anchor/--no-prefill-anchor",
            help="openai backend: also measure the server's raw prefill on the same prompts "
            "(no reusable prefix) and print the ratio.",
        ),
    ] = True,
    json_out: JsonOpt = False,
) -> None:
    """Score ROWS (answer, reference) pairs from the demo suite; print rows/s, tokens/s,
    per-batch latency p50/p95/p99 and peak memory; for an OpenAI-compatible judge also the
    server's raw prefill throughput on the same prompts, measured in the same run, and the
    ratio."""
    from relgate.bench.judge import bench_rows, measure_judge
    from relgate.judge import make_judge

    options = judge_options(backend, model, base_url)
    if device is not None and backend in ("embedding", "transformers"):
        options["device"] = device
    if backend in ("embedding", "transformers"):
        options["batch_size"] = batch_size
    if backend == "openai":
        options["concurrency"] = concurrency
    answers, references = bench_rows(rows)
    if worker:
        from relgate.bench.workers import measure_through_workers

        args = ["--backend", backend]
        for flag, value in (("--model", model), ("--base-url", base_url), ("--device", device)):
            if value is not None:
                args += [flag, value]
        result = measure_through_workers(
            args, answers, references, batch_size=batch_size, backend=backend, workers=workers
        )
    else:
        judge = make_judge(backend, **options)
        result = measure_judge(judge, answers, references, batch_size=batch_size, backend=backend)
    anchor = None
    if backend == "openai" and prefill_anchor and not worker:
        from relgate.bench.judge import measure_prefill

        anchor = measure_prefill(
            options["base_url"],
            options["model"],
            answers,
            references,
            judge_pairs_per_s=result.rows_per_s,
            concurrency=concurrency,
        )
    if json_out:
        out = result.to_dict()
        if anchor is not None:
            out["prefill_anchor"] = anchor.to_dict()
        print_json(out)
    else:
        typer.echo("\n".join(result.lines() + ([] if anchor is None else anchor.lines())))
