"""Fixtures: the real embedding judge (loaded once), a control plane on loopback with a short
worker lease, and worker keys."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

pytest.importorskip("torch")
pytest.importorskip("transformers")

from relgate.access import Role
from relgate.app.jobs import Dispatcher
from relgate.judge.base import Judge
from relgate.service.auth import create_key
from relgate.service.server import BackgroundServer, RunningServer

# Short enough that a killed worker's job moves on within a test, long enough that a worker
# on a busy 2-core machine keeps its lease between heartbeats (a quarter of it).
LEASE_S = 2.0


@pytest.fixture(scope="session")
def judge() -> Judge:
    """The gate's CPU judge on the shipped MiniLM model."""
    from relgate.judge.embedding import EmbeddingJudge

    return EmbeddingJudge()


@pytest.fixture(scope="module")
def control(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    """A relgate server (no gateway) whose dispatcher leases jobs for LEASE_S seconds."""
    background = BackgroundServer(
        tmp_path_factory.mktemp("control"), gateway_port=None, workers=Dispatcher(lease_s=LEASE_S)
    )
    server = background.start()
    try:
        yield server
    finally:
        background.stop(grace=1.0)


@pytest.fixture
def worker_key(control: RunningServer) -> str:
    """A fresh key of role worker."""
    return create_key(control.store.keys, role=Role.WORKER, name="worker")


@pytest.fixture
def small_suite(tmp_path: Path) -> Path:
    """The first 120 rows of the demo suite (whole items), as a suite file."""
    import polars as pl
    from relgate.data import demo_suite_path

    out = tmp_path / "suite.csv"
    pl.read_csv(demo_suite_path()).head(120).write_csv(out)
    return out
