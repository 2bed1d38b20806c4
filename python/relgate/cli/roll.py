"""`relgate roll start|status|watch|pause|resume|promote|abort|simulate`.

The live verbs are gRPC calls to the server's RolloutService. `simulate TIMELINE` is offline:
it replays a recorded timeline of readings and commands through the same controller and pure
phase function the server runs, with a fake clock, and prints the receipts it would emit. When
the timeline lists the receipt kinds it ``expect``s, a mismatch exits with code 10.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from relgate.cli._common import (
    Connection,
    JsonOpt,
    TenantOpt,
    console,
    handle_errors,
    print_json,
    print_table,
    with_connection,
)
from relgate.errors import InvalidInputError

if TYPE_CHECKING:
    pass

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


# -- live verbs ------------------------------------------------------------------------------

RolloutIdArg = Annotated[str, typer.Argument(help="Rollout id (ro_...).")]
ReasonOpt = Annotated[str, typer.Option("--reason", help="Why (recorded in the receipt).")]


_PHASE_NAMES = {
    1: "Shadow",
    2: "Progressing",
    3: "Paused",
    4: "Inconclusive",
    5: "Observing",
    6: "Completed",
    7: "Aborted",
    8: "RolledBack",
}


def rollout_dict(ro: Any) -> dict[str, Any]:
    """A ``relgate.v1.Rollout`` as JSON data."""
    st = ro.status
    return {
        "rollout_id": ro.rollout_id,
        "tenant": ro.tenant,
        "release_sha256": ro.release_sha256,
        "stable_release_sha256": ro.stable_release_sha256 or None,
        "phase": _PHASE_NAMES.get(st.phase, "Unspecified"),
        "message": st.message,
        "step_index": st.step_index,
        "weight_bp": st.weight_bp,
        "requests_at_step": st.requests_at_step,
        "started_at": st.started_at,
        "step_started_at": st.step_started_at,
        "paused": st.paused,
        "abort": st.abort,
        "routing_version": st.routing_version,
        "readings": [
            {
                "monitor": r.monitor,
                "verdict": {1: "HOLDS", 2: "BREACHED", 3: "INCONCLUSIVE"}.get(r.verdict, "-"),
                "candidate": r.candidate,
                "baseline": r.baseline,
                "threshold": r.threshold,
                "samples": r.samples,
            }
            for r in st.readings
        ],
        "spec": json.loads(ro.spec.overrides_json or "{}"),
    }


def _show(ro: Any, json_out: bool) -> None:
    d = rollout_dict(ro)
    if json_out:
        print_json(d)
        return
    console.print(
        f"{d['rollout_id']}  {d['release_sha256'][:12]} replacing "
        f"{(d['stable_release_sha256'] or 'nothing (cold start)')[:12]}  "
        f"step {d['step_index']} at {_pct(d['weight_bp'])}  {d['message']}",
        markup=False,
    )
    if d["readings"]:
        rows = [
            [
                r["monitor"],
                r["verdict"],
                f"{r['candidate']:.4g}",
                f"{r['baseline']:.4g}",
                f"{r['threshold']:.4g}",
                str(r["samples"]),
            ]
            for r in d["readings"]
        ]
        print_table(
            "monitors", ["monitor", "verdict", "candidate", "baseline", "threshold", "n"], rows
        )


@app.command("start")
@handle_errors
@with_connection
def start_cmd(
    release: Annotated[str, typer.Argument(help="sha256 of a gated release.")],
    spec: Annotated[
        Path | None,
        typer.Option("--spec", help="JSON file of spec overrides (steps, thresholds, observer)."),
    ] = None,
    stable: Annotated[
        str, typer.Option("--stable", help="Release replaced [default: previous_release].")
    ] = "",
    reason: ReasonOpt = "",
    tenant: TenantOpt = "",
    *,
    conn: Connection,
    json_out: JsonOpt = False,
) -> None:
    """Start a canary (or, for a cold start, a shadow) of RELEASE."""
    overrides: dict[str, Any] = {}
    if spec is not None:
        try:
            overrides = json.loads(spec.read_text())
        except ValueError as exc:
            raise InvalidInputError(f"{spec}: not JSON: {exc}") from None
        if not isinstance(overrides, dict):
            raise InvalidInputError(f"{spec}: expected a JSON object")
    with conn.client() as c:
        ro = c.start_rollout(
            release,
            overrides=overrides,
            stable_release_sha256=stable,
            tenant=tenant,
            reason=reason,
        )
    _show(ro, json_out)


@app.command("status")
@handle_errors
@with_connection
def status_cmd(
    rollout_id: RolloutIdArg,
    *,
    conn: Connection,
    json_out: JsonOpt = False,
) -> None:
    """Show a rollout: phase, step, weight, monitors."""
    with conn.client() as c:
        _show(c.get_rollout(rollout_id), json_out)


@app.command("watch")
@handle_errors
@with_connection
def watch_cmd(
    rollout_id: RolloutIdArg,
    *,
    conn: Connection,
    json_out: JsonOpt = False,
) -> None:
    """Follow a rollout until it is over (one line, or one JSON document, per change)."""
    with conn.client() as c:
        for event in c.watch_rollout(rollout_id):
            if json_out:
                d = rollout_dict(event.rollout)
                if event.HasField("receipt"):
                    d["receipt"] = {
                        "kind": event.receipt.kind,
                        "sha256": event.receipt.receipt_sha256,
                    }
                print(json.dumps(d, sort_keys=True), flush=True)
                continue
            st = event.rollout.status
            line = f"{_PHASE_NAMES.get(st.phase, '-')}: {_pct(st.weight_bp)}"
            if event.HasField("receipt"):
                line += f"  receipt {event.receipt.kind} {event.receipt.receipt_sha256[:12]}"
            console.print(f"{line}  {event.rollout.status.message}", markup=False)


def _control(verb: str) -> Any:
    @handle_errors
    @with_connection
    def command(
        rollout_id: RolloutIdArg,
        reason: ReasonOpt = "",
        *,
        conn: Connection,
        json_out: JsonOpt = False,
    ) -> None:
        with conn.client() as c:
            _show(c.control(verb, rollout_id, reason), json_out)

    command.__doc__ = {
        "Pause": "Pause a rollout (beats promote).",
        "Resume": "Resume a paused rollout (the step's deadline restarts).",
        "Promote": "Skip the rest of the hold once every monitor holds (or end a shadow).",
        "Abort": "Abort: traffic returns to the stable release (beats pause and promote).",
    }[verb]
    return command


for _verb in ("Pause", "Resume", "Promote", "Abort"):
    app.command(_verb.lower())(_control(_verb))
