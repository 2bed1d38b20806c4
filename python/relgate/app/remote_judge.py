"""A ``Judge`` whose scores come from workers, through the dispatcher.

The gate and the monitors call ``score(answers, references)`` exactly as they call an
in-process judge; the call is cut into jobs of ``batch_rows`` pairs, queued for the workers
that run this judge (same ``judge_sha256``; in the store when the server runs the dispatcher,
so a worker of any control-plane replica may answer), and waited for with a deadline. A
deadline that passes, with no live worker or a slow one, is a ``JudgeUnavailableError``: the
gate fails the call, and the quality monitor reads it as INCONCLUSIVE
(``relgate.rollout.replay``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from relgate.access import acting_tenant
from relgate.app.jobs import Dispatcher
from relgate.errors import InvalidInputError, JudgeError, JudgeUnavailableError
from relgate.judge import make_judge
from relgate.judge.base import Judge, check_pairs, check_scores
from relgate.judge.jobs import REPLAY, SCORE, JobResult, JobSpec

if TYPE_CHECKING:
    from relgate.app.gates import GateOptions
    from relgate.gate.sources import JudgeChoice

__all__ = ["RemoteJudge", "with_workers"]


class RemoteJudge:
    """The judge ``judge_sha256`` as served by workers (see the module docstring)."""

    def __init__(
        self,
        dispatcher: Dispatcher,
        judge_sha256: str,
        *,
        description: Mapping[str, Any] | None = None,
        timeout: float = 60.0,
        batch_rows: int = 256,
    ) -> None:
        if batch_rows < 1:
            raise InvalidInputError(f"batch_rows must be >= 1, got {batch_rows}")
        if timeout <= 0:
            raise InvalidInputError(f"remote judge timeout must be positive, got {timeout}")
        self._dispatcher = dispatcher
        self._sha = judge_sha256
        self._description = dict(description) if description is not None else None
        self.timeout = timeout
        self.batch_rows = batch_rows
        # Tokens the workers report having processed for this judge's calls (benchmarks).
        self.tokens_processed = 0

    @property
    def judge_sha256(self) -> str:
        """The workers' judge identity: results of any other judge are never used."""
        return self._sha

    @property
    def description(self) -> Mapping[str, Any]:
        """What a live worker of this judge registered (JudgeUnavailableError when none)."""
        if self._description is None:
            found = self._dispatcher.describe(self._sha)
            if found is None:
                raise JudgeUnavailableError(f"no live worker runs judge {self._sha[:12]}")
            self._description = dict(found)
        return self._description

    def _chunks(self, n: int) -> list[slice]:
        return [slice(i, min(n, i + self.batch_rows)) for i in range(0, n, self.batch_rows)]

    def score(self, answers: Sequence[str], references: Sequence[str]) -> npt.NDArray[np.float64]:
        """Agreement of each pair, scored by workers (in [0, 1])."""
        check_pairs(answers, references)
        if not answers:
            return np.zeros(0, dtype=np.float64)
        specs = [
            JobSpec(SCORE, self._sha, tuple(answers[s]), tuple(references[s]), tenant=_tenant())
            for s in self._chunks(len(answers))
        ]
        results = self._dispatcher.run(specs, self.timeout)
        self.tokens_processed += sum(r.tokens for r in results)
        if self._description is None:
            # Remember who answered: the gate records the description after the workers
            # may have gone.
            found = self._dispatcher.describe(self._sha)
            self._description = dict(found) if found is not None else None
        scores = np.concatenate([np.asarray(r.scores, dtype=np.float64) for r in results])
        return check_scores(scores, "remote")

    def agree(self, answer: str, reference: str) -> float:
        """Agreement of one pair."""
        return float(self.score([answer], [reference])[0])

    def replay(
        self,
        prompts: Sequence[str],
        answer_index: Sequence[int],
        references: Sequence[str],
        *,
        endpoint: str,
        model: str,
        system: str = "",
        timeout_s: float = 60.0,
    ) -> tuple[list[str], npt.NDArray[np.float64]]:
        """Have a worker ask the candidate's ``endpoint`` for an answer per prompt, then score
        ``answer[answer_index[i]]`` against ``references[i]``. Returns (answers, scores)."""
        if len(answer_index) != len(references):
            raise InvalidInputError("replay: answer_index and references must pair up")
        if any(not 0 <= i < len(prompts) for i in answer_index):
            raise InvalidInputError("replay: answer_index points outside the prompts")
        spec = JobSpec(
            REPLAY,
            self._sha,
            references=tuple(references),
            tenant=_tenant(),
            replay={
                "endpoint": endpoint,
                "model": model,
                "system": system,
                "prompts": list(prompts),
                "answer_index": [int(i) for i in answer_index],
                "timeout_s": timeout_s,
            },
        )
        result: JobResult = self._dispatcher.run([spec], self.timeout)[0]
        scores = check_scores(np.asarray(result.scores, dtype=np.float64), "remote")
        return list(result.answers), scores


def _tenant() -> str:
    """The tenant whose data a job carries (workers of other tenants never receive it)."""
    tenant = acting_tenant()
    if tenant is None:
        raise JudgeError(
            "a worker judge scores only on behalf of a tenant (relgate.access.acting_as)"
        )
    return tenant


def with_workers(options: GateOptions, dispatcher: Dispatcher) -> GateOptions:
    """Gate options whose judge factory builds a `RemoteJudge` for backend ``worker``
    (options ``judge_sha256``, ``timeout``, ``batch_rows``); every other backend is built as
    before (in process)."""
    inner = options.judge_factory or (lambda c: make_judge(c.backend, **dict(c.options)))

    def factory(choice: JudgeChoice) -> Judge:
        if choice.backend != "worker":
            return inner(choice)
        opts = dict(choice.options)
        sha = opts.pop("judge_sha256", None)
        if not isinstance(sha, str):
            raise InvalidInputError("a worker judge needs options.judge_sha256")
        return RemoteJudge(dispatcher, sha, **opts)

    return dataclasses.replace(options, judge_factory=factory)
