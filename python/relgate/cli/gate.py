"""`relgate gate run|status|show|reapply|override`: the gate through the server.

Exit codes tell a script what the gate said: 0 pass, 20 pass with warnings (slices the gate
could not vouch for, named), 21 insufficient (strict policy, or nothing vouched for), 22 fail;
errors keep their per-class codes 1-9 (`relgate.cli._common`).
"""

from __future__ import annotations

import json
import math
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
import yaml

from relgate.cli._common import (
    Connection,
    JsonOpt,
    TenantOpt,
    handle_errors,
    print_json,
    with_connection,
)
from relgate.errors import InvalidInputError

if TYPE_CHECKING:
    pass

app = typer.Typer(
    help="Gate releases: per-slice verdicts, reports, overrides.", no_args_is_help=True
)

EXIT_PASS = 0
EXIT_PASS_WITH_WARNINGS = 20
EXIT_INSUFFICIENT = 21
EXIT_FAIL = 22

ShaArg = Annotated[
    str, typer.Argument(metavar="SHA", help="The release: sha256 or a unique prefix (6+ hex).")
]
PolicyOpt = Annotated[
    Path | None,
    typer.Option(
        "--policy",
        help="Gate policy file (YAML/JSON: policy fields, or a manifest-style gate_policy).",
    ),
]


def _verdicts() -> dict[int, tuple[str, int]]:
    from relgate._proto.relgate.v1 import gate_pb2

    return {
        gate_pb2.GATE_VERDICT_PASS: ("PASS", EXIT_PASS),
        gate_pb2.GATE_VERDICT_PASS_WITH_WARNINGS: ("PASS WITH WARNINGS", EXIT_PASS_WITH_WARNINGS),
        gate_pb2.GATE_VERDICT_INSUFFICIENT: ("INSUFFICIENT", EXIT_INSUFFICIENT),
        gate_pb2.GATE_VERDICT_FAIL: ("FAIL", EXIT_FAIL),
    }


def verdict_exit(result: Any) -> int:
    """The exit code of a gate result."""
    return _verdicts().get(result.verdict, ("?", EXIT_FAIL))[1]


def read_policy(path: Path) -> dict[str, Any]:
    """Policy fields from a YAML or JSON file."""
    try:
        doc = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise InvalidInputError(f"policy file {path}: not YAML/JSON: {exc}") from None
    if isinstance(doc, dict) and isinstance(doc.get("gate_policy"), dict):
        doc = doc["gate_policy"]
    if not isinstance(doc, dict):
        raise InvalidInputError(f"policy file {path}: must hold a mapping of policy fields")
    return doc


def _f(value: float, digits: int = 3) -> str:
    return "-" if not math.isfinite(value) else f"{value:.{digits}f}"


