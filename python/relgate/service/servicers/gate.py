"""GateService: RunGate (streams progress, then the result), GetGateResult (the stored
result, or a what-if policy on the stored scores), OverrideGate (releaser, with a rationale).

The work is ``relgate.app.gates.GateRunner``'s; this file decodes requests, keeps the
CPU-bound run off the event loop, and turns results into messages.
"""

from __future__ import annotations

import asyncio
import json
import math
from collections.abc import AsyncIterator
from typing import Any

from relgate._proto.relgate.v1 import common_pb2, gate_pb2
from relgate.access import Role
from relgate.app.gate_runs import GateRunBook, RunView
from relgate.app.gates import GateRecord, GateRequest, GateRunner
from relgate.errors import GateError, InvalidInputError
from relgate.gate.calibration import SliceCalibration
from relgate.service.rpc import Call, Rpc
from relgate.service.servicers._convert import receipt_pb
from relgate.service.servicers.release import check_sha256
from relgate.wire.gate import answer_choice, judge_choice, policy_fields

__all__ = ["GateServicer", "gate_result_pb", "gate_run_pb"]

_SLICE_VERDICTS = {
    "PASS": gate_pb2.SLICE_VERDICT_PASS,
    "FAIL": gate_pb2.SLICE_VERDICT_FAIL,
    "INSUFFICIENT": gate_pb2.SLICE_VERDICT_INSUFFICIENT,
    "JUDGE_UNTRUSTED": gate_pb2.SLICE_VERDICT_JUDGE_UNTRUSTED,
}
_DONE = object()
#: How often a RunGate attached to a run (or a waiting caller) reads the run's progress.
ATTACHED_POLL_S = 0.5


def _num(value: Any) -> float:
    return float(value) if isinstance(value, int | float) else math.nan


def _ci(low: Any, high: Any, confidence: float) -> common_pb2.ConfidenceInterval:
    return common_pb2.ConfidenceInterval(low=_num(low), high=_num(high), confidence=confidence)


def _slice_pb(
    s: dict[str, Any], ceiling: SliceCalibration | None, confidence: float
) -> gate_pb2.SliceResult:
    msg = gate_pb2.SliceResult(
        slice=s["slice"],
        verdict=_SLICE_VERDICTS[s["verdict"]],
        rows=int(s["n_rows"]),
        items=int(s["n_items"]),
        rho=_num(s["rho"]),
        rho_ci=_ci(s["rho_low"], s["rho_high"], confidence),
        ceiling=_num(s["ceiling"]),
        ceiling_ci=_ci(s["ceiling_low"], ceiling.rho_high if ceiling else None, confidence),
        q=_num(s["q"]),
        q_ci=_ci(s["q_low"], s["q_high"], confidence),
        kendall_tau_b=ceiling.kendall_tau_b if ceiling else math.nan,
        reason="; ".join(s["reasons"]),
    )
    if s.get("change") is not None:
        msg.delta_vs_previous = float(s["change"])
        msg.delta_ci.CopyFrom(_ci(s["change_low"], s["change_high"], confidence))
    if s.get("p_adjusted") is not None:
        msg.p_value_holm = float(s["p_adjusted"])
    if s.get("previous_q") is not None:
        msg.previous_q = float(s["previous_q"])
    return msg


def gate_result_pb(record: GateRecord) -> gate_pb2.GateResult:
    """A stored (or what-if) gate result as the API's message."""
    body, fact = record.body, record.fact
    outcome = str(fact.get("outcome", body.get("outcome")))
    if outcome == "pass":
        verdict = (
            gate_pb2.GATE_VERDICT_PASS_WITH_WARNINGS
            if body["unvouched_slices"]
            else gate_pb2.GATE_VERDICT_PASS
        )
    elif outcome == "insufficient":
        verdict = gate_pb2.GATE_VERDICT_INSUFFICIENT
    else:
        verdict = gate_pb2.GATE_VERDICT_FAIL
    confidence = float(body["policy"].get("confidence", 0.95))
    agg = body["aggregate"]
    msg = gate_pb2.GateResult(
        release_sha256=record.release_sha,
        previous_release_sha256=fact.get("previous_release") or "",
        verdict=verdict,
        slices=[
            _slice_pb(s, record.calibration.for_slice(s["slice"]), confidence)
            for s in body["slices"]
        ],
        aggregate_rho=_num(agg.get("mean_rho")),
        aggregate_q=_num(agg.get("mean_q")),
        previous_aggregate_rho=_num(agg.get("previous_mean_rho")),
        previous_aggregate_q=_num(agg.get("previous_mean_q")),
        judge_sha256=body["judge_sha256"],
        suite_sha256=body["suite_sha256"],
        policy_json=json.dumps(body["policy"], sort_keys=True),
        gate_result_sha256=record.gate_result_sha256,
        cold_start=bool(fact.get("cold_start")),
        calibration_sha256=body["calibration_sha256"],
        sample_set_sha256=str(fact.get("sample_set_sha256") or ""),
        report_path=str(record.report_html),
        archived=record.archived and not record.what_if,
        gate_override_sha256=(record.override or {}).get("gate_override_sha256", ""),
        what_if=record.what_if,
    )
    if record.receipt is not None:
        msg.receipt.CopyFrom(receipt_pb(record.receipt))
    return msg


