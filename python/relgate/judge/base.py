"""The judge protocol and its identity.

A judge scores how much an answer agrees with a reference text, in [0, 1]. ``judge_sha256`` is
the judge's identity, recorded in gate results and receipts: SHA-256 over the RFC 8785 JSON of
``{backend, model, weights, prompt, settings}``, where ``weights`` identifies the exact weights
(the safetensors file's sha256 for a local model; the served model name for an endpoint, which
is all a client can know) and ``settings`` holds everything else that changes a score.
"""

from __future__ import annotations

import hashlib
import importlib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

from relgate.canonical import canonical_sha256, text_sha256
from relgate.errors import InvalidInputError, JudgeError, JudgeUnavailableError

__all__ = [
    "IdentifiedJudge",
    "Judge",
    "check_pairs",
    "check_scores",
    "file_sha256",
    "import_backend",
    "judge_sha256",
    "text_sha256",
]


@runtime_checkable
class Judge(Protocol):
    """What the gate needs from a judge."""

    @property
    def judge_sha256(self) -> str:
        """Identity of the judge (model, weights, prompt, settings)."""
        ...

    @property
    def description(self) -> Mapping[str, Any]:
        """The JSON-able record ``judge_sha256`` is computed over."""
        ...

    def score(self, answers: Sequence[str], references: Sequence[str]) -> npt.NDArray[np.float64]:
        """Agreement of ``answers[i]`` with ``references[i]``, each in [0, 1]."""
        ...

    def agree(self, answer: str, reference: str) -> float:
        """Agreement of one answer with one reference, in [0, 1]."""
        ...


class IdentifiedJudge:
    """What every judge shares: its identity (set once with ``_identify``) and ``agree`` as a
    one-pair ``score``. Subclasses implement ``score``."""

    backend = ""
    _sha: str
    _description: dict[str, Any]

    def _identify(
        self, *, model: str, weights: str, prompt: str, settings: Mapping[str, Any]
    ) -> None:
        self._sha, self._description = judge_sha256(self.backend, model, weights, prompt, settings)

    @property
    def judge_sha256(self) -> str:
        """Identity of the judge: model, weights, prompt, settings."""
        return self._sha

    @property
    def description(self) -> Mapping[str, Any]:
        """The record ``judge_sha256`` is computed over."""
        return self._description

    def score(self, answers: Sequence[str], references: Sequence[str]) -> npt.NDArray[np.float64]:
        """Agreement of ``answers[i]`` with ``references[i]``, each in [0, 1]."""
        raise NotImplementedError

    def agree(self, answer: str, reference: str) -> float:
        """Agreement of one answer with one reference, in [0, 1]."""
        return float(self.score([answer], [reference])[0])


def judge_sha256(
    backend: str, model: str, weights: str, prompt: str, settings: Mapping[str, Any]
) -> tuple[str, dict[str, Any]]:
    """Return ``(sha256, description)`` for a judge (see the module docstring)."""
    description = {
        "backend": backend,
        "model": model,
        "weights": weights,
        "prompt": prompt,
        "settings": dict(settings),
    }
    return canonical_sha256(description), description


def import_backend(module: str, what: str) -> Any:
    """Import an optional heavy dependency (torch, transformers, vllm) on first use.

    Through ``importlib`` so that ``relgate`` imports, and type-checks, without them.
    """
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        extra = "gpu" if module == "vllm" else "judge"
        raise JudgeUnavailableError(
            f"{what} needs {module}: pip install 'relgate[{extra}]'"
        ) from exc


def file_sha256(path: str | Path) -> str:
    """SHA-256 of a file, streamed (weights identity of a local model)."""
    digest = hashlib.sha256()
    with Path(path).open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def check_pairs(answers: Sequence[str], references: Sequence[str]) -> None:
    """Raise InvalidInputError unless the two sequences pair up."""
    if len(answers) != len(references):
        raise InvalidInputError(
            f"judge: {len(answers)} answers but {len(references)} references; they must pair up"
        )


def check_scores(scores: npt.NDArray[np.float64], backend: str) -> npt.NDArray[np.float64]:
    """A backend that returns a score outside [0, 1] (or NaN) is broken: say so, loudly."""
    bad = ~np.isfinite(scores) | (scores < 0.0) | (scores > 1.0)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise JudgeError(f"{backend} judge returned {scores[i]} for pair {i}; scores are in [0, 1]")
    return scores
