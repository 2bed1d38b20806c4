from relgate._proto.relgate.v1 import common_pb2 as _common_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class RolloutPhase(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    ROLLOUT_PHASE_UNSPECIFIED: _ClassVar[RolloutPhase]
    ROLLOUT_PHASE_SHADOW: _ClassVar[RolloutPhase]
    ROLLOUT_PHASE_PROGRESSING: _ClassVar[RolloutPhase]
    ROLLOUT_PHASE_PAUSED: _ClassVar[RolloutPhase]
    ROLLOUT_PHASE_INCONCLUSIVE: _ClassVar[RolloutPhase]
    ROLLOUT_PHASE_OBSERVING: _ClassVar[RolloutPhase]
    ROLLOUT_PHASE_COMPLETED: _ClassVar[RolloutPhase]
    ROLLOUT_PHASE_ABORTED: _ClassVar[RolloutPhase]
    ROLLOUT_PHASE_ROLLED_BACK: _ClassVar[RolloutPhase]

class MonitorVerdict(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    MONITOR_VERDICT_UNSPECIFIED: _ClassVar[MonitorVerdict]
    MONITOR_VERDICT_HOLDS: _ClassVar[MonitorVerdict]
    MONITOR_VERDICT_BREACHED: _ClassVar[MonitorVerdict]
    MONITOR_VERDICT_INCONCLUSIVE: _ClassVar[MonitorVerdict]
ROLLOUT_PHASE_UNSPECIFIED: RolloutPhase
ROLLOUT_PHASE_SHADOW: RolloutPhase
ROLLOUT_PHASE_PROGRESSING: RolloutPhase
ROLLOUT_PHASE_PAUSED: RolloutPhase
ROLLOUT_PHASE_INCONCLUSIVE: RolloutPhase
ROLLOUT_PHASE_OBSERVING: RolloutPhase
ROLLOUT_PHASE_COMPLETED: RolloutPhase
ROLLOUT_PHASE_ABORTED: RolloutPhase
ROLLOUT_PHASE_ROLLED_BACK: RolloutPhase
MONITOR_VERDICT_UNSPECIFIED: MonitorVerdict
MONITOR_VERDICT_HOLDS: MonitorVerdict
MONITOR_VERDICT_BREACHED: MonitorVerdict
MONITOR_VERDICT_INCONCLUSIVE: MonitorVerdict

class Step(_message.Message):
    __slots__ = ("weight_bp", "min_dwell_s", "min_requests", "deadline_s")
    WEIGHT_BP_FIELD_NUMBER: _ClassVar[int]
    MIN_DWELL_S_FIELD_NUMBER: _ClassVar[int]
    MIN_REQUESTS_FIELD_NUMBER: _ClassVar[int]
    DEADLINE_S_FIELD_NUMBER: _ClassVar[int]
    weight_bp: int
    min_dwell_s: int
    min_requests: int
    deadline_s: int
    def __init__(self, weight_bp: _Optional[int] = ..., min_dwell_s: _Optional[int] = ..., min_requests: _Optional[int] = ..., deadline_s: _Optional[int] = ...) -> None: ...

class RolloutSpec(_message.Message):
    __slots__ = ("steps", "latency_p95_ratio", "error_rate_ratio", "min_error_events", "replay_traces_per_slice", "shadow_duration_s", "observe_sample_fraction", "observe_min_rows_per_minute", "observe_bad_minutes", "observe_threshold_fraction", "overrides_json")
    STEPS_FIELD_NUMBER: _ClassVar[int]
    LATENCY_P95_RATIO_FIELD_NUMBER: _ClassVar[int]
    ERROR_RATE_RATIO_FIELD_NUMBER: _ClassVar[int]
    MIN_ERROR_EVENTS_FIELD_NUMBER: _ClassVar[int]
    REPLAY_TRACES_PER_SLICE_FIELD_NUMBER: _ClassVar[int]
    SHADOW_DURATION_S_FIELD_NUMBER: _ClassVar[int]
    OBSERVE_SAMPLE_FRACTION_FIELD_NUMBER: _ClassVar[int]
    OBSERVE_MIN_ROWS_PER_MINUTE_FIELD_NUMBER: _ClassVar[int]
    OBSERVE_BAD_MINUTES_FIELD_NUMBER: _ClassVar[int]
    OBSERVE_THRESHOLD_FRACTION_FIELD_NUMBER: _ClassVar[int]
    OVERRIDES_JSON_FIELD_NUMBER: _ClassVar[int]
    steps: _containers.RepeatedCompositeFieldContainer[Step]
    latency_p95_ratio: float
    error_rate_ratio: float
    min_error_events: int
    replay_traces_per_slice: int
    shadow_duration_s: int
    observe_sample_fraction: float
    observe_min_rows_per_minute: int
    observe_bad_minutes: int
    observe_threshold_fraction: float
    overrides_json: str
    def __init__(self, steps: _Optional[_Iterable[_Union[Step, _Mapping]]] = ..., latency_p95_ratio: _Optional[float] = ..., error_rate_ratio: _Optional[float] = ..., min_error_events: _Optional[int] = ..., replay_traces_per_slice: _Optional[int] = ..., shadow_duration_s: _Optional[int] = ..., observe_sample_fraction: _Optional[float] = ..., observe_min_rows_per_minute: _Optional[int] = ..., observe_bad_minutes: _Optional[int] = ..., observe_threshold_fraction: _Optional[float] = ..., overrides_json: _Optional[str] = ...) -> None: ...

class MonitorReading(_message.Message):
    __slots__ = ("monitor", "candidate", "baseline", "threshold", "samples", "verdict", "at")
    MONITOR_FIELD_NUMBER: _ClassVar[int]
    CANDIDATE_FIELD_NUMBER: _ClassVar[int]
    BASELINE_FIELD_NUMBER: _ClassVar[int]
    THRESHOLD_FIELD_NUMBER: _ClassVar[int]
    SAMPLES_FIELD_NUMBER: _ClassVar[int]
    VERDICT_FIELD_NUMBER: _ClassVar[int]
    AT_FIELD_NUMBER: _ClassVar[int]
    monitor: str
    candidate: float
    baseline: float
    threshold: float
    samples: int
    verdict: MonitorVerdict
    at: str
    def __init__(self, monitor: _Optional[str] = ..., candidate: _Optional[float] = ..., baseline: _Optional[float] = ..., threshold: _Optional[float] = ..., samples: _Optional[int] = ..., verdict: _Optional[_Union[MonitorVerdict, str]] = ..., at: _Optional[str] = ...) -> None: ...

class RolloutStatus(_message.Message):
    __slots__ = ("phase", "step_index", "weight_bp", "started_at", "step_started_at", "requests_at_step", "paused", "abort", "readings", "message", "routing_version")
    PHASE_FIELD_NUMBER: _ClassVar[int]
    STEP_INDEX_FIELD_NUMBER: _ClassVar[int]
    WEIGHT_BP_FIELD_NUMBER: _ClassVar[int]
    STARTED_AT_FIELD_NUMBER: _ClassVar[int]
    STEP_STARTED_AT_FIELD_NUMBER: _ClassVar[int]
    REQUESTS_AT_STEP_FIELD_NUMBER: _ClassVar[int]
    PAUSED_FIELD_NUMBER: _ClassVar[int]
    ABORT_FIELD_NUMBER: _ClassVar[int]
    READINGS_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    ROUTING_VERSION_FIELD_NUMBER: _ClassVar[int]
    phase: RolloutPhase
    step_index: int
    weight_bp: int
    started_at: str
    step_started_at: str
    requests_at_step: int
    paused: bool
    abort: bool
    readings: _containers.RepeatedCompositeFieldContainer[MonitorReading]
    message: str
    routing_version: int
    def __init__(self, phase: _Optional[_Union[RolloutPhase, str]] = ..., step_index: _Optional[int] = ..., weight_bp: _Optional[int] = ..., started_at: _Optional[str] = ..., step_started_at: _Optional[str] = ..., requests_at_step: _Optional[int] = ..., paused: _Optional[bool] = ..., abort: _Optional[bool] = ..., readings: _Optional[_Iterable[_Union[MonitorReading, _Mapping]]] = ..., message: _Optional[str] = ..., routing_version: _Optional[int] = ...) -> None: ...

class Rollout(_message.Message):
    __slots__ = ("rollout_id", "release_sha256", "stable_release_sha256", "spec", "status", "tenant")
    ROLLOUT_ID_FIELD_NUMBER: _ClassVar[int]
    RELEASE_SHA256_FIELD_NUMBER: _ClassVar[int]
    STABLE_RELEASE_SHA256_FIELD_NUMBER: _ClassVar[int]
    SPEC_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    TENANT_FIELD_NUMBER: _ClassVar[int]
    rollout_id: str
    release_sha256: str
    stable_release_sha256: str
    spec: RolloutSpec
    status: RolloutStatus
    tenant: str
    def __init__(self, rollout_id: _Optional[str] = ..., release_sha256: _Optional[str] = ..., stable_release_sha256: _Optional[str] = ..., spec: _Optional[_Union[RolloutSpec, _Mapping]] = ..., status: _Optional[_Union[RolloutStatus, _Mapping]] = ..., tenant: _Optional[str] = ...) -> None: ...

class StartRolloutRequest(_message.Message):
    __slots__ = ("release_sha256", "spec", "stable_release_sha256", "tenant", "reason")
    RELEASE_SHA256_FIELD_NUMBER: _ClassVar[int]
    SPEC_FIELD_NUMBER: _ClassVar[int]
    STABLE_RELEASE_SHA256_FIELD_NUMBER: _ClassVar[int]
    TENANT_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    release_sha256: str
    spec: RolloutSpec
    stable_release_sha256: str
    tenant: str
    reason: str
    def __init__(self, release_sha256: _Optional[str] = ..., spec: _Optional[_Union[RolloutSpec, _Mapping]] = ..., stable_release_sha256: _Optional[str] = ..., tenant: _Optional[str] = ..., reason: _Optional[str] = ...) -> None: ...

class GetRolloutRequest(_message.Message):
    __slots__ = ("rollout_id",)
    ROLLOUT_ID_FIELD_NUMBER: _ClassVar[int]
    rollout_id: str
    def __init__(self, rollout_id: _Optional[str] = ...) -> None: ...

class WatchRolloutRequest(_message.Message):
    __slots__ = ("rollout_id",)
    ROLLOUT_ID_FIELD_NUMBER: _ClassVar[int]
    rollout_id: str
    def __init__(self, rollout_id: _Optional[str] = ...) -> None: ...

class ListRolloutsRequest(_message.Message):
    __slots__ = ("tenant", "release_sha256", "active_only")
    TENANT_FIELD_NUMBER: _ClassVar[int]
    RELEASE_SHA256_FIELD_NUMBER: _ClassVar[int]
    ACTIVE_ONLY_FIELD_NUMBER: _ClassVar[int]
    tenant: str
    release_sha256: str
    active_only: bool
    def __init__(self, tenant: _Optional[str] = ..., release_sha256: _Optional[str] = ..., active_only: _Optional[bool] = ...) -> None: ...

class LiveRouting(_message.Message):
    __slots__ = ("tenant", "release_sha256", "routing_classes", "candidate_release_sha256", "candidate_weight_bp", "shadow", "routing_version")
    TENANT_FIELD_NUMBER: _ClassVar[int]
    RELEASE_SHA256_FIELD_NUMBER: _ClassVar[int]
    ROUTING_CLASSES_FIELD_NUMBER: _ClassVar[int]
    CANDIDATE_RELEASE_SHA256_FIELD_NUMBER: _ClassVar[int]
    CANDIDATE_WEIGHT_BP_FIELD_NUMBER: _ClassVar[int]
    SHADOW_FIELD_NUMBER: _ClassVar[int]
    ROUTING_VERSION_FIELD_NUMBER: _ClassVar[int]
    tenant: str
    release_sha256: str
    routing_classes: _containers.RepeatedScalarFieldContainer[str]
    candidate_release_sha256: str
    candidate_weight_bp: int
    shadow: bool
    routing_version: int
    def __init__(self, tenant: _Optional[str] = ..., release_sha256: _Optional[str] = ..., routing_classes: _Optional[_Iterable[str]] = ..., candidate_release_sha256: _Optional[str] = ..., candidate_weight_bp: _Optional[int] = ..., shadow: _Optional[bool] = ..., routing_version: _Optional[int] = ...) -> None: ...

class ListRolloutsResponse(_message.Message):
    __slots__ = ("rollouts", "live")
    ROLLOUTS_FIELD_NUMBER: _ClassVar[int]
    LIVE_FIELD_NUMBER: _ClassVar[int]
    rollouts: _containers.RepeatedCompositeFieldContainer[Rollout]
    live: LiveRouting
    def __init__(self, rollouts: _Optional[_Iterable[_Union[Rollout, _Mapping]]] = ..., live: _Optional[_Union[LiveRouting, _Mapping]] = ...) -> None: ...

class RolloutEvent(_message.Message):
    __slots__ = ("rollout", "receipt")
    ROLLOUT_FIELD_NUMBER: _ClassVar[int]
    RECEIPT_FIELD_NUMBER: _ClassVar[int]
    rollout: Rollout
    receipt: _common_pb2.Receipt
    def __init__(self, rollout: _Optional[_Union[Rollout, _Mapping]] = ..., receipt: _Optional[_Union[_common_pb2.Receipt, _Mapping]] = ...) -> None: ...

class RolloutControlRequest(_message.Message):
    __slots__ = ("rollout_id", "reason")
    ROLLOUT_ID_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    rollout_id: str
    reason: str
    def __init__(self, rollout_id: _Optional[str] = ..., reason: _Optional[str] = ...) -> None: ...

class RollbackRequest(_message.Message):
    __slots__ = ("target_release_sha256", "reason", "tenant")
    TARGET_RELEASE_SHA256_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    TENANT_FIELD_NUMBER: _ClassVar[int]
    target_release_sha256: str
    reason: str
    tenant: str
    def __init__(self, target_release_sha256: _Optional[str] = ..., reason: _Optional[str] = ..., tenant: _Optional[str] = ...) -> None: ...

class RollbackResponse(_message.Message):
    __slots__ = ("receipt", "routing_version")
    RECEIPT_FIELD_NUMBER: _ClassVar[int]
    ROUTING_VERSION_FIELD_NUMBER: _ClassVar[int]
    receipt: _common_pb2.Receipt
    routing_version: int
    def __init__(self, receipt: _Optional[_Union[_common_pb2.Receipt, _Mapping]] = ..., routing_version: _Optional[int] = ...) -> None: ...