def gate_run_pb(view: RunView) -> gate_pb2.GateRun:
    """A stored gate run as the API's message (with its result once done)."""
    row = view.row
    msg = gate_pb2.GateRun(
        run_id=row.run_id,
        release_sha256=row.release_sha256,
        state=row.state,
        stage=row.stage,
        done=row.done,
        total=row.total,
        error=row.error or "",
        attempts=row.attempts,
        attempt_stats=[
            gate_pb2.GateRunAttempt(
                attempt=int(a["attempt"]),
                owner=str(a["owner"]),
                outcome=str(a["outcome"]),
                cached_rows=int(a["cached_rows"]),
                judged_pairs=int(a["judged_pairs"]),
            )
            for a in row.stats
        ],
        gate_result_sha256=row.gate_result_sha256 or "",
        receipt_sha256=row.receipt_sha256 or "",
        attached=view.attached,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )
    if view.record is not None:
        msg.result.CopyFrom(gate_result_pb(view.record))
    return msg


class GateServicer:
    """relgate.v1.GateService."""

    descriptor = gate_pb2.DESCRIPTOR.services_by_name["GateService"]

    def __init__(self, runner: GateRunner, book: GateRunBook | None = None) -> None:
        self._runner = runner
        self._book = book or GateRunBook(runner.store, runner)

    @property
    def book(self) -> GateRunBook:
        """The gate runs this servicer records (the server resumes them)."""
        return self._book

    def rpcs(self) -> dict[str, Rpc]:
        """Method name -> role and implementation."""
        return {
            "RunGate": Rpc(Role.RELEASER, stream=self.run),
            "GetGateResult": Rpc(Role.VIEWER, unary=self.get),
            "OverrideGate": Rpc(Role.RELEASER, unary=self.override),
            "Upload": Rpc(Role.RELEASER, upload=self.upload),
            "GetGateRun": Rpc(Role.VIEWER, unary=self.get_run),
        }

    async def _release_sha(self, handle: str, tenant: str) -> str:
        """The tenant's release named by a sha256 or a unique prefix (>= 6 hex; the store
        resolves it, an ambiguous prefix is an error)."""
        store = self._runner.store
        return await asyncio.to_thread(lambda: store.get_release(handle, tenant=tenant).sha256)

    async def run(
        self, request: gate_pb2.RunGateRequest, call: Call
    ) -> AsyncIterator[gate_pb2.GateProgress]:
        """Record the run, run the gate off the event loop; stream the run, its stages, then
        the result. Attaches to the unfinished run of the same request if there is one."""
        tenant = await call.tenant(request.tenant)
        gate_request = GateRequest(
            release_sha=await self._release_sha(request.release_sha256, tenant),
            tenant=tenant,
            actor=call.actor,
            answers=answer_choice(request.answers),
            judge=judge_choice(request.judge),
            suite_ref=request.suite_path.strip() or None,
            reuse_scores=request.reuse_scores,
        )
        if gate_request.reuse_scores and gate_request.answers is not None:
            raise InvalidInputError("reuse_scores decides from stored scores; it takes no answers")
        book = self._book
        row, started = await asyncio.to_thread(book.begin, gate_request)
        yield gate_pb2.GateProgress(run=gate_run_pb(RunView(row, attached=not started)))
        if not started:
            async for event in self._follow(row.run_id, tenant):
                yield event
            return
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[Any] = asyncio.Queue()

        def progress(stage: str, done: int, total: int) -> None:
            loop.call_soon_threadsafe(queue.put_nowait, (stage, done, total))

        def work() -> GateRecord:
            try:
                return book.execute(row, gate_request, progress)
            finally:
                loop.call_soon_threadsafe(queue.put_nowait, _DONE)

        task = asyncio.ensure_future(asyncio.to_thread(work))
        while (item := await queue.get()) is not _DONE:
            stage, done, total = item
            yield gate_pb2.GateProgress(
                stage=gate_pb2.GateStage(stage=stage, done=done, total=total)
            )
        record = await task
        yield gate_pb2.GateProgress(result=gate_result_pb(record))

    async def _follow(self, run_id: str, tenant: str) -> AsyncIterator[gate_pb2.GateProgress]:
        """An attached RunGate: the run's progress as the store records it, then its result
        (or its error)."""
        seen: tuple[str, int, int] | None = None
        while True:
            view = await asyncio.to_thread(self._book.view, run_id, tenant)
            row = view.row
            if (row.stage, row.done, row.total) != seen and row.stage != "queued":
                seen = (row.stage, row.done, row.total)
                yield gate_pb2.GateProgress(
                    stage=gate_pb2.GateStage(stage=row.stage, done=row.done, total=row.total)
                )
            if view.record is not None:
                yield gate_pb2.GateProgress(result=gate_result_pb(view.record))
                return
            if row.state == "failed":
                raise GateError(f"gate run {run_id} failed: {row.error}")
            await asyncio.sleep(ATTACHED_POLL_S)

    async def get_run(self, request: gate_pb2.GetGateRunRequest, call: Call) -> gate_pb2.GateRun:
        """A gate run of the caller's tenant, with its result once done."""
        tenant = await call.tenant(request.tenant)
        view = await asyncio.to_thread(self._book.view, request.run_id.strip(), tenant)
        return gate_run_pb(view)

    async def get(self, request: gate_pb2.GetGateResultRequest, call: Call) -> gate_pb2.GateResult:
        """The latest stored result, or a what-if policy applied to its stored scores."""
        tenant = await call.tenant(request.tenant)
        sha = await self._release_sha(request.release_sha256, tenant)
        if request.HasField("what_if_policy"):
            overrides = policy_fields(request.what_if_policy)
            record = await asyncio.to_thread(self._runner.what_if, sha, overrides, tenant)
        else:
            record = await asyncio.to_thread(self._runner.latest, sha, tenant)
        return gate_result_pb(record)

    async def override(
        self, request: gate_pb2.OverrideGateRequest, call: Call
    ) -> gate_pb2.OverrideGateResponse:
        """Open a failed (or cold-start) gate with the caller's written rationale."""
        tenant = await call.tenant(request.tenant)
        sha = await self._release_sha(request.release_sha256, tenant)
        result_sha = (
            check_sha256(request.gate_result_sha256, "gate_result_sha256")
            if request.gate_result_sha256
            else None
        )
        if not request.rationale.strip():
            raise InvalidInputError("rationale is required: an override is a written decision")
        digest, receipt = await asyncio.to_thread(
            lambda: self._runner.override(
                sha,
                rationale=request.rationale,
                actor=call.actor,
                tenant=tenant,
                gate_result_sha=result_sha,
            )
        )
        return gate_pb2.OverrideGateResponse(
            gate_override_sha256=digest, receipt=receipt_pb(receipt)
        )

    async def upload(
        self, chunks: AsyncIterator[gate_pb2.UploadChunk], call: Call
    ) -> gate_pb2.UploadResponse:
        """Store a streamed answers or suite file for the caller's tenant (size-capped)."""
        first = await anext(chunks, None)
        if first is None:
            raise InvalidInputError("upload: no chunk received")
        tenant = await call.tenant(first.tenant)

        async def rest() -> AsyncIterator[bytes]:
            async for chunk in chunks:
                if chunk.kind or chunk.filename or chunk.tenant:
                    raise InvalidInputError("upload: only the first chunk names the file")
                yield chunk.data

        ref, sha, size = await self._runner.uploads.receive(
            tenant, first.kind, first.filename, first.data, rest()
        )
        return gate_pb2.UploadResponse(ref=ref, sha256=sha, size_bytes=size)
