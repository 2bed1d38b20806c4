"""`relgate judge ...`: judge calibration, computed locally (no server needed)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from relgate.cli._common import JsonOpt, handle_errors, print_json
from relgate.cli._judge import BackendOpt, BaseUrlOpt, ModelOpt, judge_options
from relgate.cli.judge_batch import RayOptionCommand, batch_cmd

app = typer.Typer(help="Judges: calibrate a judge on a suite.", no_args_is_help=True)


@app.command("calibrate")
@handle_errors
def calibrate_cmd(
    suite: Annotated[Path, typer.Option("--suite", help="Suite file (CSV, JSONL or parquet).")],
    judge: BackendOpt = "embedding",
    model: ModelOpt = None,
    base_url: BaseUrlOpt = None,
    answers: Annotated[
        Path | None,
        typer.Option(
            "--answers",
            help="Human-graded good answers (JSONL/parquet: item_id, answer) to calibrate "
            "with; default: leave one out from the suite's top-graded references.",
        ),
    ] = None,
    out: Annotated[
        Path | None, typer.Option("--out", help="Write the calibration artifact (JSON) here.")
    ] = None,
    cache: Annotated[Path | None, typer.Option("--cache", help="SQLite score cache file.")] = None,
    n_resamples: Annotated[int, typer.Option("--n-resamples")] = 1000,
    confidence: Annotated[float, typer.Option("--confidence")] = 0.95,
    seed: Annotated[int, typer.Option("--seed")] = 0,
    json_out: JsonOpt = False,
) -> None:
    """Measure the judge's per-slice ceiling on a suite (rho with CI, Kendall tau-b, n)."""
    from relgate.answers import load_answers
    from relgate.gate.calibration import calibrate
    from relgate.judge import ScoreCache, make_judge
    from relgate.suite import load_suite

    loaded = load_suite(suite)
    the_judge = make_judge(judge, **judge_options(judge, model, base_url))
    good = dict(load_answers(answers)) if answers is not None else None
    result = calibrate(
        loaded,
        the_judge,
        answers=good,
        cache=ScoreCache(cache) if cache is not None else None,
        n_resamples=n_resamples,
        confidence=confidence,
        seed=seed,
    )
    if out is not None:
        result.write(out)
    if json_out:
        print_json({**result.to_dict(), "sha256": result.sha256})
        return
    typer.echo(f"suite {loaded.sha256}\njudge {result.judge_sha256}\nmethod: {result.method}")
    typer.echo(f"{'slice':<24} {'n':>6} {'items':>6} {'ceiling':>8} {'CI':>17} {'tau-b':>7}")
    for s in result.slices:
        ci = f"[{s.rho_low:.3f}, {s.rho_high:.3f}]"
        typer.echo(
            f"{s.slice[:24]:<24} {s.n_rows:>6} {s.n_items:>6} {s.rho:>8.3f} {ci:>17} "
            f"{s.kendall_tau_b:>7.3f}"
        )
    typer.echo(f"calibration sha256 {result.sha256}" + (f" written to {out}" if out else ""))


app.command("batch", cls=RayOptionCommand)(batch_cmd)
