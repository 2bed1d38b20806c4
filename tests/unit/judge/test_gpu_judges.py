"""GPU judges (marked ``gpu``, off by default; run with ``-m gpu`` on a GPU node).

``RELGATE_TEST_LLM`` names a local chat model directory (e.g. a small instruct model already on
the node; nothing is downloaded). The vLLM judge and the transformers judge must agree on it:
both read P(yes) after the same prompt.
"""

from __future__ import annotations

import os

import numpy as np
import pytest

pytestmark = pytest.mark.gpu

MODEL = os.environ.get("RELGATE_TEST_LLM")
PAIRS = (
    ["Paris is the capital of France.", "The moon is made of cheese.", "I can't help with that."],
    ["The capital of France is Paris.", "The moon is made of rock.", "The capital is Paris."],
)


@pytest.fixture(scope="module")
def model() -> str:
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device")
    if not MODEL:
        pytest.skip("RELGATE_TEST_LLM (a local model directory) is not set")
    return MODEL


def test_transformers_judge_on_cuda_separates_agreement(model: str) -> None:
    from relgate.judge.llm import TransformersJudge

    scores = TransformersJudge(model, device="cuda").score(*PAIRS)
    assert scores[0] > 0.5 > scores[1] and scores[0] > scores[2]


def test_vllm_judge_matches_transformers(model: str) -> None:
    pytest.importorskip("vllm")
    from relgate.judge.llm import TransformersJudge, VLLMJudge

    vllm_scores = VLLMJudge(model, gpu_memory_utilization=0.5).score(*PAIRS)
    hf_scores = TransformersJudge(model, device="cuda", dtype="bfloat16").score(*PAIRS)
    np.testing.assert_allclose(vllm_scores, hf_scores, atol=0.05)