def format_result(result: Any) -> str:
    """The per-slice table (worst slice first, as the server sorted it), the aggregate
    marked non-decisive, the outcome and where the HTML report is."""
    from relgate._proto.relgate.v1 import gate_pb2

    names = {v: k.removeprefix("SLICE_VERDICT_") for k, v in gate_pb2.SliceVerdict.items()}
    head = (
        f"{'slice':<28} {'verdict':<16} {'rows':>5} {'rho':>7} {'ceiling':>7} {'q':>7} "
        f"{'q CI':>15} {'prev q':>7} {'change':>7} {'p(Holm)':>8}"
    )
    lines = [head, "-" * len(head)]
    for s in result.slices:
        ci = f"[{_f(s.q_ci.low, 2)}, {_f(s.q_ci.high, 2)}]"
        prev = _f(s.previous_q) if s.HasField("previous_q") else "-"
        change = _f(s.delta_vs_previous) if s.HasField("delta_vs_previous") else "-"
        p = _f(s.p_value_holm, 4) if s.HasField("p_value_holm") else "-"
        lines.append(
            f"{s.slice[:28]:<28} {names.get(s.verdict, '?'):<16} {s.rows:>5} {_f(s.rho):>7} "
            f"{_f(s.ceiling):>7} {_f(s.q):>7} {ci:>15} {prev:>7} {change:>7} {p:>8}"
        )
    lines.append(
        f"aggregate (mean over slices, NOT decisive): rho {_f(result.aggregate_rho)} "
        f"(previous {_f(result.previous_aggregate_rho)}), q {_f(result.aggregate_q)} "
        f"(previous {_f(result.previous_aggregate_q)})"
    )
    label = _verdicts().get(result.verdict, ("?", 0))[0]
    lines.append(
        f"verdict: {label}" + (" (what-if policy, not recorded)" if result.what_if else "")
    )
    failed = [s.slice for s in result.slices if s.verdict == gate_pb2.SLICE_VERDICT_FAIL]
    warn = (gate_pb2.SLICE_VERDICT_INSUFFICIENT, gate_pb2.SLICE_VERDICT_JUDGE_UNTRUSTED)
    unvouched = [s.slice for s in result.slices if s.verdict in warn]
    if failed:
        lines.append(f"failed slices: {', '.join(failed)}")
    if unvouched:
        lines.append(f"not vouched for: {', '.join(unvouched)}")
    if result.archived:
        lines.append("release archived: no rollout accepts it unless the gate is overridden")
    if result.gate_override_sha256:
        lines.append(f"overridden: gate_override_sha256 {result.gate_override_sha256}")
    if result.cold_start:
        lines.append("cold start: no previous release to compare with")
    lines.append(f"gate result sha256 {result.gate_result_sha256}")
    lines.append(f"judge {result.judge_sha256}  suite {result.suite_sha256}")
    lines.append(f"HTML report: {result.report_path}")
    return "\n".join(lines)


class Progress:
    """Rate and ETA of a gate's stages from the (stage, done, total) messages the server
    streams: rows per second since the stage began, and the time left at that rate."""

    def __init__(self, clock: Any = time.monotonic) -> None:
        self._clock = clock
        self._began: dict[str, tuple[float, int]] = {}

    def update(self, stage: str, done: int, total: int) -> dict[str, Any]:
        """The event for one message: stage, done, total, rate (per s) and eta_s (null until
        there is a rate)."""
        now = self._clock()
        t0, done0 = self._began.setdefault(stage, (now, done))
        elapsed = now - t0
        rate = (done - done0) / elapsed if elapsed > 0 and done > done0 else None
        eta = (total - done) / rate if rate else None
        return {"stage": stage, "done": done, "total": total, "rate": rate, "eta_s": eta}

    @staticmethod
    def line(event: dict[str, Any]) -> str:
        """``gate: calibration 2048/7335 (28%), 240 rows/s, ETA 22 s`` for people."""
        done, total = event["done"], event["total"]
        text = f"gate: {event['stage']} {done}/{total}"
        if total:
            text += f" ({100 * done / total:.0f}%)"
        if event["rate"] is not None:
            text += f", {event['rate']:.0f}/s, ETA {event['eta_s']:.0f} s"
        return text


def _emit(result: Any, json_out: bool) -> None:
    if json_out:
        print_json(result)
    else:
        typer.echo(format_result(result))
    raise typer.Exit(verdict_exit(result))


UPLOAD_PREFIX = "upload:"


def _local_file(value: str | None, option: str, *, must_exist: bool = True) -> Path | None:
    """The local file a value names (to upload), or None (an upload ref, a `server:` path,
    or, with ``must_exist`` False, a name the server resolves)."""
    if not value or value.startswith((UPLOAD_PREFIX, "server:")):
        return None
    path = Path(value).expanduser()
    if path.is_file():
        return path
    if must_exist:
        raise InvalidInputError(
            f"{option} {value}: no such file here (a file on the server is server:PATH)"
        )
    return None


