"""SIGKILL ``relgate serve`` in the middle of a gate run and start it again on the same store
and data directory: the leader resumes the run from the rows already scored and it completes
with the numbers of an uninterrupted run of the same inputs (another server, a fresh data
directory); the rows scored before the kill are not judged again.

The judge is the CPU embedding judge (MiniLM, shipped), slow enough (seconds per chunk of 256
pairs) to be killed mid-calibration. The store is PostgreSQL when ``RELGATE_TEST_POSTGRES_URL``
is set, else SQLite."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from relgate._proto.relgate.v1 import gate_pb2
from relgate.client import RelgateClient, answer_source
from relgate.data import demo_answers_path, demo_calibration_answers_path, demo_suite_path
from relgate.judge.cache import ScoreCache
from relgate.suite import load_suite
from scale_helpers import POSTGRES_URL, fresh_postgres

from rollout_helpers import ServeProc, start_serve  # isort: skip (on the path once scale_helpers is imported)

pytest.importorskip("torch")
pytest.importorskip("transformers")

# About 560 rows: a few chunks of the embedding judge, so a kill lands between two of them.
SLICES = ["Economics", "Misinformation", "Confusion: Other", "Statistics", "Mandela Effect"]


@pytest.fixture
def suites(tmp_path: Path) -> tuple[Path, str]:
    root = tmp_path / "suites"
    root.mkdir()
    suite = load_suite(demo_suite_path()).select_slices(SLICES)
    suite.write(root / "mini.csv")
    (root / "mini.good_answers.jsonl").write_bytes(demo_calibration_answers_path().read_bytes())
    return root, suite.sha256


@pytest.fixture
def gate_store_url() -> Iterator[str | None]:
    if POSTGRES_URL is None:
        yield None
    else:
        with fresh_postgres() as url:
            yield url


def _manifest(suite_sha: str) -> str:
    import json

    from relgate.demo.gate import demo_manifest

    doc = demo_manifest("restart", suite_sha, None)
    doc["dataset"] = {"ref": "mini.csv", "sha256": suite_sha}
    return json.dumps(doc)


def _client(proc: ServeProc, data: Path) -> RelgateClient:
    key = (data / "admin.key").read_text().strip()
    return RelgateClient(proc.address, api_key=key, timeout=120)


def _numbers(result: gate_pb2.GateResult) -> list[tuple[object, ...]]:
    return [
        (
            s.slice,
            s.verdict,
            s.rows,
            s.items,
            s.rho,
            s.rho_ci.low,
            s.rho_ci.high,
            s.ceiling,
            s.ceiling_ci.low,
            s.q,
            s.q_ci.low,
            s.q_ci.high,
        )
        for s in result.slices
    ]


def _same(a: list[tuple[object, ...]], b: list[tuple[object, ...]]) -> None:
    """Equal slices, verdicts and counts; equal floats up to 1e-6 (the embedding judge's scores
    move by ~1e-7 with the batch a pair is embedded in, and a resumed run batches the rest
    differently)."""
    assert len(a) == len(b)
    for x, y in zip(a, b, strict=True):
        assert x[:4] == y[:4]
        assert x[4:] == pytest.approx(y[4:], abs=1e-6, nan_ok=True)


@pytest.mark.slow
def test_a_gate_run_survives_a_control_plane_restart(
    tmp_path: Path, suites: tuple[Path, str], gate_store_url: str | None
) -> None:
    suites_dir, suite_sha = suites
    answers = answer_source(answers=str(demo_answers_path("v1")))
    args = ["--suites-dir", str(suites_dir), "--gate-run-stale", "2", "--log-level", "INFO"]
    data, ref_data = tmp_path / "data", tmp_path / "reference"
    procs: list[ServeProc] = []
    reference: dict[str, gate_pb2.GateResult] = {}
    try:
        # The uninterrupted run, on its own server and data directory, alongside.
        ref = start_serve(ref_data, *args)
        procs.append(ref)
        with _client(ref, ref_data) as c:
            ref_sha = c.register_release(_manifest(suite_sha)).release.sha256

        def uninterrupted() -> None:
            with _client(ref, ref_data) as c:
                reference["result"] = c.run_gate(ref_sha, answers=answers)

        ref_thread = threading.Thread(target=uninterrupted, daemon=True)
        ref_thread.start()

        first = start_serve(data, *args, *(["--store", gate_store_url] if gate_store_url else []))
        procs.append(first)
        runs: list[gate_pb2.GateRun] = []
        with _client(first, data) as c:
            sha = c.register_release(_manifest(suite_sha)).release.sha256
            assert sha == ref_sha

            def gate() -> None:
                # The stream breaks with the kill: the run outlives it.
                with contextlib.suppress(Exception):
                    c.run_gate(sha, answers=answers, on_run=runs.append)

            stream = threading.Thread(target=gate, daemon=True)
            stream.start()
            deadline = time.monotonic() + 300
            while not runs:
                assert time.monotonic() < deadline, "RunGate named no run"
                time.sleep(0.05)
            run_id = runs[0].run_id
            # Kill once the calibration has some rows scored (stored chunk by chunk), not all.
            while True:
                run = c.get_gate_run(run_id)
                if run.stage == "calibration" and 0 < run.done < run.total:
                    break
                assert run.state == "running", f"finished before the kill: {run}"
                assert time.monotonic() < deadline, f"no progress: {run}"
                time.sleep(0.05)
            first.kill()
        scores = data / "gates" / "scores.db"
        cache = ScoreCache(scores)
        scored_before = len(cache)
        cache.close()
        assert scored_before >= 256

        restarted = time.monotonic()
        second = start_serve(data, *args, *(["--store", gate_store_url] if gate_store_url else []))
        procs.append(second)
        with _client(second, data) as c:
            done = c.wait_gate_run(run_id, timeout=600)
            resumed_s = time.monotonic() - restarted
            assert done.state == "done", done.error
            # Asked again while finished: GetGateRun has the result.
            assert done.HasField("result")
        ref_thread.join(timeout=600)
        assert "result" in reference, "the uninterrupted run did not finish"

        _same(_numbers(done.result), _numbers(reference["result"]))
        assert done.result.verdict == reference["result"].verdict
        # Resumed, not restarted: the second attempt judged only what the first had not stored.
        assert done.attempts == 2
        (attempt,) = done.attempt_stats  # the killed attempt left no statistics
        assert attempt.attempt == 2 and attempt.outcome == "done"
        cache = ScoreCache(scores)
        scored_after = len(cache)
        cache.close()
        ref_cache = ScoreCache(ref_data / "gates" / "scores.db")
        all_pairs = len(ref_cache)
        ref_cache.close()
        assert scored_after == all_pairs  # the same pairs as the uninterrupted run, no more
        assert attempt.judged_pairs == all_pairs - scored_before
        assert attempt.cached_rows >= scored_before
        assert "resuming gate run " + run_id in "".join(second.stderr)
        print(  # what the report quotes (pytest -s)
            f"pairs {all_pairs}: {scored_before} stored before the kill, "
            f"{attempt.judged_pairs} judged after the restart; restart to done {resumed_s:.1f} s"
        )
    finally:
        for p in procs:
            p.stop()
