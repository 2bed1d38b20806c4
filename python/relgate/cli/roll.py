"""`relgate roll start|list|status|watch|pause|resume|promote|abort|simulate`, `relgate status`.

The live verbs are gRPC calls to the server's RolloutService. A rollout is named by its id
(``ro_...``) or by its release: a sha256 or a unique prefix of one (>= 6 hex; the server
resolves it, an ambiguous prefix is an error), meaning that release's latest rollout.
`roll watch` ends when the rollout does and its exit code says how (docs/cli.md): 0 completed
(or at 100% and observed), 30 rolled back, 31 aborted, 32 paused or inconclusive.

`simulate TIMELINE` is offline: it replays a recorded timeline of readings and commands through
the same controller and pure phase function the server runs, with a fake clock, and prints the
receipts it would emit. When the timeline lists the receipt kinds it ``expect``s, a mismatch
exits with code 10.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
import yaml

from relgate.cli._common import (
    Connection,
    JsonOpt,
    TenantOpt,
    console,
    handle_errors,
    print_json,
    print_json_line,
    print_table,
    with_connection,
)
from relgate.errors import InvalidInputError

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

RolloutArg = Annotated[
    str,
    typer.Argument(
        metavar="ROLLOUT",
        help="Rollout id (ro_...), or a release sha256 or unique prefix: its latest rollout.",
    ),
]
ReasonOpt = Annotated[
    str, typer.Option("--reason", metavar="TEXT", help="Why (recorded in the receipt).")
]

EXIT_ROLLED_BACK = 30
EXIT_ABORTED = 31
EXIT_NEEDS_HUMAN = 32

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
#: Where `roll watch` stops, and its exit code: an outcome, or a state only a human can leave.
WATCH_EXITS = {
    "Observing": 0,
    "Completed": 0,
    "RolledBack": EXIT_ROLLED_BACK,
    "Aborted": EXIT_ABORTED,
    "Paused": EXIT_NEEDS_HUMAN,
    "Inconclusive": EXIT_NEEDS_HUMAN,
}
# A cold start's shadow that has run its course waits for `roll promote`.
_AWAITING_PROMOTE = "Shadow: shadow complete"
_VERDICT_NAMES = {1: "HOLDS", 2: "BREACHED", 3: "INCONCLUSIVE"}


def _or_none(value: str) -> str | None:
    return value or None


def rollout_dict(ro: Any) -> dict[str, Any]:
    """A ``relgate.v1.Rollout`` as plain JSON data (null for what is not set)."""
    st = ro.status
    return {
        "rollout_id": ro.rollout_id,
        "tenant": ro.tenant,
        "release_sha256": ro.release_sha256,
        "stable_release_sha256": _or_none(ro.stable_release_sha256),
        "phase": _PHASE_NAMES.get(st.phase, "Unspecified"),
        "message": st.message,
        "step_index": st.step_index,
        "weight_bp": st.weight_bp,
        "requests_at_step": st.requests_at_step,
        "started_at": _or_none(st.started_at),
        "step_started_at": _or_none(st.step_started_at),
        "paused": st.paused,
        "abort": st.abort,
        "routing_version": st.routing_version,
        "readings": [
            {
                "monitor": r.monitor,
                "verdict": _VERDICT_NAMES.get(r.verdict),
                "candidate": r.candidate,
                "baseline": r.baseline,
                "threshold": r.threshold,
                "samples": r.samples,
                "at": _or_none(r.at),
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
    replacing = (d["stable_release_sha256"] or "")[:12] or "nothing (cold start)"
    console.print(
        f"{d['rollout_id']}  {d['release_sha256'][:12]} replacing {replacing}  "
        f"{d['phase']}  step {d['step_index']} at {_pct(d['weight_bp'])}  {d['message']}",
        markup=False,
    )
    if d["readings"]:
        rows = [
            [
                r["monitor"],
                r["verdict"] or "-",
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
    release: Annotated[
        str,
        typer.Argument(metavar="SHA", help="The gated release: sha256 or a unique prefix."),
    ] = "",
    spec: Annotated[
        Path | None,
        typer.Option(
            "--spec",
            metavar="FILE",
            help="Rollout spec (YAML or JSON: steps, thresholds, observer, shadow_s; "
            "docs/rollout-spec.md). Fields left out keep their defaults.",
            show_default="the defaults --dry-run prints",
        ),
    ] = None,
    dry_run: Annotated[
        bool,
        typer.Option(
            "--dry-run",
            help="Print the effective spec (defaults plus --spec) as YAML and start nothing "
            "(no server needed).",
        ),
    ] = False,
    stable: Annotated[
        str,
        typer.Option(
            "--stable",
            metavar="SHA",
            help="Release replaced.",
            show_default="the manifest's previous_release",
        ),
    ] = "",
    reason: ReasonOpt = "",
    tenant: TenantOpt = "",
    *,
    conn: Connection,
    json_out: JsonOpt = False,
) -> None:
    """Start a canary of SHA (a cold start, with no previous release, is shadowed first for
    shadow_s seconds; then `roll promote` puts it live)."""
    from relgate.rollout.spec import RolloutSpec, load_spec_file

    overrides = load_spec_file(spec) if spec is not None else {}
    if dry_run:
        effective = RolloutSpec.from_dict(overrides).to_dict()
        # cold_start follows the release (its previous_release), and the quality floor,
        # scale and min_ceiling follow its gate policy: the server sets them at start.
        effective.pop("cold_start", None)
        if json_out:
            print_json(effective)
        else:
            typer.echo(
                "# effective rollout spec (docs/rollout-spec.md); at start the server sets\n"
                "# thresholds.quality_floor/quality_scale/min_ceiling from the release's gate "
                "policy\n# unless this file sets them, and cold_start from previous_release.\n"
                + yaml.safe_dump(effective, sort_keys=False),
                nl=False,
            )
        return
    if not release:
        raise InvalidInputError("name the release: relgate roll start SHA [--spec FILE]")
    with conn.client() as c:
        ro = c.start_rollout(
            release,
            overrides=overrides,
            stable_release_sha256=stable,
            tenant=tenant,
            reason=reason,
        )
    _show(ro, json_out)


@app.command("list")
@handle_errors
@with_connection
def list_cmd(
    release: Annotated[
        str,
        typer.Option(
            "--release", metavar="SHA", help="Only this release's rollouts (sha256 or prefix)."
        ),
    ] = "",
    active: Annotated[bool, typer.Option("--active", help="Only rollouts not yet over.")] = False,
    tenant: TenantOpt = "",
    *,
    conn: Connection,
    json_out: JsonOpt = False,
) -> None:
    """The tenant's rollouts, newest first."""
    with conn.client() as c:
        reply = c.list_rollouts(tenant=tenant, release_sha256=release, active_only=active)
    rollouts = [rollout_dict(ro) for ro in reply.rollouts]
    if json_out:
        print_json(rollouts)
        return
    rows = [
        [
            d["rollout_id"],
            d["release_sha256"][:12],
            (d["stable_release_sha256"] or "-")[:12],
            d["phase"],
            _pct(d["weight_bp"]),
            d["started_at"] or "-",
        ]
        for d in rollouts
    ]
    print_table("rollouts", ["rollout", "release", "replacing", "phase", "weight", "started"], rows)


