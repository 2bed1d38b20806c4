"""Judges: ``agree(answer, reference) -> [0, 1]``, batched, each with a ``judge_sha256``.

Backends are imported lazily: ``relgate.judge`` itself needs neither torch nor transformers.
``make_judge`` builds a judge by backend name.
"""

from __future__ import annotations

from typing import Any

from relgate.judge.base import Judge, judge_sha256
from relgate.judge.cache import ScoreCache, score_rows

__all__ = ["Judge", "ScoreCache", "judge_sha256", "make_judge", "score_rows"]

BACKENDS = ("embedding", "openai", "transformers", "vllm")


def make_judge(backend: str, **options: Any) -> Judge:
    """Build a judge: ``embedding`` (CPU default), ``openai`` (an OpenAI-compatible endpoint:
    ``base_url=``, ``model=``), ``transformers`` (``model=`` path or repo) or ``vllm``."""
    if backend == "embedding":
        from relgate.judge.embedding import EmbeddingJudge

        return EmbeddingJudge(**options)
    if backend == "openai":
        from relgate.judge.llm import OpenAIJudge

        return OpenAIJudge(**options)
    if backend == "transformers":
        from relgate.judge.llm import TransformersJudge

        return TransformersJudge(**options)
    if backend == "vllm":
        from relgate.judge.llm import VLLMJudge

        return VLLMJudge(**options)
    from relgate.errors import InvalidInputError

    raise InvalidInputError(f"unknown judge backend {backend!r}; one of {', '.join(BACKENDS)}")
