"""One local Ray instance for the whole test session (its start costs seconds; every test and
every CLI call in this process reuses it), on loopback with two CPUs and no dashboard."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

pytest.importorskip("ray")


@pytest.fixture(scope="session")
def ray_local() -> Iterator[Any]:
    """The initialized ``ray`` module."""
    from relgate.scale.ray_tasks import init_ray

    ray = init_ray(None)
    try:
        yield ray
    finally:
        ray.shutdown()
