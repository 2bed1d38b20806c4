"""Real progress of a long gate: `relgate gate run --json` streams the judge's rows done / total
chunk by chunk (with rate and ETA), not 0 then done; on the shipped suite with a fresh score
cache and a fast word-overlap judge (a test double: the progress, not the scores, is tested);
and a second RunGate of the same request attaches to the unfinished run."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest
from relgate.app.gates import GateOptions
from relgate.cli import app
from relgate.client import RelgateClient, answer_source
from relgate.service.server import BackgroundServer, RunningServer
from relgate.testing.judges import WordOverlapJudge
from typer.testing import CliRunner

ROOT = Path(__file__).resolve().parents[3]
ANSWERS = ROOT / "examples" / "answers" / "recorded.jsonl"
MANIFEST = ROOT / "examples" / "manifests" / "closed-weight-api.json"


@pytest.fixture
def server(tmp_path: Path) -> Iterator[RunningServer]:
    options = GateOptions(judge_factory=lambda choice: WordOverlapJudge("5" * 64))
    with BackgroundServer(tmp_path / "data", gateway_port=None, gate=options) as running:
        yield running


def _cli(server: RunningServer, *args: str) -> Any:
    assert server.admin_key_path is not None
    key = server.admin_key_path.read_text().strip()
    env = {"RELGATE_SERVER": server.address, "RELGATE_API_KEY": key}
    return CliRunner().invoke(app, list(args), env=env)


def test_gate_run_json_streams_judge_progress_chunk_by_chunk(
    server: RunningServer, tmp_path: Path
) -> None:
    # Answers the calibration has not judged already (it judges the suite's good answers).
    answers = tmp_path / "answers.jsonl"
    rows = [json.loads(line) for line in ANSWERS.read_text().splitlines() if line.strip()]
    answers.write_text("".join(json.dumps({**r, "answer": f"I think {r['answer']}"}) + "\n"
                               for r in rows))  # fmt: skip
    registered = _cli(server, "release", "register", "-f", str(MANIFEST), "--json")
    assert registered.exit_code == 0, registered.output
    sha = json.loads(registered.stdout)["release"]["sha256"]
    result = _cli(server, "gate", "run", sha, "--answers", str(answers), "--json")
    assert result.exit_code in (0, 20, 21, 22), result.output
    assert json.loads(result.stdout)["release_sha256"] == sha  # stdout: the result alone
    events = [json.loads(line) for line in result.stderr.splitlines() if line.startswith("{")]
    # First the run's id (what `gate status RUN_ID --wait` follows), then progress events.
    assert events[0]["event"] == "run" and events[0]["run_id"].startswith("gr_")
    assert not events[0]["attached"]
    assert all(e["event"] == "progress" for e in events[1:])
    for stage in ("calibration", "judge"):
        mine = [e for e in events[1:] if e["stage"] == stage]
        done = [e["done"] for e in mine]
        assert len(mine) >= 5, f"{stage}: {done}"  # chunk by chunk, not 0 then done
        assert done == sorted(done) and len(set(done)) >= 5, done
        assert mine[-1]["done"] == mine[-1]["total"] > 5000
        assert any(e["rate"] and e["eta_s"] is not None for e in mine)  # rate and ETA shown
    status = _cli(server, "gate", "status", events[0]["run_id"], "--json")
    run = json.loads(status.stdout)
    assert status.exit_code == result.exit_code, status.output
    assert run["state"] == "done" and run["attempts"] == 1
    assert run["result"]["gate_result_sha256"] == json.loads(result.stdout)["gate_result_sha256"]
    # This run judged every pair itself (fresh cache): the attempt's statistics say so.
    (attempt,) = run["attempt_stats"]
    assert attempt["outcome"] == "done" and attempt["judged_pairs"] > 5000


class SlowOverlapJudge(WordOverlapJudge):
    """TEST DOUBLE: the overlap judge, 50 ms per call (a run long enough to attach to)."""

    def score(self, answers: Sequence[str], references: Sequence[str]) -> npt.NDArray[np.float64]:
        time.sleep(0.05)
        return super().score(answers, references)


def test_a_second_run_gate_attaches_to_the_unfinished_run(tmp_path: Path) -> None:
    options = GateOptions(judge_factory=lambda choice: SlowOverlapJudge("5" * 64))
    with BackgroundServer(tmp_path / "data", gateway_port=None, gate=options) as server:
        assert server.admin_key_path is not None
        key = server.admin_key_path.read_text().strip()
        with RelgateClient(server.address, api_key=key, timeout=120) as c:
            sha = c.register_release(MANIFEST.read_text()).release.sha256
            source = answer_source(answers=c.upload(ANSWERS, kind="answers").ref)
            first_runs: list[Any] = []
            results: dict[str, Any] = {}

            def first() -> None:
                results["first"] = c.run_gate(sha, answers=source, on_run=first_runs.append)

            thread = threading.Thread(target=first, daemon=True)
            thread.start()
            deadline = time.monotonic() + 60
            while not first_runs:
                assert time.monotonic() < deadline
                time.sleep(0.01)
            second_runs: list[Any] = []
            stages: list[Any] = []
            second = c.run_gate(
                sha, answers=source, on_run=second_runs.append, on_stage=stages.append
            )
            thread.join(timeout=120)
            (run,) = second_runs
            assert run.attached and run.run_id == first_runs[0].run_id
            assert stages, "the attached call streamed no progress"
            assert second.gate_result_sha256 == results["first"].gate_result_sha256
            # One run, one decision.
            receipts = [r.kind for r in server.store.list_receipts(release_sha=sha)]
            assert receipts.count("gate_fail") + receipts.count("gate_pass") == 1
