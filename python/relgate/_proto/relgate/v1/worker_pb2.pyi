from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class JobKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    JOB_KIND_UNSPECIFIED: _ClassVar[JobKind]
    JOB_KIND_SCORE: _ClassVar[JobKind]
    JOB_KIND_REPLAY: _ClassVar[JobKind]
JOB_KIND_UNSPECIFIED: JobKind
JOB_KIND_SCORE: JobKind
JOB_KIND_REPLAY: JobKind

class RegisterWorkerRequest(_message.Message):
    __slots__ = ("name", "backends", "model", "judge_sha256", "judge_description_json", "capacity")
    NAME_FIELD_NUMBER: _ClassVar[int]
    BACKENDS_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    JUDGE_SHA256_FIELD_NUMBER: _ClassVar[int]
    JUDGE_DESCRIPTION_JSON_FIELD_NUMBER: _ClassVar[int]
    CAPACITY_FIELD_NUMBER: _ClassVar[int]
    name: str
    backends: _containers.RepeatedScalarFieldContainer[str]
    model: str
    judge_sha256: str
    judge_description_json: str
    capacity: int
    def __init__(self, name: _Optional[str] = ..., backends: _Optional[_Iterable[str]] = ..., model: _Optional[str] = ..., judge_sha256: _Optional[str] = ..., judge_description_json: _Optional[str] = ..., capacity: _Optional[int] = ...) -> None: ...

class RegisterWorkerResponse(_message.Message):
    __slots__ = ("worker_id", "heartbeat_interval_s", "lease_s")
    WORKER_ID_FIELD_NUMBER: _ClassVar[int]
    HEARTBEAT_INTERVAL_S_FIELD_NUMBER: _ClassVar[int]
    LEASE_S_FIELD_NUMBER: _ClassVar[int]
    worker_id: str
    heartbeat_interval_s: float
    lease_s: float
    def __init__(self, worker_id: _Optional[str] = ..., heartbeat_interval_s: _Optional[float] = ..., lease_s: _Optional[float] = ...) -> None: ...

class HeartbeatRequest(_message.Message):
    __slots__ = ("worker_id", "job_ids")
    WORKER_ID_FIELD_NUMBER: _ClassVar[int]
    JOB_IDS_FIELD_NUMBER: _ClassVar[int]
    worker_id: str
    job_ids: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, worker_id: _Optional[str] = ..., job_ids: _Optional[_Iterable[str]] = ...) -> None: ...

class HeartbeatResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class PullJobsRequest(_message.Message):
    __slots__ = ("worker_id", "max_jobs", "wait_ms")
    WORKER_ID_FIELD_NUMBER: _ClassVar[int]
    MAX_JOBS_FIELD_NUMBER: _ClassVar[int]
    WAIT_MS_FIELD_NUMBER: _ClassVar[int]
    worker_id: str
    max_jobs: int
    wait_ms: int
    def __init__(self, worker_id: _Optional[str] = ..., max_jobs: _Optional[int] = ..., wait_ms: _Optional[int] = ...) -> None: ...

class ReplayBatch(_message.Message):
    __slots__ = ("endpoint", "model", "system", "prompts", "answer_index", "timeout_s")
    ENDPOINT_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    SYSTEM_FIELD_NUMBER: _ClassVar[int]
    PROMPTS_FIELD_NUMBER: _ClassVar[int]
    ANSWER_INDEX_FIELD_NUMBER: _ClassVar[int]
    TIMEOUT_S_FIELD_NUMBER: _ClassVar[int]
    endpoint: str
    model: str
    system: str
    prompts: _containers.RepeatedScalarFieldContainer[str]
    answer_index: _containers.RepeatedScalarFieldContainer[int]
    timeout_s: float
    def __init__(self, endpoint: _Optional[str] = ..., model: _Optional[str] = ..., system: _Optional[str] = ..., prompts: _Optional[_Iterable[str]] = ..., answer_index: _Optional[_Iterable[int]] = ..., timeout_s: _Optional[float] = ...) -> None: ...

class Job(_message.Message):
    __slots__ = ("job_id", "kind", "judge_sha256", "answers", "references", "replay")
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    JUDGE_SHA256_FIELD_NUMBER: _ClassVar[int]
    ANSWERS_FIELD_NUMBER: _ClassVar[int]
    REFERENCES_FIELD_NUMBER: _ClassVar[int]
    REPLAY_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    kind: JobKind
    judge_sha256: str
    answers: _containers.RepeatedScalarFieldContainer[str]
    references: _containers.RepeatedScalarFieldContainer[str]
    replay: ReplayBatch
    def __init__(self, job_id: _Optional[str] = ..., kind: _Optional[_Union[JobKind, str]] = ..., judge_sha256: _Optional[str] = ..., answers: _Optional[_Iterable[str]] = ..., references: _Optional[_Iterable[str]] = ..., replay: _Optional[_Union[ReplayBatch, _Mapping]] = ...) -> None: ...

class PullJobsResponse(_message.Message):
    __slots__ = ("jobs",)
    JOBS_FIELD_NUMBER: _ClassVar[int]
    jobs: _containers.RepeatedCompositeFieldContainer[Job]
    def __init__(self, jobs: _Optional[_Iterable[_Union[Job, _Mapping]]] = ...) -> None: ...

class SubmitResultRequest(_message.Message):
    __slots__ = ("worker_id", "job_id", "scores", "answers", "error", "seconds", "tokens")
    WORKER_ID_FIELD_NUMBER: _ClassVar[int]
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    SCORES_FIELD_NUMBER: _ClassVar[int]
    ANSWERS_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    SECONDS_FIELD_NUMBER: _ClassVar[int]
    TOKENS_FIELD_NUMBER: _ClassVar[int]
    worker_id: str
    job_id: str
    scores: _containers.RepeatedScalarFieldContainer[float]
    answers: _containers.RepeatedScalarFieldContainer[str]
    error: str
    seconds: float
    tokens: int
    def __init__(self, worker_id: _Optional[str] = ..., job_id: _Optional[str] = ..., scores: _Optional[_Iterable[float]] = ..., answers: _Optional[_Iterable[str]] = ..., error: _Optional[str] = ..., seconds: _Optional[float] = ..., tokens: _Optional[int] = ...) -> None: ...

class SubmitResultResponse(_message.Message):
    __slots__ = ("accepted",)
    ACCEPTED_FIELD_NUMBER: _ClassVar[int]
    accepted: bool
    def __init__(self, accepted: _Optional[bool] = ...) -> None: ...
