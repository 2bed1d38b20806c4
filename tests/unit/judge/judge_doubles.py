"""Test doubles for judge tests (named as such: they stand in for a real judge)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt


class WordOverlapJudge:
    """TEST DOUBLE judge: Jaccard overlap of lower-cased words; counts the pairs it scores."""

    backend = "test-double"

    def __init__(self, sha: str = "0" * 64) -> None:
        self._sha = sha
        self.pairs_scored = 0

    @property
    def judge_sha256(self) -> str:
        return self._sha

    @property
    def description(self) -> Mapping[str, Any]:
        return {"backend": self.backend}

    def score(self, answers: Sequence[str], references: Sequence[str]) -> npt.NDArray[np.float64]:
        self.pairs_scored += len(answers)
        out = []
        for a, r in zip(answers, references, strict=True):
            wa, wr = set(a.lower().split()), set(r.lower().split())
            out.append(len(wa & wr) / len(wa | wr) if wa | wr else 0.0)
        return np.asarray(out, dtype=np.float64)

    def agree(self, answer: str, reference: str) -> float:
        return float(self.score([answer], [reference])[0])
