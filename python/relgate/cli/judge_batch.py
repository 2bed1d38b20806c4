"""`relgate judge batch`: judge a suite against a release's answers, in process or on Ray.

relgate judge batch --suite S.csv --answers A.jsonl [--judge embedding] [--ray [ADDRESS]]
                    [--shard-rows N] [--report OUT.json|.parquet]
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from typer.core import TyperCommand

from relgate.cli._common import JsonOpt, err_console, handle_errors, print_json
from relgate.cli._judge import BackendOpt, BaseUrlOpt, ModelOpt, judge_options


def _is_ray_address(token: str) -> bool:
    return (
        token in ("local", "auto")
        or token.startswith("ray://")
        or (":" in token and not Path(token).exists())
    )


class RayOptionCommand(TyperCommand):
    """Lets ``--ray`` take an optional value: ``--ray`` alone means a local Ray instance,
    ``--ray ADDRESS`` a cluster. The next token is the address only when it looks like one
    (``local``, ``auto``, ``ray://...`` or ``host:port``), so ``--ray ckpt.safetensors`` still
    reads the path as an argument."""

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        out: list[str] = []
        i = 0
        while i < len(args):
            token = args[i]
            if token == "--":
                out.extend(args[i:])
                break
            if token == "--ray":
                following = args[i + 1] if i + 1 < len(args) else None
                if following is not None and _is_ray_address(following):
                    out.append(f"--ray={following}")
                    i += 2
                    continue
                out.append("--ray=local")
            else:
                out.append(token)
            i += 1
        return super().parse_args(ctx, out)


@handle_errors
def batch_cmd(
    suite: Annotated[Path, typer.Option("--suite", help="Suite file (CSV, JSONL or parquet).")],
    answers: Annotated[
        Path,
        typer.Option("--answers", help="The release's answers (JSONL/parquet: item_id, answer)."),
    ],
    judge: BackendOpt = "embedding",
    model: ModelOpt = None,
    base_url: BaseUrlOpt = None,
    shard_rows: Annotated[
        int, typer.Option("--shard-rows", min=1, help="Rows per shard (one Ray task each).")
    ] = 1024,
    ray_address: Annotated[
        str | None,
        typer.Option(
            "--ray",
            help="One Ray task per shard: on the cluster at ADDRESS, or on a local Ray "
            "instance when given without one.",
            metavar="[ADDRESS]",
        ),
    ] = None,
    report: Annotated[
        Path | None, typer.Option("--report", help="Write the scores (.json or .parquet).")
    ] = None,
    json_out: JsonOpt = False,
) -> None:
    """Score every suite row's reference against the release's answer to its item."""
    from relgate.scale.judge_batch import batch_rows, run_batch, shards, write_batch

    rows = batch_rows(suite, answers)
    options = judge_options(judge, model, base_url)
    start = time.perf_counter()
    with Progress(
        TextColumn("judging shards"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err_console,
    ) as progress:
        task = progress.add_task("", total=len(shards(len(rows.answers), shard_rows)))

        def advance(_: object) -> None:
            progress.update(task, advance=1)

        if ray_address is not None:
            from relgate.scale.ray_tasks import ray_judge_batch

            sha, scores = ray_judge_batch(
                rows, judge, options, shard_rows=shard_rows, address=ray_address, on_shard=advance
            )
        else:
            sha, scores = run_batch(rows, judge, options, shard_rows=shard_rows, on_shard=advance)
    seconds = time.perf_counter() - start
    if report is not None:
        write_batch(rows, sha, scores, report)
    summary = {
        "judge_sha256": sha,
        "rows": len(scores),
        "seconds": round(seconds, 3),
        "rows_per_s": round(len(scores) / seconds, 1) if seconds > 0 else None,
        "ray": ray_address,
        "mean_score": sum(scores) / len(scores) if scores else None,
    }
    if json_out:
        print_json(summary)
        return
    typer.echo(
        f"judge {sha}\n{len(scores)} rows in {seconds:.2f} s "
        f"({summary['rows_per_s']} rows/s)" + (f"; report {report}" if report else "")
    )
