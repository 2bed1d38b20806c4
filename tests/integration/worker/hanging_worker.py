"""A worker that takes one job and never finishes it (the test SIGKILLs it mid-job).

It announces the shipped embedding judge's identity (no model is loaded: the identity is the
weights' sha256) so the control plane leases it a real gate job.
argv: CONTROL_ADDRESS; the key comes in RELGATE_API_KEY.
"""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
from relgate.judge.embedding import EmbeddingJudge
from relgate.worker.runner import WorkerRunner


class HangingJudge:
    def __init__(self) -> None:
        real = EmbeddingJudge()
        self.judge_sha256 = real.judge_sha256
        self.description: Mapping[str, Any] = real.description

    def score(self, answers: Sequence[str], references: Sequence[str]) -> npt.NDArray[np.float64]:
        sys.stdout.write("holding a job\n")
        sys.stdout.flush()
        threading.Event().wait()  # until killed
        raise AssertionError("unreachable")

    def agree(self, answer: str, reference: str) -> float:
        return float(self.score([answer], [reference])[0])


if __name__ == "__main__":
    runner = WorkerRunner(sys.argv[1], os.environ["RELGATE_API_KEY"], HangingJudge(), name="hang")
    runner.run(threading.Event())
