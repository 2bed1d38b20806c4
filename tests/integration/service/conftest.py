"""Fixtures: a real relgate server (in-process on port 0, or `relgate serve` subprocesses
on free ports) over a real SQLite store, and clients holding keys of each role."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from relgate.client import RelgateClient
from relgate.service.server import BackgroundServer, RunningServer
from service_helpers import ServeProcess, start_serve


@pytest.fixture
def server(tmp_path: Path) -> Iterator[RunningServer]:
    """A server on its own loop thread, ports 0, SQLite in tmp_path/data."""
    with BackgroundServer(tmp_path / "data") as running:
        yield running


@pytest.fixture
def admin_key(server: RunningServer) -> str:
    assert server.admin_key_path is not None
    return server.admin_key_path.read_text().strip()


@pytest.fixture
def admin(server: RunningServer, admin_key: str) -> Iterator[RelgateClient]:
    with RelgateClient(server.address, api_key=admin_key, timeout=30) as client:
        yield client


@pytest.fixture
def client_for(
    server: RunningServer, admin: RelgateClient
) -> Iterator[Callable[..., RelgateClient]]:
    """Factory: a client holding a fresh key of `role` (and `tenant`)."""
    made: list[RelgateClient] = []

    def make(role: str, tenant: str = "") -> RelgateClient:
        key = admin.create_key(role, name=f"test-{role}", tenant=tenant).key
        client = RelgateClient(server.address, api_key=key, timeout=30)
        made.append(client)
        return client

    yield make
    for client in made:
        client.close()


@pytest.fixture
def serve_process(tmp_path: Path) -> Iterator[Callable[..., ServeProcess]]:
    """Factory for `relgate serve` subprocesses; all are killed at teardown."""
    started: list[ServeProcess] = []

    def start(data_dir: Path | None = None, *extra: str) -> ServeProcess:
        sp = start_serve(data_dir or tmp_path / "data", *extra)
        started.append(sp)
        return sp

    yield start
    for sp in started:
        if sp.proc.poll() is None:
            sp.proc.kill()
            sp.proc.wait()
        for pipe in (sp.proc.stdout, sp.proc.stderr):
            if pipe is not None:
                pipe.close()