def live_dict(live: Any) -> dict[str, Any]:
    """A ``relgate.v1.LiveRouting`` as plain JSON data."""
    return {
        "tenant": live.tenant,
        "release_sha256": _or_none(live.release_sha256),
        "routing_classes": list(live.routing_classes),
        "candidate_release_sha256": _or_none(live.candidate_release_sha256),
        "candidate_weight_bp": live.candidate_weight_bp,
        "shadow": live.shadow,
        "routing_version": live.routing_version,
    }


@handle_errors
@with_connection
def overview(
    tenant: TenantOpt = "",
    *,
    conn: Connection,
    json_out: JsonOpt = False,
) -> None:
    """What is live now (per tenant and routing class) and which rollouts run."""
    with conn.client() as c:
        reply = c.list_rollouts(tenant=tenant, active_only=True)
    live = live_dict(reply.live)
    running = [rollout_dict(ro) for ro in reply.rollouts]
    if json_out:
        print_json({"live": live, "rollouts": running})
        return
    sha = live["release_sha256"]
    console.print(
        f"tenant {live['tenant']}: "
        + (f"live {sha} (routing version {live['routing_version']})" if sha else "nothing live"),
        markup=False,
    )
    for cls in live["routing_classes"]:
        console.print(f"  serves {cls}", markup=False)
    if live["candidate_release_sha256"]:
        how = "shadow (mirrored, serves nothing)" if live["shadow"] else "canary"
        console.print(
            f"  candidate {live['candidate_release_sha256']}: {how} at "
            f"{_pct(live['candidate_weight_bp'])}",
            markup=False,
        )
    if not running:
        console.print("no rollout in progress", markup=False)
    for d in running:
        console.print(
            f"rollout {d['rollout_id']} of {d['release_sha256'][:12]}: {d['message']}",
            markup=False,
        )


