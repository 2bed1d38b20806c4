"""Judge workers: the dispatcher (control plane), the worker process, and a `Judge` that
scores through workers. See docs/scale-out.md for when to use them."""

from __future__ import annotations

from relgate.worker.dispatch import Dispatcher, JobResult, JobSpec, WorkerInfo
from relgate.worker.remote_judge import RemoteJudge, with_workers

__all__ = ["Dispatcher", "JobResult", "JobSpec", "RemoteJudge", "WorkerInfo", "with_workers"]