@app.command("run")
@handle_errors
@with_connection
def run_cmd(
    sha: ShaArg,
    answers: Annotated[
        str | None,
        typer.Option(
            "--answers",
            metavar="FILE",
            help="Recorded outputs (JSONL/parquet: item_id, answer). A local file is streamed "
            "to the server; `server:PATH` names a file under the server's --data-root "
            "instead; `upload:...` an earlier upload.",
        ),
    ] = None,
    endpoint: Annotated[
        bool, typer.Option("--endpoint", help="Ask the release's own endpoint.")
    ] = False,
    vllm_model: Annotated[str | None, typer.Option("--vllm-model")] = None,
    transformers_model: Annotated[str | None, typer.Option("--transformers-model")] = None,
    judge: Annotated[
        str | None,
        typer.Option("--judge", help="embedding, openai, transformers or vllm [server default]."),
    ] = None,
    judge_model: Annotated[str | None, typer.Option("--judge-model")] = None,
    judge_endpoint: Annotated[str | None, typer.Option("--judge-endpoint")] = None,
    suite: Annotated[
        str | None,
        typer.Option(
            "--suite",
            metavar="REF_OR_FILE",
            help="The suite, when not the manifest's dataset.ref: a local file (streamed), "
            "a shipped suite's name or a file under the server's --suites-dir.",
            show_default="the manifest's dataset.ref",
        ),
    ] = None,
    reuse_scores: Annotated[
        bool,
        typer.Option("--reuse-scores", help="Decide again from the stored scores (no judge)."),
    ] = False,
    tenant: TenantOpt = "",
    json_out: JsonOpt = False,
    *,
    conn: Connection,
) -> None:
    """Run the gate on release SHA with its own policy and record gate_pass / gate_fail (another
    policy is a what-if: `gate show --policy`; opening a failed gate is `gate override`)."""
    from relgate.client import answer_source, judge_message

    # A local file is uploaded once connected; `server:PATH` is read by the server itself.
    local = _local_file(answers, "--answers")
    server_path = answers.removeprefix("server:") if answers and not local else answers
    source = answer_source(
        # (a stand-in for the upload's ref, so that one-source-only is checked before it)
        answers=UPLOAD_PREFIX if local else server_path,
        endpoint=endpoint,
        vllm_model=vllm_model,
        transformers_model=transformers_model,
    )
    if source.WhichOneof("source") is None and not reuse_scores:
        raise InvalidInputError(
            "name the answers: --answers FILE, --endpoint, --vllm-model or --transformers-model"
        )

    progress = Progress()

    def stage(s: Any) -> None:
        event = progress.update(s.stage, s.done, s.total)
        if json_out:
            # stdout keeps one document (the result); progress events are JSON lines on stderr.
            sys.stderr.write(json.dumps({"event": "progress", **event}) + "\n")
        else:
            sys.stderr.write(progress.line(event) + "\n")

    def run_started(run: Any) -> None:
        # First: the run's id, so a caller whose stream breaks (a server restart) can wait.
        if json_out:
            event = {"event": "run", "run_id": run.run_id, "attached": run.attached}
            sys.stderr.write(json.dumps(event) + "\n")
        else:
            how = "attached to unfinished run" if run.attached else "run"
            sys.stderr.write(
                f"gate: {how} {run.run_id} (if this stream breaks: relgate gate status "
                f"{run.run_id} --wait)\n"
            )

    suite_file = _local_file(suite, "--suite", must_exist=False)
    with conn.client() as client:
        if local is not None:
            ref = client.upload(local, kind="answers", tenant=tenant).ref
            source = answer_source(answers=ref)
        if suite_file is not None:
            suite = client.upload(suite_file, kind="suite", tenant=tenant).ref
        result = client.run_gate(
            sha,
            answers=source,
            judge=judge_message(judge, judge_model, judge_endpoint),
            suite_path=suite or "",
            reuse_scores=reuse_scores,
            tenant=tenant,
            on_stage=stage,
            on_run=run_started,
        )
    _emit(result, json_out)


