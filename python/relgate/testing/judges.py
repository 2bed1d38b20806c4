"""A TEST DOUBLE judge for tests and benchmarks: fast, deterministic, no model."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from relgate.errors import JudgeError

__all__ = ["WordOverlapJudge"]


class WordOverlapJudge:
    """TEST DOUBLE judge: Jaccard overlap of lower-cased words. Counts its calls and the pairs
    it scores; with ``fail_at=N`` its N-th call raises ``JudgeError`` (a judge lost mid-run)."""

    backend = "test-double"

    def __init__(self, sha: str = "0" * 64, *, fail_at: int | None = None) -> None:
        self._sha = sha
        self.fail_at = fail_at
        self.calls = 0
        self.pairs_scored = 0

    @property
    def judge_sha256(self) -> str:
        return self._sha

    @property
    def description(self) -> Mapping[str, Any]:
        return {"backend": self.backend}

    def score(self, answers: Sequence[str], references: Sequence[str]) -> npt.NDArray[np.float64]:
        self.calls += 1
        if self.calls == self.fail_at:
            raise JudgeError("overlap judge lost mid-run")
        self.pairs_scored += len(answers)
        out = []
        for a, r in zip(answers, references, strict=True):
            wa, wr = set(a.lower().split()), set(r.lower().split())
            out.append(len(wa & wr) / len(wa | wr) if wa | wr else 0.0)
        return np.asarray(out, dtype=np.float64)

    def agree(self, answer: str, reference: str) -> float:
        return float(self.score([answer], [reference])[0])
