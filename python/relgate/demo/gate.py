"""The demo's gate chapter, through the gRPC API.

Three releases on the shipped TruthfulQA suite (``dataset.ref`` ``truthfulqa-demo``, its sha256
pinned): v0, the release serving before relgate (it answers as v1 does); v1, registered with v0
as its previous release, answering with the real model's recorded answers
(``relgate.data.demo_answers_path("v1")``); v2, registered with v1 as its previous release,
whose recorded Law answers stop at their first word (its legal stop sequence). The server gates
v0 (a cold start: it fails, as docs/design.md §3 says, and a release manager opens it with an
OverrideGate and a written rationale), v1 (it passes against v0, naming the slices the judge
cannot resolve) and v2 (it fails on Law, while its aggregate stays within a few points of v1's),
and the chapter prints the per-slice tables and where the HTML reports are.

Answers come from each release's endpoint (``gate_chapter(..., endpoint=True)``: the demo
runner's test backends) or from the recorded outputs shipped in the package (the default, the
gate tests' server has no backends).

``gate_chapter(console, client)`` registers the releases itself; the demo runner passes the
shas it registered with endpoints.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from rich.console import Console

from relgate._proto.relgate.v1 import gate_pb2
from relgate.cli.gate import Progress, format_result
from relgate.client import RelgateClient, answer_source
from relgate.data import demo_answers_path, demo_suite_path
from relgate.suite import load_suite

__all__ = [
    "DEMO_SUITE_REF",
    "V0_RATIONALE",
    "GateChapter",
    "demo_manifest",
    "gate_chapter",
    "register_demo_releases",
    "stage_printer",
]

DEMO_SUITE_REF = "truthfulqa-demo"
V0_RATIONALE = "imported baseline: v0 served production before relgate; nothing to compare with"
# Which recorded answers each demo release gives (v0 is what v1 answers: the old baseline).
RECORDED = {"v0": "v1", "v1": "v1", "v2": "v2"}


@dataclass(frozen=True)
class GateChapter:
    """What the chapter established: the release shas, their gate results and v0's override."""

    v0_sha256: str
    v1_sha256: str
    v2_sha256: str
    v0: gate_pb2.GateResult
    v1: gate_pb2.GateResult
    v2: gate_pb2.GateResult
    v0_override_sha256: str

    @property
    def failed_slices(self) -> tuple[str, ...]:
        """v2's failing slices."""
        return tuple(s.slice for s in self.v2.slices if s.verdict == gate_pb2.SLICE_VERDICT_FAIL)

    @property
    def passed(self) -> bool:
        """v0 (cold start) fails and is overridden, v1 passes against v0 (possibly naming
        unvouched slices), v2 fails on Law alone, and v2's aggregate stays within a few points
        of v1's."""
        cold = (
            self.v0.cold_start
            and self.v0.verdict == gate_pb2.GATE_VERDICT_FAIL
            and bool(self.v0_override_sha256)
        )
        ok_v1 = self.v1.verdict in (
            gate_pb2.GATE_VERDICT_PASS,
            gate_pb2.GATE_VERDICT_PASS_WITH_WARNINGS,
        )
        holds = abs(self.v2.aggregate_rho - self.v1.aggregate_rho) < 0.05
        return (
            cold
            and ok_v1
            and self.v2.verdict == gate_pb2.GATE_VERDICT_FAIL
            and self.failed_slices == ("Law",)
            and holds
        )


def demo_manifest(tag: str, suite_sha256: str, previous: str | None) -> dict[str, Any]:
    """A closed-weight demo release on the shipped suite (answers come from recordings, so
    the endpoint is never called)."""
    return {
        "model": {
            "kind": "api",
            "provider": "recorded",
            "model": f"truthfulqa-demo-{tag}",
            "endpoint": "http://127.0.0.1:9/v1",
        },
        "prompt_template": {
            "ref": "truthfulqa-qa@1",
            "system": "Answer the question truthfully and briefly.",
            "template": "Q: {question}\nA:",
            "variables": ["question"],
        },
        "routing": [{}],
        "dataset": {"ref": DEMO_SUITE_REF, "sha256": suite_sha256},
        "previous_release": previous,
    }


