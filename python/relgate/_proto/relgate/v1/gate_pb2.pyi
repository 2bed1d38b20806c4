from relgate._proto.relgate.v1 import common_pb2 as _common_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Scale(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    SCALE_UNSPECIFIED: _ClassVar[Scale]
    SCALE_NORMALIZED: _ClassVar[Scale]
    SCALE_RAW: _ClassVar[Scale]

class FloorOn(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    FLOOR_ON_UNSPECIFIED: _ClassVar[FloorOn]
    FLOOR_ON_POINT: _ClassVar[FloorOn]
    FLOOR_ON_CI_LOW: _ClassVar[FloorOn]

class SliceVerdict(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    SLICE_VERDICT_UNSPECIFIED: _ClassVar[SliceVerdict]
    SLICE_VERDICT_PASS: _ClassVar[SliceVerdict]
    SLICE_VERDICT_FAIL: _ClassVar[SliceVerdict]
    SLICE_VERDICT_INSUFFICIENT: _ClassVar[SliceVerdict]
    SLICE_VERDICT_JUDGE_UNTRUSTED: _ClassVar[SliceVerdict]

class GateVerdict(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    GATE_VERDICT_UNSPECIFIED: _ClassVar[GateVerdict]
    GATE_VERDICT_PASS: _ClassVar[GateVerdict]
    GATE_VERDICT_PASS_WITH_WARNINGS: _ClassVar[GateVerdict]
    GATE_VERDICT_FAIL: _ClassVar[GateVerdict]
    GATE_VERDICT_INSUFFICIENT: _ClassVar[GateVerdict]
SCALE_UNSPECIFIED: Scale
SCALE_NORMALIZED: Scale
SCALE_RAW: Scale
FLOOR_ON_UNSPECIFIED: FloorOn
FLOOR_ON_POINT: FloorOn
FLOOR_ON_CI_LOW: FloorOn
SLICE_VERDICT_UNSPECIFIED: SliceVerdict
SLICE_VERDICT_PASS: SliceVerdict
SLICE_VERDICT_FAIL: SliceVerdict
SLICE_VERDICT_INSUFFICIENT: SliceVerdict
SLICE_VERDICT_JUDGE_UNTRUSTED: SliceVerdict
GATE_VERDICT_UNSPECIFIED: GateVerdict
GATE_VERDICT_PASS: GateVerdict
GATE_VERDICT_PASS_WITH_WARNINGS: GateVerdict
GATE_VERDICT_FAIL: GateVerdict
GATE_VERDICT_INSUFFICIENT: GateVerdict

class UploadChunk(_message.Message):
    __slots__ = ("kind", "filename", "tenant", "data")
    KIND_FIELD_NUMBER: _ClassVar[int]
    FILENAME_FIELD_NUMBER: _ClassVar[int]
    TENANT_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    kind: str
    filename: str
    tenant: str
    data: bytes
    def __init__(self, kind: _Optional[str] = ..., filename: _Optional[str] = ..., tenant: _Optional[str] = ..., data: _Optional[bytes] = ...) -> None: ...

class UploadResponse(_message.Message):
    __slots__ = ("ref", "sha256", "size_bytes")
    REF_FIELD_NUMBER: _ClassVar[int]
    SHA256_FIELD_NUMBER: _ClassVar[int]
    SIZE_BYTES_FIELD_NUMBER: _ClassVar[int]
    ref: str
    sha256: str
    size_bytes: int
    def __init__(self, ref: _Optional[str] = ..., sha256: _Optional[str] = ..., size_bytes: _Optional[int] = ...) -> None: ...

class GatePolicy(_message.Message):
    __slots__ = ("scale", "floor", "floor_on", "non_inferiority_margin", "alpha", "min_rows", "min_ceiling", "strict", "n_resamples", "confidence", "seed")
    SCALE_FIELD_NUMBER: _ClassVar[int]
    FLOOR_FIELD_NUMBER: _ClassVar[int]
    FLOOR_ON_FIELD_NUMBER: _ClassVar[int]
    NON_INFERIORITY_MARGIN_FIELD_NUMBER: _ClassVar[int]
    ALPHA_FIELD_NUMBER: _ClassVar[int]
    MIN_ROWS_FIELD_NUMBER: _ClassVar[int]
    MIN_CEILING_FIELD_NUMBER: _ClassVar[int]
    STRICT_FIELD_NUMBER: _ClassVar[int]
    N_RESAMPLES_FIELD_NUMBER: _ClassVar[int]
    CONFIDENCE_FIELD_NUMBER: _ClassVar[int]
    SEED_FIELD_NUMBER: _ClassVar[int]
    scale: Scale
    floor: float
    floor_on: FloorOn
    non_inferiority_margin: float
    alpha: float
    min_rows: int
    min_ceiling: float
    strict: bool
    n_resamples: int
    confidence: float
    seed: int
    def __init__(self, scale: _Optional[_Union[Scale, str]] = ..., floor: _Optional[float] = ..., floor_on: _Optional[_Union[FloorOn, str]] = ..., non_inferiority_margin: _Optional[float] = ..., alpha: _Optional[float] = ..., min_rows: _Optional[int] = ..., min_ceiling: _Optional[float] = ..., strict: _Optional[bool] = ..., n_resamples: _Optional[int] = ..., confidence: _Optional[float] = ..., seed: _Optional[int] = ...) -> None: ...

class JudgeSpec(_message.Message):
    __slots__ = ("embedding", "vllm", "openai", "transformers")
    EMBEDDING_FIELD_NUMBER: _ClassVar[int]
    VLLM_FIELD_NUMBER: _ClassVar[int]
    OPENAI_FIELD_NUMBER: _ClassVar[int]
    TRANSFORMERS_FIELD_NUMBER: _ClassVar[int]
    embedding: EmbeddingJudge
    vllm: LlmJudge
    openai: LlmJudge
    transformers: LlmJudge
    def __init__(self, embedding: _Optional[_Union[EmbeddingJudge, _Mapping]] = ..., vllm: _Optional[_Union[LlmJudge, _Mapping]] = ..., openai: _Optional[_Union[LlmJudge, _Mapping]] = ..., transformers: _Optional[_Union[LlmJudge, _Mapping]] = ...) -> None: ...

class EmbeddingJudge(_message.Message):
    __slots__ = ("model",)
    MODEL_FIELD_NUMBER: _ClassVar[int]
    model: str
    def __init__(self, model: _Optional[str] = ...) -> None: ...

class LlmJudge(_message.Message):
    __slots__ = ("model", "endpoint", "prompt")
    MODEL_FIELD_NUMBER: _ClassVar[int]
    ENDPOINT_FIELD_NUMBER: _ClassVar[int]
    PROMPT_FIELD_NUMBER: _ClassVar[int]
    model: str
    endpoint: str
    prompt: str
    def __init__(self, model: _Optional[str] = ..., endpoint: _Optional[str] = ..., prompt: _Optional[str] = ...) -> None: ...

class AnswerSource(_message.Message):
    __slots__ = ("release_endpoint", "recorded_outputs_path", "vllm_model", "transformers_model")
    RELEASE_ENDPOINT_FIELD_NUMBER: _ClassVar[int]
    RECORDED_OUTPUTS_PATH_FIELD_NUMBER: _ClassVar[int]
    VLLM_MODEL_FIELD_NUMBER: _ClassVar[int]
    TRANSFORMERS_MODEL_FIELD_NUMBER: _ClassVar[int]
    release_endpoint: bool
    recorded_outputs_path: str
    vllm_model: str
    transformers_model: str
    def __init__(self, release_endpoint: _Optional[bool] = ..., recorded_outputs_path: _Optional[str] = ..., vllm_model: _Optional[str] = ..., transformers_model: _Optional[str] = ...) -> None: ...

class RunGateRequest(_message.Message):
    __slots__ = ("release_sha256", "suite_path", "answers", "judge", "reuse_scores", "tenant")
    RELEASE_SHA256_FIELD_NUMBER: _ClassVar[int]
    SUITE_PATH_FIELD_NUMBER: _ClassVar[int]
    ANSWERS_FIELD_NUMBER: _ClassVar[int]
    JUDGE_FIELD_NUMBER: _ClassVar[int]
    REUSE_SCORES_FIELD_NUMBER: _ClassVar[int]
    TENANT_FIELD_NUMBER: _ClassVar[int]
    release_sha256: str
    suite_path: str
    answers: AnswerSource
    judge: JudgeSpec
    reuse_scores: bool
    tenant: str
    def __init__(self, release_sha256: _Optional[str] = ..., suite_path: _Optional[str] = ..., answers: _Optional[_Union[AnswerSource, _Mapping]] = ..., judge: _Optional[_Union[JudgeSpec, _Mapping]] = ..., reuse_scores: _Optional[bool] = ..., tenant: _Optional[str] = ...) -> None: ...

class GateProgress(_message.Message):
    __slots__ = ("stage", "result", "run")
    STAGE_FIELD_NUMBER: _ClassVar[int]
    RESULT_FIELD_NUMBER: _ClassVar[int]
    RUN_FIELD_NUMBER: _ClassVar[int]
    stage: GateStage
    result: GateResult
    run: GateRun
    def __init__(self, stage: _Optional[_Union[GateStage, _Mapping]] = ..., result: _Optional[_Union[GateResult, _Mapping]] = ..., run: _Optional[_Union[GateRun, _Mapping]] = ...) -> None: ...

class GetGateRunRequest(_message.Message):
    __slots__ = ("run_id", "tenant")
    RUN_ID_FIELD_NUMBER: _ClassVar[int]
    TENANT_FIELD_NUMBER: _ClassVar[int]
    run_id: str
    tenant: str
    def __init__(self, run_id: _Optional[str] = ..., tenant: _Optional[str] = ...) -> None: ...

class GateRunAttempt(_message.Message):
    __slots__ = ("attempt", "owner", "outcome", "cached_rows", "judged_pairs")
    ATTEMPT_FIELD_NUMBER: _ClassVar[int]
    OWNER_FIELD_NUMBER: _ClassVar[int]
    OUTCOME_FIELD_NUMBER: _ClassVar[int]
    CACHED_ROWS_FIELD_NUMBER: _ClassVar[int]
    JUDGED_PAIRS_FIELD_NUMBER: _ClassVar[int]
    attempt: int
    owner: str
    outcome: str
    cached_rows: int
    judged_pairs: int
    def __init__(self, attempt: _Optional[int] = ..., owner: _Optional[str] = ..., outcome: _Optional[str] = ..., cached_rows: _Optional[int] = ..., judged_pairs: _Optional[int] = ...) -> None: ...

class GateRun(_message.Message):
    __slots__ = ("run_id", "release_sha256", "state", "stage", "done", "total", "error", "attempts", "attempt_stats", "gate_result_sha256", "receipt_sha256", "result", "attached", "created_at", "updated_at")
    RUN_ID_FIELD_NUMBER: _ClassVar[int]
    RELEASE_SHA256_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    STAGE_FIELD_NUMBER: _ClassVar[int]
    DONE_FIELD_NUMBER: _ClassVar[int]
    TOTAL_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    ATTEMPTS_FIELD_NUMBER: _ClassVar[int]
    ATTEMPT_STATS_FIELD_NUMBER: _ClassVar[int]
    GATE_RESULT_SHA256_FIELD_NUMBER: _ClassVar[int]
    RECEIPT_SHA256_FIELD_NUMBER: _ClassVar[int]
    RESULT_FIELD_NUMBER: _ClassVar[int]
    ATTACHED_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    UPDATED_AT_FIELD_NUMBER: _ClassVar[int]
    run_id: str
    release_sha256: str
    state: str
    stage: str
    done: int
    total: int
    error: str
    attempts: int
    attempt_stats: _containers.RepeatedCompositeFieldContainer[GateRunAttempt]
    gate_result_sha256: str
    receipt_sha256: str
    result: GateResult
    attached: bool
    created_at: str
    updated_at: str
    def __init__(self, run_id: _Optional[str] = ..., release_sha256: _Optional[str] = ..., state: _Optional[str] = ..., stage: _Optional[str] = ..., done: _Optional[int] = ..., total: _Optional[int] = ..., error: _Optional[str] = ..., attempts: _Optional[int] = ..., attempt_stats: _Optional[_Iterable[_Union[GateRunAttempt, _Mapping]]] = ..., gate_result_sha256: _Optional[str] = ..., receipt_sha256: _Optional[str] = ..., result: _Optional[_Union[GateResult, _Mapping]] = ..., attached: _Optional[bool] = ..., created_at: _Optional[str] = ..., updated_at: _Optional[str] = ...) -> None: ...

class GateStage(_message.Message):
    __slots__ = ("stage", "done", "total")
    STAGE_FIELD_NUMBER: _ClassVar[int]
    DONE_FIELD_NUMBER: _ClassVar[int]
    TOTAL_FIELD_NUMBER: _ClassVar[int]
    stage: str
    done: int
    total: int
    def __init__(self, stage: _Optional[str] = ..., done: _Optional[int] = ..., total: _Optional[int] = ...) -> None: ...

class SliceResult(_message.Message):
    __slots__ = ("slice", "verdict", "rows", "rho", "rho_ci", "ceiling", "ceiling_ci", "q", "q_ci", "kendall_tau_b", "delta_vs_previous", "delta_ci", "p_value_holm", "reason", "previous_q", "items")
    SLICE_FIELD_NUMBER: _ClassVar[int]
    VERDICT_FIELD_NUMBER: _ClassVar[int]
    ROWS_FIELD_NUMBER: _ClassVar[int]
    RHO_FIELD_NUMBER: _ClassVar[int]
    RHO_CI_FIELD_NUMBER: _ClassVar[int]
    CEILING_FIELD_NUMBER: _ClassVar[int]
    CEILING_CI_FIELD_NUMBER: _ClassVar[int]
    Q_FIELD_NUMBER: _ClassVar[int]
    Q_CI_FIELD_NUMBER: _ClassVar[int]
    KENDALL_TAU_B_FIELD_NUMBER: _ClassVar[int]
    DELTA_VS_PREVIOUS_FIELD_NUMBER: _ClassVar[int]
    DELTA_CI_FIELD_NUMBER: _ClassVar[int]
    P_VALUE_HOLM_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    PREVIOUS_Q_FIELD_NUMBER: _ClassVar[int]
    ITEMS_FIELD_NUMBER: _ClassVar[int]
    slice: str
    verdict: SliceVerdict
    rows: int
    rho: float
    rho_ci: _common_pb2.ConfidenceInterval
    ceiling: float
    ceiling_ci: _common_pb2.ConfidenceInterval
    q: float
    q_ci: _common_pb2.ConfidenceInterval
    kendall_tau_b: float
    delta_vs_previous: float
    delta_ci: _common_pb2.ConfidenceInterval
    p_value_holm: float
    reason: str
    previous_q: float
    items: int
    def __init__(self, slice: _Optional[str] = ..., verdict: _Optional[_Union[SliceVerdict, str]] = ..., rows: _Optional[int] = ..., rho: _Optional[float] = ..., rho_ci: _Optional[_Union[_common_pb2.ConfidenceInterval, _Mapping]] = ..., ceiling: _Optional[float] = ..., ceiling_ci: _Optional[_Union[_common_pb2.ConfidenceInterval, _Mapping]] = ..., q: _Optional[float] = ..., q_ci: _Optional[_Union[_common_pb2.ConfidenceInterval, _Mapping]] = ..., kendall_tau_b: _Optional[float] = ..., delta_vs_previous: _Optional[float] = ..., delta_ci: _Optional[_Union[_common_pb2.ConfidenceInterval, _Mapping]] = ..., p_value_holm: _Optional[float] = ..., reason: _Optional[str] = ..., previous_q: _Optional[float] = ..., items: _Optional[int] = ...) -> None: ...

class GateResult(_message.Message):
    __slots__ = ("release_sha256", "previous_release_sha256", "verdict", "slices", "aggregate_rho", "aggregate_q", "judge_sha256", "suite_sha256", "policy_json", "gate_result_sha256", "receipt", "cold_start", "calibration_sha256", "sample_set_sha256", "report_path", "archived", "gate_override_sha256", "previous_aggregate_rho", "previous_aggregate_q", "what_if")
    RELEASE_SHA256_FIELD_NUMBER: _ClassVar[int]
    PREVIOUS_RELEASE_SHA256_FIELD_NUMBER: _ClassVar[int]
    VERDICT_FIELD_NUMBER: _ClassVar[int]
    SLICES_FIELD_NUMBER: _ClassVar[int]
    AGGREGATE_RHO_FIELD_NUMBER: _ClassVar[int]
    AGGREGATE_Q_FIELD_NUMBER: _ClassVar[int]
    JUDGE_SHA256_FIELD_NUMBER: _ClassVar[int]
    SUITE_SHA256_FIELD_NUMBER: _ClassVar[int]
    POLICY_JSON_FIELD_NUMBER: _ClassVar[int]
    GATE_RESULT_SHA256_FIELD_NUMBER: _ClassVar[int]
    RECEIPT_FIELD_NUMBER: _ClassVar[int]
    COLD_START_FIELD_NUMBER: _ClassVar[int]
    CALIBRATION_SHA256_FIELD_NUMBER: _ClassVar[int]
    SAMPLE_SET_SHA256_FIELD_NUMBER: _ClassVar[int]
    REPORT_PATH_FIELD_NUMBER: _ClassVar[int]
    ARCHIVED_FIELD_NUMBER: _ClassVar[int]
    GATE_OVERRIDE_SHA256_FIELD_NUMBER: _ClassVar[int]
    PREVIOUS_AGGREGATE_RHO_FIELD_NUMBER: _ClassVar[int]
    PREVIOUS_AGGREGATE_Q_FIELD_NUMBER: _ClassVar[int]
    WHAT_IF_FIELD_NUMBER: _ClassVar[int]
    release_sha256: str
    previous_release_sha256: str
    verdict: GateVerdict
    slices: _containers.RepeatedCompositeFieldContainer[SliceResult]
    aggregate_rho: float
    aggregate_q: float
    judge_sha256: str
    suite_sha256: str
    policy_json: str
    gate_result_sha256: str
    receipt: _common_pb2.Receipt
    cold_start: bool
    calibration_sha256: str
    sample_set_sha256: str
    report_path: str
    archived: bool
    gate_override_sha256: str
    previous_aggregate_rho: float
    previous_aggregate_q: float
    what_if: bool
    def __init__(self, release_sha256: _Optional[str] = ..., previous_release_sha256: _Optional[str] = ..., verdict: _Optional[_Union[GateVerdict, str]] = ..., slices: _Optional[_Iterable[_Union[SliceResult, _Mapping]]] = ..., aggregate_rho: _Optional[float] = ..., aggregate_q: _Optional[float] = ..., judge_sha256: _Optional[str] = ..., suite_sha256: _Optional[str] = ..., policy_json: _Optional[str] = ..., gate_result_sha256: _Optional[str] = ..., receipt: _Optional[_Union[_common_pb2.Receipt, _Mapping]] = ..., cold_start: _Optional[bool] = ..., calibration_sha256: _Optional[str] = ..., sample_set_sha256: _Optional[str] = ..., report_path: _Optional[str] = ..., archived: _Optional[bool] = ..., gate_override_sha256: _Optional[str] = ..., previous_aggregate_rho: _Optional[float] = ..., previous_aggregate_q: _Optional[float] = ..., what_if: _Optional[bool] = ...) -> None: ...

class GetGateResultRequest(_message.Message):
    __slots__ = ("release_sha256", "what_if_policy", "tenant")
    RELEASE_SHA256_FIELD_NUMBER: _ClassVar[int]
    WHAT_IF_POLICY_FIELD_NUMBER: _ClassVar[int]
    TENANT_FIELD_NUMBER: _ClassVar[int]
    release_sha256: str
    what_if_policy: GatePolicy
    tenant: str
    def __init__(self, release_sha256: _Optional[str] = ..., what_if_policy: _Optional[_Union[GatePolicy, _Mapping]] = ..., tenant: _Optional[str] = ...) -> None: ...

class OverrideGateRequest(_message.Message):
    __slots__ = ("release_sha256", "gate_result_sha256", "rationale", "tenant")
    RELEASE_SHA256_FIELD_NUMBER: _ClassVar[int]
    GATE_RESULT_SHA256_FIELD_NUMBER: _ClassVar[int]
    RATIONALE_FIELD_NUMBER: _ClassVar[int]
    TENANT_FIELD_NUMBER: _ClassVar[int]
    release_sha256: str
    gate_result_sha256: str
    rationale: str
    tenant: str
    def __init__(self, release_sha256: _Optional[str] = ..., gate_result_sha256: _Optional[str] = ..., rationale: _Optional[str] = ..., tenant: _Optional[str] = ...) -> None: ...

class OverrideGateResponse(_message.Message):
    __slots__ = ("gate_override_sha256", "receipt")
    GATE_OVERRIDE_SHA256_FIELD_NUMBER: _ClassVar[int]
    RECEIPT_FIELD_NUMBER: _ClassVar[int]
    gate_override_sha256: str
    receipt: _common_pb2.Receipt
    def __init__(self, gate_override_sha256: _Optional[str] = ..., receipt: _Optional[_Union[_common_pb2.Receipt, _Mapping]] = ...) -> None: ...
