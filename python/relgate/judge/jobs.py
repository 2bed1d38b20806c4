"""Judge jobs: what a batch of judge work asks (``JobSpec``) and what a worker answers
(``JobResult``). The control plane queues them (``relgate.app.jobs``), workers run them
(``relgate.worker``), and ``relgate.wire.worker`` carries them over gRPC."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["REPLAY", "SCORE", "JobResult", "JobSpec"]

SCORE = "score"
REPLAY = "replay"


@dataclass(frozen=True)
class JobSpec:
    """What a job asks: score pairs (``kind="score"``) or replay prompts and score them
    (``kind="replay"``, ``replay`` holds endpoint, model, system, prompts, answer_index)."""

    kind: str
    judge_sha256: str
    answers: tuple[str, ...] = ()
    references: tuple[str, ...] = ()
    replay: Mapping[str, Any] | None = None
    #: Whose data this is: only workers registered under a key of this tenant receive it.
    tenant: str = ""

    @property
    def rows(self) -> int:
        """Pairs this job scores."""
        return len(self.references)


@dataclass(frozen=True)
class JobResult:
    """A worker's answer to one job."""

    job_id: str
    worker_id: str
    scores: tuple[float, ...] = ()
    answers: tuple[str, ...] = ()
    error: str = ""
    seconds: float = 0.0
    tokens: int = 0
