"""Jobs on the wire: `relgate.v1.Job` <-> `JobSpec` (shared by the servicer and the worker)."""

from __future__ import annotations

from relgate._proto.relgate.v1 import worker_pb2
from relgate.judge.jobs import REPLAY, SCORE, JobSpec

__all__ = ["job_message", "job_spec"]


def job_message(job_id: str, spec: JobSpec) -> worker_pb2.Job:
    """The wire form of a job."""
    job = worker_pb2.Job(
        job_id=job_id,
        kind=worker_pb2.JOB_KIND_REPLAY if spec.kind == REPLAY else worker_pb2.JOB_KIND_SCORE,
        judge_sha256=spec.judge_sha256,
        answers=list(spec.answers),
        references=list(spec.references),
    )
    if spec.replay is not None:
        r = spec.replay
        job.replay.CopyFrom(
            worker_pb2.ReplayBatch(
                endpoint=str(r["endpoint"]),
                model=str(r["model"]),
                system=str(r.get("system", "")),
                prompts=list(r["prompts"]),
                answer_index=list(r["answer_index"]),
                timeout_s=float(r.get("timeout_s", 60.0)),
            )
        )
    return job


def job_spec(job: worker_pb2.Job) -> JobSpec:
    """A job as the worker sees it (the inverse of `job_message`)."""
    replay = None
    if job.kind == worker_pb2.JOB_KIND_REPLAY:
        r = job.replay
        replay = {
            "endpoint": r.endpoint,
            "model": r.model,
            "system": r.system,
            "prompts": list(r.prompts),
            "answer_index": list(r.answer_index),
            "timeout_s": r.timeout_s or 60.0,
        }
    kind = REPLAY if replay is not None else SCORE
    return JobSpec(kind, job.judge_sha256, tuple(job.answers), tuple(job.references), replay)
