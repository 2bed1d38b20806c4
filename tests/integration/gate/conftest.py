"""Fixtures: the real embedding judge (loaded once), one score cache for the whole session
(kept in pytest's cache directory, so the suite's few thousand rows are embedded once, not once
per test or per run; scores are keyed by item, answer, reference and judge sha256, so a cached
score is never stale), and the demo story gated once through the gRPC API."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

pytest.importorskip("torch")
pytest.importorskip("transformers")

from gate_helpers import GateEnv, gate_env
from relgate.demo.gate import GateChapter, gate_chapter
from relgate.judge.base import Judge
from rich.console import Console


@pytest.fixture(scope="session")
def judge() -> Judge:
    """The gate's CPU judge on the shipped MiniLM model."""
    from relgate.judge.embedding import EmbeddingJudge

    return EmbeddingJudge()


@pytest.fixture(scope="session")
def score_cache(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One SQLite score cache for every server of the session."""
    cache = getattr(request.config, "cache", None)
    root = cache.mkdir("relgate-gate-scores") if cache is not None else None
    return (root or tmp_path_factory.mktemp("scores")) / "scores.db"


@dataclass
class Story:
    """The demo chapter's outcome and the server it ran on."""

    env: GateEnv
    chapter: GateChapter
    output: str


@pytest.fixture(scope="module")
def story(
    tmp_path_factory: pytest.TempPathFactory, judge: Judge, score_cache: Path
) -> Iterator[Story]:
    """v1 and v2 registered and gated through the API (read-only for the tests using it)."""
    data = tmp_path_factory.mktemp("story")
    with gate_env(data / "data", lambda choice: judge, score_cache=score_cache) as env:
        console = Console(record=True, width=200)
        chapter = gate_chapter(console, env.admin)
        yield Story(env=env, chapter=chapter, output=console.export_text())
