"""WorkerService: judge workers register, heartbeat, pull jobs and submit results.

Every method needs a worker key (role worker; no other role may call these, and a worker key
may call nothing else). A worker id is bound to the key that registered it, so a result sent
under another key, or for a worker that was never registered or has expired, is refused.
"""

from __future__ import annotations

import asyncio
import functools
import json
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from relgate._proto.relgate.v1 import worker_pb2
from relgate.access import Role
from relgate.app.jobs import Dispatcher
from relgate.errors import InvalidInputError
from relgate.judge.jobs import JobResult
from relgate.service.rpc import Call, Rpc
from relgate.wire.worker import job_message

T = TypeVar("T")

# A long poll holds a thread of the default executor; cap it so a stuck worker cannot pin
# threads for long, and the worker's own heartbeat keeps it alive between polls.
MAX_WAIT_MS = 5_000
MAX_JOBS_PER_PULL = 64
# Long polls wait on their own threads: on the default executor (a handful of threads on a
# small machine) a few idle workers would starve the store queries and key lookups behind them.
MAX_CONCURRENT_POLLS = 256


class WorkerServicer:
    """relgate.v1.WorkerService over a `Dispatcher`."""

    descriptor = worker_pb2.DESCRIPTOR.services_by_name["WorkerService"]

    def __init__(self, dispatcher: Dispatcher) -> None:
        self.dispatcher = dispatcher
        self._polls = ThreadPoolExecutor(MAX_CONCURRENT_POLLS, thread_name_prefix="relgate-poll")

    async def _off_loop(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> T:
        """``fn`` on a poll thread: the dispatcher's queue may be the store (blocking I/O)."""
        return await asyncio.get_running_loop().run_in_executor(
            self._polls, functools.partial(fn, *args, **kwargs)
        )

    def rpcs(self) -> dict[str, Rpc]:
        """Method name -> role and implementation."""
        return {
            "RegisterWorker": Rpc(Role.WORKER, unary=self.register),
            "Heartbeat": Rpc(Role.WORKER, unary=self.heartbeat),
            "PullJobs": Rpc(Role.WORKER, unary=self.pull),
            "SubmitResult": Rpc(Role.WORKER, unary=self.submit),
        }

    async def register(
        self, request: worker_pb2.RegisterWorkerRequest, call: Call
    ) -> worker_pb2.RegisterWorkerResponse:
        """Add a worker to the registry."""
        try:
            description: Any = json.loads(request.judge_description_json or "{}")
        except ValueError as exc:
            raise InvalidInputError(f"judge_description_json is not JSON: {exc}") from None
        if not isinstance(description, dict):
            raise InvalidInputError("judge_description_json must be a JSON object")
        worker = await self._off_loop(
            self.dispatcher.register,
            key_sha256=call.principal.key_sha256,
            tenant=call.principal.tenant,
            name=request.name[:128],
            backends=list(request.backends),
            model=request.model,
            judge_sha256=request.judge_sha256,
            description=description,
            capacity=request.capacity or 1,
        )
        return worker_pb2.RegisterWorkerResponse(
            worker_id=worker.worker_id,
            heartbeat_interval_s=self.dispatcher.heartbeat_interval_s,
            lease_s=self.dispatcher.lease_s,
        )

    async def heartbeat(
        self, request: worker_pb2.HeartbeatRequest, call: Call
    ) -> worker_pb2.HeartbeatResponse:
        """Extend the worker's life and its jobs' leases."""
        await self._off_loop(
            self.dispatcher.heartbeat,
            request.worker_id,
            call.principal.key_sha256,
            list(request.job_ids),
        )
        return worker_pb2.HeartbeatResponse()

    async def pull(
        self, request: worker_pb2.PullJobsRequest, call: Call
    ) -> worker_pb2.PullJobsResponse:
        """Lease jobs to the worker (long poll, off the event loop)."""
        wait_s = min(request.wait_ms, MAX_WAIT_MS) / 1000.0
        taken = await asyncio.get_running_loop().run_in_executor(
            self._polls,
            self.dispatcher.pull,
            request.worker_id,
            call.principal.key_sha256,
            min(request.max_jobs or 1, MAX_JOBS_PER_PULL),
            wait_s,
        )
        return worker_pb2.PullJobsResponse(jobs=[job_message(j, s) for j, s in taken])

    async def submit(
        self, request: worker_pb2.SubmitResultRequest, call: Call
    ) -> worker_pb2.SubmitResultResponse:
        """Record a result (idempotent by job id)."""
        accepted = await self._off_loop(
            self.dispatcher.submit_result,
            call.principal.key_sha256,
            JobResult(
                job_id=request.job_id,
                worker_id=request.worker_id,
                scores=tuple(request.scores),
                answers=tuple(request.answers),
                error=request.error,
                seconds=request.seconds,
                tokens=request.tokens,
            ),
        )
        return worker_pb2.SubmitResultResponse(accepted=accepted)
