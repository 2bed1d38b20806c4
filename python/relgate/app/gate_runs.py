"""Gate runs that outlive the process that started them.

Every RunGate is a run in the store (``relgate.store.gate_runs``) before any work: its decoded
request (answers source, the judge resolved against the server's default, suite ref, reuse
flag, actor), then its progress, then ``done`` with the gate result and receipt it recorded, or
``failed`` with the error (the inputs, stored answers and scores stay). ``GateRunBook`` does
that bookkeeping around ``GateRunner.run``:

- **One run per request.** A RunGate for the same tenant, release and request while a run is
  unfinished *attaches* to that run (its stream follows the run's progress in the store and
  ends with its result) instead of starting a second one.
- **Owner and heartbeat.** The server working on a run beats for it every ``heartbeat_s``
  (and at every progress write). A run without a beat for ``stale_s`` lost its server.
- **Resume.** The leader control plane (``relgate.app.leader``) claims such runs and runs them
  again in the background: the answers come from the stored answers parquet (recorded in the
  run once collected, so a model endpoint is never asked twice) and the judge's scores from
  the score cache (``DATA_DIR/gates/scores.db``, written chunk by chunk), so only the rows not
  scored before the crash reach the judge. Each attempt's cache statistics are kept with the
  run (``stats``: rows found scored, pairs judged).
- **Ownership is checked at every write**, and the recording of the decision follows a write
  that finds the run still owned: a server that lost its run (a stall past ``stale_s``) stops
  before recording a second decision.

A graceful stop leaves a run in flight ``running`` (not failed): the next leader resumes it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from relgate.app.gates import GateRecord, GateRequest, GateRunner, Progress
from relgate.errors import GateError
from relgate.gate.sources import AnswerChoice, JudgeChoice
from relgate.store import Store
from relgate.store.gate_runs import GateRunRow

__all__ = ["GateRunBook", "RunView", "decode_request", "encode_request"]

log = logging.getLogger("relgate.gate_runs")

#: Progress writes to the store at most this often (stage changes always write).
PROGRESS_EVERY_S = 0.5


def encode_request(request: GateRequest, default_judge: JudgeChoice) -> dict[str, Any]:
    """The stored form of a request (the judge resolved: a resume on a server with another
    default judge still judges with this one). The actor is stored beside it, not in it: two
    callers asking the same thing share one run."""
    judge = request.judge or default_judge
    answers = request.answers
    return {
        "answers": None if answers is None else {"kind": answers.kind, "value": answers.value},
        "judge": {"backend": judge.backend, "options": dict(judge.options)},
        "suite_ref": request.suite_ref,
        "reuse_scores": request.reuse_scores,
    }


def decode_request(row: GateRunRow) -> GateRequest:
    """The request a stored run was started with."""
    doc = row.request
    answers = doc.get("answers")
    return GateRequest(
        release_sha=row.release_sha256,
        tenant=row.tenant,
        actor=row.actor,
        answers=None if answers is None else AnswerChoice(answers["kind"], answers["value"]),
        judge=JudgeChoice(doc["judge"]["backend"], doc["judge"]["options"]),
        suite_ref=doc.get("suite_ref"),
        reuse_scores=bool(doc.get("reuse_scores")),
    )


@dataclass(frozen=True)
class RunView:
    """A run as a caller sees it: the row, and its gate result once done."""

    row: GateRunRow
    record: GateRecord | None = None
    attached: bool = False


class GateRunBook:
    """The store's gate runs, worked on by this server. Thread-safe."""

    def __init__(
        self,
        store: Store,
        runner: GateRunner,
        *,
        owner: str | None = None,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self._store = store
        self._runner = runner
        self.owner = owner or f"{socket.gethostname()[:64]}:{os.getpid()}:{uuid.uuid4().hex[:12]}"
        self.heartbeat_s = runner.options.run_heartbeat_s
        self.stale_s = runner.options.run_stale_s
        self._wall = wall
        self._lock = threading.Lock()
        self._active = 0
        self._closing = threading.Event()
        self._beat: threading.Thread | None = None

    # ---- start, attach, run --------------------------------------------------------------

    def begin(self, request: GateRequest) -> tuple[GateRunRow, bool]:
        """Record the run (``True``) or find the unfinished run of the same request
        (``False``: attach to it)."""
        return self._store.gate_runs.start(
            tenant=request.tenant,
            release_sha256=request.release_sha,
            request=encode_request(request, self._runner.options.judge),
            actor=request.actor,
            owner=self.owner,
            wall=self._wall(),
        )

    def execute(
        self, row: GateRunRow, request: GateRequest, progress: Progress | None = None
    ) -> GateRecord:
        """Run ``row`` (owned by this server) to its end; marks it done or failed."""
        runs = self._store.gate_runs
        last: list[Any] = ["", 0.0]  # stage, when written

        def report(stage: str, done: int, total: int) -> None:
            if progress is not None:
                progress(stage, done, total)
            now = time.monotonic()
            if stage == last[0] and done < total and now - last[1] < PROGRESS_EVERY_S:
                return
            last[:] = [stage, now]
            kept = runs.progress(
                row.run_id, owner=self.owner, stage=stage, done=done, total=total, wall=self._wall()
            )
            if not kept:
                raise GateError(
                    f"gate run {row.run_id} was taken over by another server; stopping here"
                )

        def answers_stored(sha: str) -> None:
            runs.answers_stored(row.run_id, owner=self.owner, answers_sha256=sha)

        hits0, misses0 = self._runner.cache_counts()
        self._enter()
        try:
            record = self._runner.run(
                request, report, stored_answers=row.answers_sha256, on_answers=answers_stored
            )
        except Exception as exc:
            if self._closing.is_set():
                # A graceful stop: the run stays running; the next leader resumes it.
                raise
            stats = self._stats(row, "failed", hits0, misses0)
            runs.fail(row.run_id, owner=self.owner, error=f"{type(exc).__name__}: {exc}",
                      stats=stats)  # fmt: skip
            raise
        finally:
            self._leave()
        runs.finish(
            row.run_id,
            owner=self.owner,
            gate_result_sha256=record.gate_result_sha256,
            receipt_sha256=record.receipt.receipt_sha256 if record.receipt else None,
            stats=self._stats(row, "done", hits0, misses0),
        )
        return record

    def _stats(self, row: GateRunRow, outcome: str, hits0: int, misses0: int) -> list[Any]:
        hits, misses = self._runner.cache_counts()
        return [
            *row.stats,
            {
                "attempt": row.attempts,
                "owner": self.owner,
                "outcome": outcome,
                "cached_rows": hits - hits0,
                "judged_pairs": misses - misses0,
            },
        ]

    def view(self, run_id: str, tenant: str) -> RunView:
        """The tenant's run and, once done, its gate result."""
        row = self._store.gate_runs.get(run_id, tenant=tenant)
        record = None
        if row.state == "done" and row.gate_result_sha256:
            record = self._runner.latest(row.release_sha256, tenant, row.gate_result_sha256)
        return RunView(row, record)

    # ---- heartbeat -----------------------------------------------------------------------

    def _enter(self) -> None:
        with self._lock:
            self._active += 1
            if self._beat is None:
                self._beat = threading.Thread(
                    target=self._beating, name="relgate-gate-run-heartbeat", daemon=True
                )
                self._beat.start()

    def _leave(self) -> None:
        with self._lock:
            self._active -= 1

    def _beating(self) -> None:
        while not self._closing.wait(self.heartbeat_s):
            with self._lock:
                active = self._active
            if active:
                try:
                    self._store.gate_runs.heartbeat(owner=self.owner, wall=self._wall())
                except Exception:
                    log.exception("gate run heartbeat failed")

    # ---- resume --------------------------------------------------------------------------

    def resume_stale(self) -> list[str]:
        """Claim the runs whose server stopped beating and run them again in the background
        (one after another); their ids."""
        claimed = self._store.gate_runs.claim_stale(
            owner=self.owner, wall=self._wall(), stale_s=self.stale_s
        )
        if not claimed:
            return []
        for row in claimed:
            log.info(
                "resuming gate run %s of release %s (attempt %d, %s)",
                row.run_id, row.release_sha256[:12], row.attempts,
                "answers stored" if row.answers_sha256 else "answers not stored yet",
            )  # fmt: skip
        self._enter()  # beats for the claimed runs until their turn comes
        threading.Thread(
            target=self._resume, args=(claimed,), name="relgate-gate-resume", daemon=True
        ).start()
        return [r.run_id for r in claimed]

    def _resume(self, rows: list[GateRunRow]) -> None:
        try:
            for row in rows:
                if self._closing.is_set():
                    return
                try:
                    self.execute(row, decode_request(row))
                except Exception as exc:
                    log.warning("resumed gate run %s failed: %s", row.run_id, exc)
        finally:
            self._leave()

    async def watch(self, leading: Callable[[], bool]) -> None:
        """While the server runs: every heartbeat, if this server leads, resume stale runs."""
        while not self._closing.is_set():
            if leading():
                try:
                    await asyncio.to_thread(self.resume_stale)
                except Exception:
                    log.exception("resuming gate runs failed")
            await asyncio.sleep(self.heartbeat_s)

    def close(self) -> None:
        """Stop beating and resuming (runs in flight stay ``running``: resumed elsewhere)."""
        self._closing.set()
        beat = self._beat
        if beat is not None:
            with contextlib.suppress(RuntimeError):
                beat.join(timeout=5)
