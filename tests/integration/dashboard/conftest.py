"""One server with the dashboard's test world per module (building it takes a few seconds)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from dashboard_helpers import World, build_world, start_server


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    """A running server with v1, v2, their gates, an override and a rolled-back rollout."""
    tmp: Path = tmp_path_factory.mktemp("dashboard")
    bg = start_server(tmp)
    running = bg.start()
    try:
        yield build_world(running)
    finally:
        bg.stop()
