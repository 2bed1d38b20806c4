"""gRPC client verbs of the GateService (the CLI's ``relgate gate`` and the demo's gate
chapter).

``GateClient`` is a ``relgate.client.RelgateClient`` with RunGate, GetGateResult and
OverrideGate added; errors are the ``relgate.errors`` classes the server raised.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import grpc

from relgate._proto.relgate.v1 import gate_pb2
from relgate.client import RelgateClient, rpc_error
from relgate.errors import InvalidInputError, RelgateError

__all__ = ["GateClient", "answer_source", "judge_spec", "policy_message"]

_SERVICE = "/relgate.v1.GateService/"
_SCALES = {"normalized": gate_pb2.SCALE_NORMALIZED, "raw": gate_pb2.SCALE_RAW}
_FLOOR_ON = {"point": gate_pb2.FLOOR_ON_POINT, "ci_low": gate_pb2.FLOOR_ON_CI_LOW}
_FIELDS = (
    "floor",
    "non_inferiority_margin",
    "alpha",
    "min_rows",
    "min_ceiling",
    "strict",
    "n_resamples",
    "confidence",
    "seed",
)


def policy_message(policy: Mapping[str, Any]) -> gate_pb2.GatePolicy:
    """A ``GatePolicy`` message from manifest-style fields (``{"floor": 0.8, ...}``)."""
    unknown = sorted(set(policy) - {"scale", "floor_on", *_FIELDS})
    if unknown:
        raise InvalidInputError(f"gate policy: unknown field(s) {', '.join(unknown)}")
    msg = gate_pb2.GatePolicy()
    try:
        if "scale" in policy:
            msg.scale = _SCALES[str(policy["scale"])]
        if "floor_on" in policy:
            msg.floor_on = _FLOOR_ON[str(policy["floor_on"])]
    except KeyError as exc:
        raise InvalidInputError(f"gate policy: unknown value {exc}") from None
    for name in _FIELDS:
        if name in policy:
            try:
                setattr(msg, name, policy[name])
            except (TypeError, ValueError) as exc:
                raise InvalidInputError(f"gate policy: {name}: {exc}") from None
    return msg


def answer_source(
    *,
    answers: str | Path | None = None,
    endpoint: bool = False,
    vllm_model: str | None = None,
    transformers_model: str | None = None,
) -> gate_pb2.AnswerSource:
    """Exactly one answer source (a recorded-outputs path is one the server can read)."""
    given = [answers is not None, endpoint, vllm_model is not None, transformers_model is not None]
    if sum(given) > 1:
        raise InvalidInputError(
            "name one answer source: --answers, --endpoint, --vllm-model or --transformers-model"
        )
    if answers is not None:
        return gate_pb2.AnswerSource(recorded_outputs_path=str(answers))
    if endpoint:
        return gate_pb2.AnswerSource(release_endpoint=True)
    if vllm_model is not None:
        return gate_pb2.AnswerSource(vllm_model=vllm_model)
    if transformers_model is not None:
        return gate_pb2.AnswerSource(transformers_model=transformers_model)
    return gate_pb2.AnswerSource()


def judge_spec(
    backend: str | None, model: str | None = None, endpoint: str | None = None
) -> gate_pb2.JudgeSpec:
    """A judge spec; ``backend`` None leaves the server's default judge."""
    if backend is None:
        return gate_pb2.JudgeSpec()
    if backend == "embedding":
        return gate_pb2.JudgeSpec(embedding=gate_pb2.EmbeddingJudge(model=model or ""))
    if backend in ("openai", "vllm", "transformers"):
        spec = gate_pb2.JudgeSpec()
        getattr(spec, backend).CopyFrom(
            gate_pb2.LlmJudge(model=model or "", endpoint=endpoint or "")
        )
        return spec
    raise InvalidInputError(
        f"unknown judge backend {backend!r}; one of embedding, openai, transformers, vllm"
    )


class GateClient(RelgateClient):
    """``RelgateClient`` plus the gate verbs."""

    def run_gate(
        self,
        release_sha256: str,
        *,
        answers: gate_pb2.AnswerSource | None = None,
        judge: gate_pb2.JudgeSpec | None = None,
        suite_path: str = "",
        reuse_scores: bool = False,
        policy: Mapping[str, Any] | None = None,
        tenant: str = "",
        on_stage: Callable[[gate_pb2.GateStage], None] | None = None,
        timeout: float | None = None,
    ) -> gate_pb2.GateResult:
        """Run the gate; ``on_stage`` sees each progress message. A gate run embeds a whole
        suite, so there is no deadline unless ``timeout`` sets one."""
        request = gate_pb2.RunGateRequest(
            release_sha256=release_sha256,
            suite_path=suite_path,
            answers=answers or gate_pb2.AnswerSource(),
            judge=judge or gate_pb2.JudgeSpec(),
            reuse_scores=reuse_scores,
            override_policy=policy_message(policy or {}),
            tenant=tenant,
        )
        stub = self._channel.unary_stream(
            _SERVICE + "RunGate",
            request_serializer=lambda m: m.SerializeToString(),
            response_deserializer=gate_pb2.GateProgress.FromString,
        )
        result: gate_pb2.GateResult | None = None
        try:
            for event in stub(request, metadata=self._metadata, timeout=timeout):
                if event.HasField("result"):
                    result = event.result
                elif on_stage is not None:
                    on_stage(event.stage)
        except grpc.RpcError as exc:
            raise rpc_error(exc, self.server) from None
        if result is None:
            raise RelgateError("RunGate ended without a result")
        return result

    def get_gate_result(
        self, release_sha256: str, *, what_if_policy: Mapping[str, Any] | None = None
    ) -> gate_pb2.GateResult:
        """The latest gate result; with ``what_if_policy``, that policy re-applied to the
        stored scores (no judge call, nothing recorded)."""
        request = gate_pb2.GetGateResultRequest(release_sha256=release_sha256)
        if what_if_policy is not None:
            request.what_if_policy.CopyFrom(policy_message(what_if_policy))
        return self.call(_SERVICE + "GetGateResult", request, gate_pb2.GateResult)

    def override_gate(
        self,
        release_sha256: str,
        rationale: str,
        *,
        gate_result_sha256: str = "",
        tenant: str = "",
    ) -> gate_pb2.OverrideGateResponse:
        """Open a failed (or cold-start) gate with a written rationale."""
        return self.call(
            _SERVICE + "OverrideGate",
            gate_pb2.OverrideGateRequest(
                release_sha256=release_sha256,
                gate_result_sha256=gate_result_sha256,
                rationale=rationale,
                tenant=tenant,
            ),
            gate_pb2.OverrideGateResponse,
        )