@app.command("status")
@handle_errors
@with_connection
def status_cmd(
    run_id: Annotated[
        str, typer.Argument(metavar="RUN_ID", help="The gate run (gr_..., printed by gate run).")
    ],
    wait: Annotated[
        bool,
        typer.Option(
            "--wait",
            help="Wait until the run is done or failed (through server restarts), then print "
            "its result and exit with its verdict's code.",
        ),
    ] = False,
    timeout: Annotated[
        float | None,
        typer.Option("--timeout", min=0.0, help="Give up waiting after this many seconds."),
    ] = None,
    tenant: TenantOpt = "",
    json_out: JsonOpt = False,
    *,
    conn: Connection,
) -> None:
    """Where gate run RUN_ID stands (state, stage, rows done / total, attempts); a done run's
    result exits with its verdict's code, a failed run with the gate error's."""
    from relgate.errors import GateError

    progress = Progress()

    def stage(s: Any) -> None:
        if s.stage in ("", "queued"):
            return
        event = progress.update(s.stage, s.done, s.total)
        if json_out:
            sys.stderr.write(json.dumps({"event": "progress", **event}) + "\n")
        else:
            sys.stderr.write(progress.line(event) + "\n")

    with conn.client() as client:
        if wait:
            run = client.wait_gate_run(run_id, tenant=tenant, timeout=timeout, on_stage=stage)
        else:
            run = client.get_gate_run(run_id, tenant=tenant)
    if run.state == "failed":
        raise GateError(f"gate run {run.run_id} failed: {run.error}")
    if run.state == "done" and run.HasField("result"):
        if json_out:
            print_json(run)
            raise typer.Exit(verdict_exit(run.result))
        typer.echo(f"gate run {run.run_id}: done (attempts {run.attempts})")
        _emit(run.result, json_out)
    if json_out:
        print_json(run)
    else:
        line = f"gate run {run.run_id}: {run.state}, {run.stage} {run.done}/{run.total}"
        typer.echo(line + f" (attempts {run.attempts})")


@app.command("reapply")
@handle_errors
@with_connection
def reapply_cmd(
    sha: ShaArg,
    tenant: TenantOpt = "",
    json_out: JsonOpt = False,
    *,
    conn: Connection,
) -> None:
    """Decide again from the stored per-row scores with the release's own policy, and record it
    (no judge call): for a result recorded under older verdict rules."""
    with conn.client() as client:
        result = client.run_gate(sha, reuse_scores=True, tenant=tenant)
    _emit(result, json_out)


@app.command("show")
@handle_errors
@with_connection
def show_cmd(
    sha: ShaArg,
    policy: PolicyOpt = None,
    json_out: JsonOpt = False,
    *,
    conn: Connection,
) -> None:
    """The latest gate result of SHA; with --policy, what that policy would say on the stored
    scores (no judge call, nothing recorded)."""
    with conn.client() as client:
        result = client.get_gate_result(
            sha, what_if_policy=read_policy(policy) if policy is not None else None
        )
    _emit(result, json_out)


@app.command("override")
@handle_errors
@with_connection
def override_cmd(
    sha: ShaArg,
    rationale: Annotated[
        str, typer.Option("--rationale", help="Why the gate is forced open (required).")
    ],
    gate_result: Annotated[
        str,
        typer.Option("--gate-result", help="The gate result sha256 you reviewed [the latest]."),
    ] = "",
    tenant: TenantOpt = "",
    json_out: JsonOpt = False,
    *,
    conn: Connection,
) -> None:
    """Force the gate of SHA open with a written rationale (releaser role)."""
    if not rationale.strip():
        raise InvalidInputError("--rationale must not be empty: an override is a written decision")
    with conn.client() as client:
        response = client.override_gate(
            sha, rationale, gate_result_sha256=gate_result, tenant=tenant
        )
    if json_out:
        print_json(
            {
                "gate_override_sha256": response.gate_override_sha256,
                "receipt": response.receipt,
            }
        )
    else:
        typer.echo(f"gate overridden: gate_override_sha256 {response.gate_override_sha256}")
        typer.echo(f"receipt {response.receipt.kind} {response.receipt.receipt_sha256}")