@app.command("status")
@handle_errors
@with_connection
def status_cmd(
    rollout: RolloutArg,
    *,
    conn: Connection,
    json_out: JsonOpt = False,
) -> None:
    """Show a rollout: phase, step, weight, monitors."""
    with conn.client() as c:
        _show(c.get_rollout(rollout), json_out)


@app.command("watch")
@handle_errors
@with_connection
def watch_cmd(
    rollout: RolloutArg,
    *,
    conn: Connection,
    json_out: JsonOpt = False,
) -> None:
    """Follow a rollout, one line (or JSON line) per change, until it completes (or reaches
    100% and is observed: exit 0), is rolled back (30), aborted (31), or waits for a human,
    paused or inconclusive (32)."""
    phase = None
    with conn.client() as c:
        for event in c.watch_rollout(rollout):
            d = rollout_dict(event.rollout)
            phase = d["phase"]
            receipt = None
            if event.HasField("receipt"):
                receipt = {"kind": event.receipt.kind, "sha256": event.receipt.receipt_sha256}
            if json_out:
                print_json_line({**d, "receipt": receipt})
            else:
                line = f"{phase}: {_pct(d['weight_bp'])}"
                if receipt is not None:
                    line += f"  receipt {receipt['kind']} {receipt['sha256'][:12]}"
                console.print(f"{line}  {d['message']}", markup=False)
            if phase in WATCH_EXITS or d["message"].startswith(_AWAITING_PROMOTE):
                break
    raise typer.Exit(WATCH_EXITS.get(phase or "", EXIT_NEEDS_HUMAN))


def _control(verb: str) -> Any:
    @handle_errors
    @with_connection
    def command(
        rollout: RolloutArg,
        reason: ReasonOpt = "",
        *,
        conn: Connection,
        json_out: JsonOpt = False,
    ) -> None:
        with conn.client() as c:
            _show(c.control(verb, rollout, reason), json_out)

    command.__doc__ = {
        "Pause": "Pause a rollout (beats promote).",
        "Resume": "Resume a paused rollout (the step's deadline restarts).",
        "Promote": "Skip the rest of the hold once every monitor holds, or put a cold start "
        "live once its shadow has run (refused, exit 8, during the shadow).",
        "Abort": "Abort: traffic returns to the stable release (beats pause and promote).",
    }[verb]
    return command


for _verb in ("Pause", "Resume", "Promote", "Abort"):
    app.command(_verb.lower())(_control(_verb))
