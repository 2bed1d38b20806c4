"""`relgate roll simulate TIMELINE`: what would the rollout have done? Offline.

It replays a recorded timeline of readings and commands through the same controller and pure
phase function the server runs, with a fake clock, and prints the receipts it would emit. When
the timeline lists the receipt kinds it ``expect``s, a mismatch exits with code 10. The verbs
that drive a live rollout (start, status, watch, pause, resume, promote, abort) need the server.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from relgate.cli._common import JsonOpt, console, handle_errors, print_json, print_table

app = typer.Typer(help="Roll releases out: canary, shadow, simulate.", no_args_is_help=True)

EXIT_UNEXPECTED_RECEIPTS = 10


def _pct(bp: Any) -> str:
    return f"{bp / 100:g}%" if isinstance(bp, int) else "-"


def _summary(evidence: dict[str, Any]) -> str:
    return str(evidence.get("reason", ""))


@app.command("simulate")
@handle_errors
def simulate_cmd(
    timeline: Annotated[
        Path,
        typer.Argument(help="Timeline file (YAML or .json): timestamped readings and commands."),
    ],
    json_out: JsonOpt = False,
) -> None:
    """Replay TIMELINE through the rollout's decision function and print its receipts."""
    from relgate.rollout.simulate import load_timeline, simulate

    result = simulate(load_timeline(timeline))
    if json_out:
        print_json(result.to_dict())
    else:
        rows = [
            [
                f"{r.at:g}",
                r.kind,
                f"{r.evidence.get('step_index', '-')}",
                _pct(r.evidence.get("to_weight_bp", r.evidence.get("weight_bp"))),
                _summary(r.evidence),
            ]
            for r in result.receipts
        ]
        print_table(f"{result.name}: receipts", ["t (s)", "kind", "step", "weight", "why"], rows)
        console.print(
            f"final phase {result.final_phase} at t={result.ended_at:g}s: {result.final_reason}",
            markup=False,
        )
        if result.expect is not None:
            verdict = "as expected" if result.matches_expectation else "NOT as expected"
            console.print(f"receipts {verdict} (expected {list(result.expect)})", markup=False)
    if result.matches_expectation is False:
        raise typer.Exit(EXIT_UNEXPECTED_RECEIPTS)
