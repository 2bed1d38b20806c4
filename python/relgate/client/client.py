"""``RelgateClient``: every verb of the API, on the generated stubs (see the package doc)."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from types import TracebackType
from typing import Any, Literal, TypeVar

import grpc

from relgate import errors
from relgate._proto.relgate.v1 import (
    attestation_pb2,
    attestation_pb2_grpc,
    common_pb2,
    gate_pb2,
    gate_pb2_grpc,
    key_pb2,
    key_pb2_grpc,
    receipt_pb2,
    receipt_pb2_grpc,
    release_pb2,
    release_pb2_grpc,
    rollout_pb2,
    rollout_pb2_grpc,
    worker_pb2,
    worker_pb2_grpc,
)
from relgate.access import Role
from relgate.errors import GRPC_ERROR_METADATA_KEY, RelgateError
from relgate.gate.sources import AnswerChoice
from relgate.wire.gate import answer_message, judge_message, policy_message

__all__ = [
    "DEFAULT_SERVER",
    "RelgateClient",
    "answer_source",
    "error_from_status",
    "judge_message",
    "rpc_error",
]

DEFAULT_SERVER = "127.0.0.1:50051"
# Replies (release lists, receipt lists) may be larger than requests; bundles are streamed.
MAX_MESSAGE_BYTES = 64 * 1024 * 1024

T = TypeVar("T")

_FORMATS = {
    None: release_pb2.MANIFEST_FORMAT_UNSPECIFIED,
    "json": release_pb2.MANIFEST_FORMAT_JSON,
    "yaml": release_pb2.MANIFEST_FORMAT_YAML,
}
# When the server sent no class name (a proxy, another implementation): the status decides.
_BY_CODE: dict[grpc.StatusCode, type[errors.RelgateError]] = {
    grpc.StatusCode.INVALID_ARGUMENT: errors.InvalidInputError,
    grpc.StatusCode.OUT_OF_RANGE: errors.InvalidInputError,
    grpc.StatusCode.RESOURCE_EXHAUSTED: errors.InvalidInputError,
    grpc.StatusCode.FAILED_PRECONDITION: errors.InvalidTransitionError,
    grpc.StatusCode.ALREADY_EXISTS: errors.ManifestConflictError,
    grpc.StatusCode.DATA_LOSS: errors.IntegrityError,
    grpc.StatusCode.NOT_FOUND: errors.NotFoundError,
    grpc.StatusCode.UNAUTHENTICATED: errors.AuthError,
    grpc.StatusCode.PERMISSION_DENIED: errors.AuthError,
    grpc.StatusCode.UNAVAILABLE: errors.JudgeUnavailableError,
}


def error_from_status(
    code: grpc.StatusCode, details: str, class_name: str | None
) -> errors.RelgateError:
    """Rebuild the relgate error a server raised: its class when the server named one of the
    hierarchy (never another name: a hostile server must not make the client build arbitrary
    objects), else by status code. UNAVAILABLE without a class name means the server could not
    be reached, which is not a judge problem: a plain ``RelgateError`` naming the code."""
    if class_name:
        cls = getattr(errors, class_name, None)
        if isinstance(cls, type) and issubclass(cls, errors.RelgateError):
            return cls(details)
    if code is grpc.StatusCode.UNAVAILABLE:
        return errors.RelgateError(f"server unavailable: {details}")
    return _BY_CODE.get(code, errors.RelgateError)(details)


def rpc_error(exc: grpc.RpcError, server: str) -> RelgateError:
    """The relgate error for a failed call."""
    if not isinstance(exc, grpc.Call):
        return RelgateError(f"call to {server} failed: {exc}")
    code = exc.code()
    details = exc.details() or code.name
    class_name = None
    for key, value in exc.trailing_metadata() or ():
        if key == GRPC_ERROR_METADATA_KEY:
            class_name = value if isinstance(value, str) else value.decode("utf-8", "replace")
    if code is grpc.StatusCode.UNAVAILABLE and class_name is None:
        return RelgateError(f"cannot reach the relgate server at {server}: {details}")
    if code is grpc.StatusCode.RESOURCE_EXHAUSTED:
        return errors.InvalidInputError(f"request too large: {details}")
    return error_from_status(code, details, class_name)


#: Upload pieces: well under gRPC's default 4 MiB message limit.
UPLOAD_CHUNK_BYTES = 1 << 20


def answer_source(
    *,
    answers: str | Path | None = None,
    endpoint: bool = False,
    vllm_model: str | None = None,
    transformers_model: str | None = None,
) -> gate_pb2.AnswerSource:
    """Exactly one answer source, from command-line style arguments (a recorded-outputs path
    is one the server can read)."""
    given = [answers is not None, endpoint, vllm_model is not None, transformers_model is not None]
    if sum(given) > 1:
        raise errors.InvalidInputError(
            "name one answer source: --answers, --endpoint, --vllm-model or --transformers-model"
        )
    choice = None
    if answers is not None:
        choice = AnswerChoice("recorded", str(answers))
    elif endpoint:
        choice = AnswerChoice("endpoint")
    elif vllm_model is not None:
        choice = AnswerChoice("vllm", vllm_model)
    elif transformers_model is not None:
        choice = AnswerChoice("transformers", transformers_model)
    return answer_message(choice)


def _stub(factory: Callable[[grpc.Channel], Any], channel: grpc.Channel) -> Any:
    """A generated stub (grpcio-tools writes them untyped; the messages are typed)."""
    return factory(channel)


class RelgateClient:
    """A blocking client of every relgate service; use as a context manager or ``close``."""

    def __init__(
        self,
        server: str | None = None,
        *,
        api_key: str | None = None,
        tls: bool = False,
        tls_ca: Path | str | None = None,
        timeout: float = 60.0,
    ) -> None:
        self.server = server or os.environ.get("RELGATE_SERVER") or DEFAULT_SERVER
        key = api_key or os.environ.get("RELGATE_API_KEY")
        self._metadata: tuple[tuple[str, str], ...] = (
            (("authorization", f"Bearer {key.strip()}"),) if key else ()
        )
        self.timeout = timeout
        options = [
            ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
            ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
        ]
        if tls or tls_ca is not None:
            ca = Path(tls_ca).read_bytes() if tls_ca is not None else None
            credentials = grpc.ssl_channel_credentials(root_certificates=ca)
            self._channel = grpc.secure_channel(self.server, credentials, options=options)
        else:
            self._channel = grpc.insecure_channel(self.server, options=options)
        self.releases = _stub(release_pb2_grpc.ReleaseServiceStub, self._channel)
        self.receipts = _stub(receipt_pb2_grpc.ReceiptServiceStub, self._channel)
        self.keys = _stub(key_pb2_grpc.KeyServiceStub, self._channel)
        self.attestation = _stub(attestation_pb2_grpc.AttestationServiceStub, self._channel)
        self.gates = _stub(gate_pb2_grpc.GateServiceStub, self._channel)
        self.rollouts = _stub(rollout_pb2_grpc.RolloutServiceStub, self._channel)
        self.workers = _stub(worker_pb2_grpc.WorkerServiceStub, self._channel)

    def close(self) -> None:
        """Close the channel."""
        self._channel.close()

    def __enter__(self) -> RelgateClient:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # ---- plumbing ----------------------------------------------------------------------------

    def _unary(self, method: Any, request: Any, timeout: float | None = None) -> Any:
        try:
            return method(request, metadata=self._metadata, timeout=timeout or self.timeout)
        except grpc.RpcError as exc:
            raise rpc_error(exc, self.server) from None

    def _stream(self, method: Any, request: Any, timeout: float | None) -> Iterator[Any]:
        try:
            yield from method(request, metadata=self._metadata, timeout=timeout)
        except grpc.RpcError as exc:
            raise rpc_error(exc, self.server) from None

    def call_raw(self, method: str, payload: bytes) -> bytes:
        """A unary call with a raw request body (tests send malformed payloads with it)."""
        stub = self._channel.unary_unary(
            method, request_serializer=None, response_deserializer=None
        )
        reply: bytes = self._unary(stub, payload)
        return reply

    # ---- releases ----------------------------------------------------------------------------

    def register_release(
        self,
        manifest: bytes | str,
        *,
        fmt: Literal["json", "yaml"] | None = None,
        expected_sha256: str | None = None,
        tenant: str = "",
    ) -> release_pb2.RegisterReleaseResponse:
        """Register a manifest document (JSON or YAML text)."""
        data = manifest.encode("utf-8") if isinstance(manifest, str) else manifest
        request = release_pb2.RegisterReleaseRequest(
            manifest=data,
            format=_FORMATS[fmt],
            expected_sha256=expected_sha256 or "",
            tenant=tenant,
        )
        reply: release_pb2.RegisterReleaseResponse = self._unary(
            self.releases.RegisterRelease, request
        )
        return reply

    def get_release(self, handle: str, *, tenant: str = "") -> release_pb2.Release:
        """A release by sha256, unique prefix or release id (in ``tenant``: operators only)."""
        reply: release_pb2.Release = self._unary(
            self.releases.GetRelease, release_pb2.GetReleaseRequest(sha256=handle, tenant=tenant)
        )
        return reply

    def list_releases(self, *, tenant: str = "", limit: int = 0) -> list[release_pb2.Release]:
        """Releases of a tenant."""
        request = release_pb2.ListReleasesRequest(tenant=tenant, limit=limit)
        return list(self._unary(self.releases.ListReleases, request).releases)

    # ---- receipts ----------------------------------------------------------------------------

    def list_receipts(
        self, *, tenant: str = "", release_sha256: str = "", limit: int = 0
    ) -> list[common_pb2.Receipt]:
        """Receipts in chain order."""
        request = receipt_pb2.ListReceiptsRequest(
            tenant=tenant, release_sha256=release_sha256, limit=limit
        )
        return list(self._unary(self.receipts.ListReceipts, request).receipts)

    def tree_head_key(self) -> receipt_pb2.GetTreeHeadKeyResponse:
        """The server's tree-head public key and its fingerprint (to pin, after comparing the
        fingerprint out of band)."""
        reply: receipt_pb2.GetTreeHeadKeyResponse = self._unary(
            self.receipts.GetTreeHeadKey, receipt_pb2.GetTreeHeadKeyRequest()
        )
        return reply

    def export_receipts(self, *, tenant: str = "") -> bytes:
        """The tenant's self-contained receipt bundle (JSON bytes)."""
        request = receipt_pb2.ExportReceiptsRequest(tenant=tenant)
        chunks = self._stream(self.receipts.ExportReceipts, request, self.timeout)
        return b"".join(chunk.data for chunk in chunks)

    def verify_receipts(self, *, tenant: str = "") -> receipt_pb2.VerifyReceiptsResponse:
        """Have the server verify its own chain, tree and signatures."""
        reply: receipt_pb2.VerifyReceiptsResponse = self._unary(
            self.receipts.VerifyReceipts, receipt_pb2.VerifyReceiptsRequest(tenant=tenant)
        )
        return reply

    # ---- keys and attestation ----------------------------------------------------------------

    def create_key(
        self, role: str, *, name: str = "", tenant: str = ""
    ) -> key_pb2.CreateKeyResponse:
        """Create an API key (admin only); the plaintext is in the response."""
        request = key_pb2.CreateKeyRequest(
            role=f"ROLE_{Role.parse(role).name}", name=name, tenant=tenant
        )
        reply: key_pb2.CreateKeyResponse = self._unary(self.keys.CreateKey, request)
        return reply

    def list_keys(self, *, tenant: str = "") -> list[key_pb2.KeyInfo]:
        """The tenant's keys (hashes only), revoked ones marked (admin only)."""
        reply: key_pb2.ListKeysResponse = self._unary(
            self.keys.ListKeys, key_pb2.ListKeysRequest(tenant=tenant)
        )
        return list(reply.keys)

    def revoke_key(
        self, key_sha256: str, *, reason: str, tenant: str = ""
    ) -> key_pb2.RevokeKeyResponse:
        """Revoke a key by its sha256 or a unique prefix of it (admin only)."""
        request = key_pb2.RevokeKeyRequest(key_sha256=key_sha256, reason=reason, tenant=tenant)
        reply: key_pb2.RevokeKeyResponse = self._unary(self.keys.RevokeKey, request)
        return reply

    def attest(self, path: str) -> attestation_pb2.AttestResponse:
        """Attest a checkpoint on the server's file system."""
        reply: attestation_pb2.AttestResponse = self._unary(
            self.attestation.Attest, attestation_pb2.AttestRequest(path=path)
        )
        return reply

    # ---- gate --------------------------------------------------------------------------------

    def run_gate(
        self,
        release_sha256: str,
        *,
        answers: gate_pb2.AnswerSource | None = None,
        judge: gate_pb2.JudgeSpec | None = None,
        suite_path: str = "",
        reuse_scores: bool = False,
        tenant: str = "",
        on_stage: Callable[[gate_pb2.GateStage], None] | None = None,
        timeout: float | None = None,
        on_run: Callable[[gate_pb2.GateRun], None] | None = None,
    ) -> gate_pb2.GateResult:
        """Run the gate with the release's own policy; ``on_run`` sees the run first (its id:
        ``wait_gate_run`` follows it should this stream break), ``on_stage`` each progress
        message. A gate run embeds a whole suite, so there is no deadline unless ``timeout``
        sets one. ``reuse_scores`` decides again from the stored scores (no judge call)."""
        request = gate_pb2.RunGateRequest(
            release_sha256=release_sha256,
            suite_path=suite_path,
            answers=answers or gate_pb2.AnswerSource(),
            judge=judge or gate_pb2.JudgeSpec(),
            reuse_scores=reuse_scores,
            tenant=tenant,
        )
        result: gate_pb2.GateResult | None = None
        for event in self._stream(self.gates.RunGate, request, timeout):
            if event.HasField("result"):
                result = event.result
            elif event.HasField("run"):
                if on_run is not None:
                    on_run(event.run)
            elif on_stage is not None:
                on_stage(event.stage)
        if result is None:
            raise RelgateError("RunGate ended without a result")
        return result

    def upload(
        self, path: Path, *, kind: str, tenant: str = "", chunk_bytes: int = UPLOAD_CHUNK_BYTES
    ) -> gate_pb2.UploadResponse:
        """Stream a local answers or suite file to the server (client streaming, in
        ``chunk_bytes`` pieces); the reply's ``ref`` names it in ``run_gate``."""

        def chunks() -> Iterator[gate_pb2.UploadChunk]:
            with path.open("rb") as fh:
                yield gate_pb2.UploadChunk(
                    kind=kind, filename=path.name, tenant=tenant, data=fh.read(chunk_bytes)
                )
                while block := fh.read(chunk_bytes):
                    yield gate_pb2.UploadChunk(data=block)

        reply: gate_pb2.UploadResponse = self._unary(self.gates.Upload, chunks())
        return reply

    def get_gate_result(
        self, release_sha256: str, *, what_if_policy: Mapping[str, Any] | None = None
    ) -> gate_pb2.GateResult:
        """The latest gate result; with ``what_if_policy``, that policy re-applied to the
        stored scores (no judge call, nothing recorded)."""
        request = gate_pb2.GetGateResultRequest(release_sha256=release_sha256)
        if what_if_policy is not None:
            request.what_if_policy.CopyFrom(policy_message(what_if_policy))
        reply: gate_pb2.GateResult = self._unary(self.gates.GetGateResult, request)
        return reply

    def get_gate_run(self, run_id: str, *, tenant: str = "") -> gate_pb2.GateRun:
        """A gate run by id: its state and progress, and its result once done."""
        request = gate_pb2.GetGateRunRequest(run_id=run_id, tenant=tenant)
        reply: gate_pb2.GateRun = self._unary(self.gates.GetGateRun, request)
        return reply

    def wait_gate_run(
        self,
        run_id: str,
        *,
        tenant: str = "",
        poll_s: float = 0.5,
        timeout: float | None = None,
        on_stage: Callable[[gate_pb2.GateStage], None] | None = None,
    ) -> gate_pb2.GateRun:
        """Poll a gate run until it is done or failed (``on_stage`` sees each new progress);
        the last reply. An unreachable server (a restart) is retried until ``timeout``."""
        deadline = None if timeout is None else time.monotonic() + timeout
        seen: tuple[str, int, int] | None = None
        while True:
            try:
                run = self.get_gate_run(run_id, tenant=tenant)
            except RelgateError as exc:
                # Only "not reachable" (a plain RelgateError, rpc_error) is waited out.
                if type(exc) is not RelgateError or (
                    "unavailable" not in str(exc).lower() and ("cannot reach" not in str(exc))
                ):
                    raise
            else:
                if on_stage is not None and (run.stage, run.done, run.total) != seen:
                    seen = (run.stage, run.done, run.total)
                    on_stage(gate_pb2.GateStage(stage=run.stage, done=run.done, total=run.total))
                if run.state != "running":
                    return run
            if deadline is not None and time.monotonic() > deadline:
                raise RelgateError(f"gate run {run_id} did not finish within {timeout} s")
            time.sleep(poll_s)

    def override_gate(
        self,
        release_sha256: str,
        rationale: str,
        *,
        gate_result_sha256: str = "",
        tenant: str = "",
    ) -> gate_pb2.OverrideGateResponse:
        """Open a failed (or cold-start) gate with a written rationale."""
        request = gate_pb2.OverrideGateRequest(
            release_sha256=release_sha256,
            gate_result_sha256=gate_result_sha256,
            rationale=rationale,
            tenant=tenant,
        )
        reply: gate_pb2.OverrideGateResponse = self._unary(self.gates.OverrideGate, request)
        return reply

    # ---- rollouts ----------------------------------------------------------------------------

    def start_rollout(
        self,
        release_sha256: str,
        *,
        overrides: Mapping[str, Any] | None = None,
        stable_release_sha256: str = "",
        tenant: str = "",
        reason: str = "",
    ) -> rollout_pb2.Rollout:
        """Start a canary (or shadow) of a gated release; ``overrides`` follow
        ``RolloutSpec.to_dict`` (steps, thresholds, observer, shadow_s)."""
        spec = rollout_pb2.RolloutSpec(overrides_json=json.dumps(dict(overrides or {})))
        request = rollout_pb2.StartRolloutRequest(
            release_sha256=release_sha256,
            spec=spec,
            stable_release_sha256=stable_release_sha256,
            tenant=tenant,
            reason=reason,
        )
        reply: rollout_pb2.Rollout = self._unary(self.rollouts.StartRollout, request)
        return reply

    def get_rollout(self, rollout_id: str) -> rollout_pb2.Rollout:
        """The rollout now."""
        request = rollout_pb2.GetRolloutRequest(rollout_id=rollout_id)
        reply: rollout_pb2.Rollout = self._unary(self.rollouts.GetRollout, request)
        return reply

    def control(self, verb: str, rollout_id: str, reason: str = "") -> rollout_pb2.Rollout:
        """``verb`` is Pause, Resume, Promote or Abort."""
        if verb not in ("Pause", "Resume", "Promote", "Abort"):
            raise errors.InvalidInputError(f"unknown rollout command {verb!r}")
        request = rollout_pb2.RolloutControlRequest(rollout_id=rollout_id, reason=reason)
        reply: rollout_pb2.Rollout = self._unary(getattr(self.rollouts, verb), request)
        return reply

    def rollback(
        self, target_release_sha256: str, reason: str, *, tenant: str = ""
    ) -> rollout_pb2.RollbackResponse:
        """Swap the routing to an earlier release (manual_rollback receipt)."""
        request = rollout_pb2.RollbackRequest(
            target_release_sha256=target_release_sha256, reason=reason, tenant=tenant
        )
        reply: rollout_pb2.RollbackResponse = self._unary(self.rollouts.Rollback, request)
        return reply

    def list_rollouts(
        self, *, tenant: str = "", release_sha256: str = "", active_only: bool = False
    ) -> rollout_pb2.ListRolloutsResponse:
        """The tenant's rollouts (newest first) and what is live now."""
        request = rollout_pb2.ListRolloutsRequest(
            tenant=tenant, release_sha256=release_sha256, active_only=active_only
        )
        reply: rollout_pb2.ListRolloutsResponse = self._unary(self.rollouts.ListRollouts, request)
        return reply

    def watch_rollout(
        self, rollout_id: str, *, timeout: float | None = None
    ) -> Iterator[rollout_pb2.RolloutEvent]:
        """The rollout now, then every change until it is over (server streaming)."""
        request = rollout_pb2.WatchRolloutRequest(rollout_id=rollout_id)
        yield from self._stream(self.rollouts.WatchRollout, request, timeout)

    # ---- workers -----------------------------------------------------------------------------

    def register_worker(
        self, request: worker_pb2.RegisterWorkerRequest, *, timeout: float | None = None
    ) -> worker_pb2.RegisterWorkerResponse:
        """Register a judge worker (worker keys only)."""
        reply: worker_pb2.RegisterWorkerResponse = self._unary(
            self.workers.RegisterWorker, request, timeout
        )
        return reply

    def heartbeat(
        self, worker_id: str, job_ids: list[str], *, timeout: float | None = None
    ) -> worker_pb2.HeartbeatResponse:
        """Keep a worker and its jobs' leases alive."""
        request = worker_pb2.HeartbeatRequest(worker_id=worker_id, job_ids=job_ids)
        reply: worker_pb2.HeartbeatResponse = self._unary(self.workers.Heartbeat, request, timeout)
        return reply

    def pull_jobs(
        self, worker_id: str, *, max_jobs: int, wait_ms: int, timeout: float | None = None
    ) -> worker_pb2.PullJobsResponse:
        """Lease up to ``max_jobs`` jobs, waiting up to ``wait_ms`` for one (long poll)."""
        request = worker_pb2.PullJobsRequest(
            worker_id=worker_id, max_jobs=max_jobs, wait_ms=wait_ms
        )
        reply: worker_pb2.PullJobsResponse = self._unary(self.workers.PullJobs, request, timeout)
        return reply

    def submit_result(
        self, request: worker_pb2.SubmitResultRequest, *, timeout: float | None = None
    ) -> worker_pb2.SubmitResultResponse:
        """Send a job's result (idempotent by job id)."""
        reply: worker_pb2.SubmitResultResponse = self._unary(
            self.workers.SubmitResult, request, timeout
        )
        return reply