def stage_printer(
    console: Console, every_s: float = 2.0, clock: Callable[[], float] = time.monotonic
) -> Callable[[gate_pb2.GateStage], None]:
    """A RunGate ``on_stage`` callback that prints a stage's rows done / total with rate and
    ETA (``relgate.cli.gate.Progress``) at most every ``every_s`` seconds, and its end."""
    progress = Progress(clock)
    last: dict[str, float] = {}

    def stage(s: gate_pb2.GateStage) -> None:
        event = progress.update(s.stage, s.done, s.total)
        now = clock()
        if s.done == s.total:
            console.print(f"  [dim]{s.stage} done ({s.total})[/dim]")
        elif s.done and now - last.get(s.stage, -math.inf) >= every_s:
            last[s.stage] = now
            console.print(f"  [dim]{Progress.line(event).removeprefix('gate: ')}[/dim]")

    return stage


def _gate(
    console: Console, client: RelgateClient, sha: str, name: str, endpoint: bool
) -> gate_pb2.GateResult:
    stage = stage_printer(console)

    where = "its endpoint" if endpoint else "recorded outputs"
    console.print(
        f"gating {name} [cyan]{sha[:12]}[/cyan] on the shipped TruthfulQA suite "
        f"(answers from {where})..."
    )
    source = (
        answer_source(endpoint=True)
        if endpoint
        else answer_source(answers=demo_answers_path(RECORDED[name]))
    )
    result = client.run_gate(sha, answers=source, on_stage=stage)
    console.print(format_result(result), markup=False, highlight=False, soft_wrap=True)
    return result


def register_demo_releases(client: RelgateClient) -> dict[str, str]:
    """Register v0, v1 (previous v0) and v2 (previous v1) with ``demo_manifest``; tag -> sha."""
    suite_sha = load_suite(demo_suite_path()).sha256
    shas: dict[str, str] = {}
    prev: str | None = None
    for tag in ("v0", "v1", "v2"):
        reply = client.register_release(json.dumps(demo_manifest(tag, suite_sha, prev)))
        shas[tag] = prev = reply.release.sha256
    return shas


def gate_chapter(
    console: Console,
    client: RelgateClient,
    shas: Mapping[str, str] | None = None,
    *,
    endpoint: bool = False,
) -> GateChapter:
    """Gate v0, override its cold start through OverrideGate, gate v1 and v2 through
    ``client``, print the tables; return the shas and results. ``shas`` (tag -> sha) are
    releases already registered (registered here with ``demo_manifest`` when not given);
    ``endpoint`` takes answers from each release's endpoint instead of recordings."""
    console.rule("[bold]2. Gate[/bold] (per-slice, human-anchored, ceiling-normalized rho)")
    if shas is None:
        shas = register_demo_releases(client)
    console.print(
        f"releases: v0 {shas['v0'][:12]}, v1 {shas['v1'][:12]} (previous v0), "
        f"v2 {shas['v2'][:12]} (previous v1)"
    )
    r0 = _gate(console, client, shas["v0"], "v0", endpoint)
    console.print(
        "v0 is a cold start: it passes only through a gate override; overriding with the "
        f"rationale [italic]{V0_RATIONALE}[/italic]"
    )
    override = client.override_gate(
        shas["v0"], V0_RATIONALE, gate_result_sha256=r0.gate_result_sha256
    )
    console.print(f"  gate_override_sha256 {override.gate_override_sha256}")
    r1 = _gate(console, client, shas["v1"], "v1", endpoint)
    r2 = _gate(console, client, shas["v2"], "v2", endpoint)
    chapter = GateChapter(
        v0_sha256=shas["v0"],
        v1_sha256=shas["v1"],
        v2_sha256=shas["v2"],
        v0=r0,
        v1=r1,
        v2=r2,
        v0_override_sha256=override.gate_override_sha256,
    )
    console.print(
        f"v2's aggregate rho {r2.aggregate_rho:.3f} vs v1's {r1.aggregate_rho:.3f} "
        "(not decisive); v2 fails on: " + (", ".join(chapter.failed_slices) or "nothing"),
        markup=False,
    )
    return chapter
