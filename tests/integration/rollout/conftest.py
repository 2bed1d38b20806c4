"""Fixtures: the real embedding judge (loaded once), and a server + test backends per test."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from relgate.judge.base import Judge
from rollout_helpers import Env, start_env


@pytest.fixture(scope="session")
def judge() -> Judge:
    """The gate's CPU judge on the shipped MiniLM model."""
    from relgate.judge.embedding import EmbeddingJudge

    return EmbeddingJudge()


@pytest.fixture
def env(tmp_path: Path, judge: Judge) -> Iterator[Env]:
    """Server (gRPC, gateway, SQLite, manual clock) and backends b1 (stable), b2 (candidate)."""
    yield from start_env(tmp_path, lambda: judge)
