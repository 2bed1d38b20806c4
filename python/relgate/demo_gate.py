"""The demo's gate chapter, through the gRPC API.

Two releases on the shipped TruthfulQA suite (``dataset.ref`` ``truthfulqa-demo``, its sha256
pinned): v1 answers with TruthfulQA's best answers; v2, registered with v1 as its previous
release, is identical except that it hedges on every Law item. Both answer from recorded
outputs shipped in the package. The server gates v1 (a cold start: it passes, naming the slices
the judge cannot resolve) and v2 (it fails on Law, while its aggregate stays within a few
points of v1's), and the chapter prints both per-slice tables and where the HTML reports are.

``gate_chapter(console, client)`` is what the demo runner calls with a connected
``GateClient``; ``python -m relgate.demo_gate [--data-dir DIR]`` runs it against a server of
its own.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.console import Console

from relgate._proto.relgate.v1 import gate_pb2
from relgate.cli.gate import format_result
from relgate.data import demo_answers_path, demo_suite_path
from relgate.gate.client import GateClient, answer_source
from relgate.suite import load_suite

__all__ = ["DEMO_SUITE_REF", "GateChapter", "demo_manifest", "gate_chapter", "main"]

DEMO_SUITE_REF = "truthfulqa-demo"


@dataclass(frozen=True)
class GateChapter:
    """What the chapter established: the two release shas and their gate results."""

    v1_sha256: str
    v2_sha256: str
    v1: gate_pb2.GateResult
    v2: gate_pb2.GateResult

    @property
    def failed_slices(self) -> tuple[str, ...]:
        """v2's failing slices."""
        return tuple(s.slice for s in self.v2.slices if s.verdict == gate_pb2.SLICE_VERDICT_FAIL)

    @property
    def passed(self) -> bool:
        """v1 passes (possibly naming unvouched slices), v2 fails on Law alone, and v2's
        aggregate stays within a few points of v1's."""
        ok_v1 = self.v1.verdict in (
            gate_pb2.GATE_VERDICT_PASS,
            gate_pb2.GATE_VERDICT_PASS_WITH_WARNINGS,
        )
        holds = abs(self.v2.aggregate_rho - self.v1.aggregate_rho) < 0.05
        return (
            ok_v1
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


def _gate(console: Console, client: GateClient, sha: str, name: str) -> gate_pb2.GateResult:
    def stage(s: gate_pb2.GateStage) -> None:
        if s.done == s.total:
            console.print(f"  [dim]{s.stage} done ({s.total})[/dim]")

    console.print(f"gating {name} [cyan]{sha[:12]}[/cyan] on the shipped TruthfulQA suite...")
    result = client.run_gate(
        sha,
        answers=answer_source(answers=demo_answers_path(name)),
        on_stage=stage,
    )
    console.print(format_result(result), markup=False, highlight=False, soft_wrap=True)
    return result


def gate_chapter(console: Console, client: GateClient) -> GateChapter:
    """Register v1 and v2, gate both through ``client``, print the tables; return the shas
    and results."""
    console.rule("[bold]2. Gate[/bold] (per-slice, human-anchored, ceiling-normalized rho)")
    suite_sha = load_suite(demo_suite_path()).sha256
    v1 = client.register_release(json.dumps(demo_manifest("v1", suite_sha, None)))
    v1_sha = v1.release.sha256
    v2 = client.register_release(json.dumps(demo_manifest("v2", suite_sha, v1_sha)))
    v2_sha = v2.release.sha256
    console.print(f"registered v1 {v1_sha} and v2 {v2_sha} (previous_release v1)")
    r1 = _gate(console, client, v1_sha, "v1")
    r2 = _gate(console, client, v2_sha, "v2")
    chapter = GateChapter(v1_sha256=v1_sha, v2_sha256=v2_sha, v1=r1, v2=r2)
    console.print(
        f"v2's aggregate rho {r2.aggregate_rho:.3f} vs v1's {r1.aggregate_rho:.3f} "
        "(not decisive); v2 fails on: " + (", ".join(chapter.failed_slices) or "nothing"),
        markup=False,
    )
    return chapter


def main(argv: list[str] | None = None) -> int:
    """Start a server (embedded defaults), run the chapter; 0 when it shows the story."""
    from relgate.service.server import BackgroundServer

    parser = argparse.ArgumentParser(prog="python -m relgate.demo_gate", description=__doc__)
    parser.add_argument("--data-dir", type=Path, help="Server state (default: a temp dir).")
    args = parser.parse_args(argv)
    data_dir = args.data_dir or Path(tempfile.mkdtemp(prefix="relgate-demo-gate-"))
    console = Console()
    with BackgroundServer(data_dir, gateway_port=None) as server:
        assert server.admin_key_path is not None
        key = server.admin_key_path.read_text().strip()
        client = GateClient(server.address, api_key=key)
        try:
            chapter = gate_chapter(console, client)
        finally:
            client.close()
    return 0 if chapter.passed else 1


if __name__ == "__main__":
    sys.exit(main())
