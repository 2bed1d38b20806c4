"""The worker process: register with the control plane, heartbeat, pull jobs, send results.

A worker runs one judge (its ``judge_sha256`` is what the control plane matches jobs on). It
takes two kinds of job: score batches (``judge.score(answers, references)``) and replay batches
(ask the candidate's OpenAI-compatible endpoint for an answer per prompt with
``relgate.answers.from_endpoint``, then score them). A judge that raises is reported as the
job's error (the caller sees a JudgeError); the worker itself keeps serving.

Heartbeats run on their own thread so that a long batch keeps its lease; a worker that dies
stops heartbeating and the control plane hands its jobs to another worker. When the control
plane forgets the worker (it restarted, or the worker was paused past its lease) the worker
registers again.
"""

from __future__ import annotations

import json
import logging
import socket
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from relgate._proto.relgate.v1 import worker_pb2
from relgate.client import RelgateClient
from relgate.errors import AuthError, RelgateError
from relgate.judge.base import Judge
from relgate.judge.jobs import REPLAY, JobSpec
from relgate.wire.worker import job_spec

__all__ = ["WorkerRunner", "run_job"]

log = logging.getLogger("relgate.worker")


def run_job(judge: Judge, spec: JobSpec) -> tuple[list[float], list[str]]:
    """Do one job with ``judge``: (scores, generated answers)."""
    if spec.kind != REPLAY:
        return [float(x) for x in judge.score(spec.answers, spec.references)], []
    from relgate.answers import from_endpoint

    r = spec.replay or {}
    prompts = [str(p) for p in r.get("prompts", ())]
    system = str(r.get("system") or "")
    lead = [{"role": "system", "content": system}] if system else []
    got = from_endpoint(
        {str(i): [*lead, {"role": "user", "content": p}] for i, p in enumerate(prompts)},
        base_url=str(r["endpoint"]),
        model=str(r["model"]),
        timeout_s=float(r.get("timeout_s", 60.0)),
    )
    answers = [got.texts[str(i)] for i in range(len(prompts))]
    paired = [answers[int(i)] for i in r.get("answer_index", ())]
    return [float(x) for x in judge.score(paired, spec.references)], answers


@dataclass
class _Held:
    """Jobs in progress (their ids ride along with each heartbeat)."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    ids: set[str] = field(default_factory=set)

    def snapshot(self) -> list[str]:
        with self.lock:
            return sorted(self.ids)


class WorkerRunner:
    """One worker: ``run(stop)`` serves until ``stop`` is set."""

    def __init__(
        self,
        control: str,
        api_key: str,
        judge: Judge,
        *,
        backends: Sequence[str] = (),
        model: str = "",
        capacity: int = 1,
        name: str | None = None,
        poll_ms: int = 1000,
        tls: bool = False,
    ) -> None:
        self.control = control
        self.judge = judge
        self.backends = list(backends)
        self.model = model
        self.capacity = capacity
        self.name = name or f"{socket.gethostname()}-{threading.get_native_id()}"
        self.poll_ms = poll_ms
        self._client = RelgateClient(control, api_key=api_key, tls=tls)
        self.worker_id = ""
        self.heartbeat_interval_s = 1.0
        self.done = 0
        self._held = _Held()

    def close(self) -> None:
        """Close the channel (``run`` does this itself when it returns)."""
        self._client.close()

    def register(self) -> str:
        """Register (again); returns the worker id."""
        reply = self._client.register_worker(
            worker_pb2.RegisterWorkerRequest(
                name=self.name,
                backends=self.backends,
                model=self.model,
                judge_sha256=self.judge.judge_sha256,
                judge_description_json=json.dumps(dict(self.judge.description), sort_keys=True),
                capacity=self.capacity,
            ),
            timeout=30.0,
        )
        self.worker_id = reply.worker_id
        self.heartbeat_interval_s = max(0.05, reply.heartbeat_interval_s)
        log.info("registered as %s with %s", self.worker_id, self.control)
        return self.worker_id

    def _heartbeats(self, stop: threading.Event) -> None:
        while not stop.wait(self.heartbeat_interval_s):
            try:
                self._client.heartbeat(
                    self.worker_id,
                    self._held.snapshot(),
                    timeout=max(1.0, self.heartbeat_interval_s),
                )
            except AuthError:
                pass  # the main loop re-registers on its next call
            except RelgateError as exc:
                log.warning("heartbeat failed: %s", exc)

    def run(self, stop: threading.Event, *, max_jobs: int | None = None) -> None:
        """Serve jobs until ``stop`` is set (or ``max_jobs`` jobs are done)."""
        self.register()
        beat_stop = threading.Event()
        beats = threading.Thread(target=self._heartbeats, args=(beat_stop,), daemon=True)
        beats.start()
        try:
            while not stop.is_set() and (max_jobs is None or self.done < max_jobs):
                try:
                    self._serve_once()
                except AuthError as exc:
                    log.warning("control plane forgot this worker (%s); registering again", exc)
                    self.register()
                except RelgateError as exc:
                    # Control plane unreachable: back off a little and try again.
                    log.warning("%s", exc)
                    stop.wait(min(5.0, self.poll_ms / 1000.0))
        finally:
            beat_stop.set()
            beats.join(timeout=5.0)
            self.close()

    def _serve_once(self) -> None:
        reply = self._client.pull_jobs(
            self.worker_id,
            max_jobs=self.capacity,
            wait_ms=self.poll_ms,
            timeout=self.poll_ms / 1000.0 + 30.0,
        )
        with self._held.lock:
            self._held.ids.update(j.job_id for j in reply.jobs)
        for job in reply.jobs:
            start = time.perf_counter()
            request = worker_pb2.SubmitResultRequest(worker_id=self.worker_id, job_id=job.job_id)
            tokens_before = getattr(self.judge, "tokens_processed", None)
            try:
                scores, answers = run_job(self.judge, job_spec(job))
                request.scores.extend(scores)
                request.answers.extend(answers)
            except Exception as exc:  # the judge's failure is the job's result, not ours
                log.warning("job %s failed: %s", job.job_id, exc)
                request.error = f"{type(exc).__name__}: {exc}"
            request.seconds = time.perf_counter() - start
            tokens_after = getattr(self.judge, "tokens_processed", None)
            if tokens_before is not None and tokens_after is not None:
                request.tokens = max(0, int(tokens_after) - int(tokens_before))
            self._client.submit_result(request, timeout=60.0)
            with self._held.lock:
                self._held.ids.discard(job.job_id)
            self.done += 1
