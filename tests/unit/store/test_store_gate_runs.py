"""Gate runs in the store (``relgate.store.gate_runs``, ``relgate.app.gate_runs``): recorded
before any work, done with the result they recorded or failed with their error (nothing stored
lost), one unfinished run per request (a second RunGate attaches), tenant-scoped, and a run
whose server stopped beating claimed once and resumed from what was stored."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from relgate.app.gate_runs import GateRunBook
from relgate.app.gates import GateOptions, GateRequest, GateRunner
from relgate.data import demo_answers_path, demo_suite_path
from relgate.demo.gate import demo_manifest
from relgate.errors import GateError, InvalidInputError, JudgeError, NotFoundError
from relgate.gate.sources import AnswerChoice
from relgate.judge.cache import ScoreCache
from relgate.manifest import ReleaseManifest
from relgate.store import Store
from relgate.suite import load_suite
from relgate.testing.judges import WordOverlapJudge


class Env:
    def __init__(self, store: Store, tmp: Path) -> None:
        suites = tmp / "suites"
        suites.mkdir()
        suite = load_suite(demo_suite_path()).select_slices(["Health", "Law"])
        suite.write(suites / "small.csv")
        self.judge = WordOverlapJudge("6" * 64)
        self.store = store
        self.runner = GateRunner(
            store, GateOptions(suites_dir=suites, judge_factory=lambda c: self.judge)
        )
        doc = demo_manifest("t1", suite.sha256, None)
        doc["dataset"] = {"ref": "small.csv", "sha256": suite.sha256}
        self.sha = store.register_release(ReleaseManifest.parse(doc), actor="alice").release.sha256
        self.n_rows = suite.n_rows

    def request(self, answers: str = "v1", tenant: str = "default") -> GateRequest:
        return GateRequest(
            release_sha=self.sha,
            tenant=tenant,
            actor="alice",
            answers=AnswerChoice("recorded", str(demo_answers_path(answers))),
        )

    def book(self, **kw: Any) -> GateRunBook:
        return GateRunBook(self.store, self.runner, **kw)


@pytest.fixture
def env(store: Store, tmp_path: Path) -> Iterator[Env]:
    made = Env(store, tmp_path)
    yield made
    made.runner.close()


def test_a_run_is_recorded_and_marked_done_with_its_result(env: Env) -> None:
    book = env.book()
    row, started = book.begin(env.request())
    assert started and row.state == "running" and row.run_id.startswith("gr_")
    assert row.request["judge"] == {"backend": "embedding", "options": {}}  # resolved
    record = book.execute(row, env.request())
    done = env.store.gate_runs.get(row.run_id, tenant="default")
    assert done.state == "done" and done.error is None
    assert done.gate_result_sha256 == record.gate_result_sha256
    assert done.receipt_sha256 == record.receipt.receipt_sha256  # type: ignore[union-attr]
    assert done.answers_sha256 == record.fact["candidate_answers_sha256"]
    assert (done.stage, done.done, done.total) == ("receipt", 1, 1)
    (stats,) = done.stats
    assert stats["outcome"] == "done" and stats["judged_pairs"] == env.judge.pairs_scored > 0
    assert book.view(row.run_id, "default").record is not None


def test_the_same_request_attaches_while_unfinished(env: Env) -> None:
    book = env.book()
    first, started = book.begin(env.request())
    again, second = book.begin(env.request())
    assert started and not second and again.run_id == first.run_id
    other, started_other = book.begin(env.request("v2"))  # another request: its own run
    assert started_other and other.run_id != first.run_id
    book.execute(first, env.request())
    after, started_after = book.begin(env.request())  # finished: a new run
    assert started_after and after.run_id != first.run_id


def test_runs_are_tenant_scoped_and_ids_checked(env: Env) -> None:
    row, _ = env.book().begin(env.request())
    with pytest.raises(NotFoundError, match="not found"):
        env.store.gate_runs.get(row.run_id, tenant="other")
    with pytest.raises(InvalidInputError, match="expected gr_"):
        env.store.gate_runs.get("x' OR 1=1", tenant="default")
    assert [r.run_id for r in env.store.gate_runs.of_tenant(tenant="other")] == []


def test_a_failed_run_keeps_its_error_and_loses_nothing_stored(env: Env) -> None:
    env.judge.fail_at = 3  # two chunks of the calibration scored, then the judge is lost
    book = env.book()
    row, _ = book.begin(env.request())
    with pytest.raises(JudgeError, match="lost mid-run"):
        book.execute(row, env.request())
    failed = env.store.gate_runs.get(row.run_id, tenant="default")
    assert failed.state == "failed"
    assert failed.error == "JudgeError: overlap judge lost mid-run"
    assert failed.stats[0]["outcome"] == "failed"
    # The answers and the chunks scored before the error stay.
    assert failed.answers_sha256 is not None
    assert (env.store.data_dir / "gates" / "answers" / f"{failed.answers_sha256}.parquet").is_file()
    cache = ScoreCache(env.store.data_dir / "gates" / "scores.db")
    assert len(cache) == env.judge.pairs_scored == 2 * 256
    cache.close()
    # A new run (the failed one is finished) judges only the rest.
    env.judge.fail_at = None
    before = env.judge.pairs_scored
    retry, started = book.begin(env.request())
    assert started and retry.run_id != row.run_id
    book.execute(retry, env.request())
    stats = env.store.gate_runs.get(retry.run_id, tenant="default").stats[0]
    assert stats["judged_pairs"] == env.judge.pairs_scored - before
    assert stats["cached_rows"] >= 2 * 256


def test_a_stale_run_is_claimed_once_and_resumed_from_what_was_stored(env: Env) -> None:
    dead = env.book(owner="dead-server")
    row, _ = dead.begin(env.request())  # its server died before doing anything
    later = time.time() + 3600
    fresh = env.book(owner="fresh-server")
    assert fresh.resume_stale() == []  # not stale yet
    survivor = env.book(owner="new-leader", wall=lambda: later)
    assert survivor.resume_stale() == [row.run_id]
    assert env.book(owner="another", wall=lambda: later).resume_stale() == []  # claimed once
    deadline = time.monotonic() + 60
    while (now := env.store.gate_runs.get(row.run_id, tenant="default")).state == "running":
        assert time.monotonic() < deadline, "the resumed run did not finish"
        time.sleep(0.05)
    assert now.state == "done" and now.attempts == 2 and now.owner == "new-leader"
    # The dead server, back, owns nothing: its writes are refused and it records nothing.
    with pytest.raises(GateError, match="taken over"):
        dead.execute(row, env.request())
    facts = env.store.facts(env.sha, "gate_result", tenant="default")
    assert len(facts) == 1
    survivor.close()


def test_only_the_leader_resumes(env: Env) -> None:
    row, _ = env.book(owner="dead-server").begin(env.request())
    later = time.time() + 3600

    def watch(book: GateRunBook, leading: bool) -> None:
        async def go() -> None:
            task = asyncio.create_task(book.watch(lambda: leading))
            await asyncio.sleep(0.2)
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

        asyncio.run(go())

    follower = env.book(owner="follower", wall=lambda: later)
    follower.heartbeat_s = 0.01
    watch(follower, leading=False)
    assert env.store.gate_runs.get(row.run_id, tenant="default").owner == "dead-server"
    leader = env.book(owner="leader", wall=lambda: later)
    leader.heartbeat_s = 0.01
    watch(leader, leading=True)
    deadline = time.monotonic() + 60
    while (now := env.store.gate_runs.get(row.run_id, tenant="default")).state == "running":
        assert time.monotonic() < deadline, "the resumed run did not finish"
        time.sleep(0.05)
    assert now.owner == "leader" and now.state == "done"
    leader.close()
