"""Server factory edge cases: port clashes, restarts on the same data dir."""

from __future__ import annotations

from pathlib import Path

import pytest
from relgate import errors
from relgate.client import RelgateClient
from relgate.service.server import BackgroundServer, RunningServer
from service_helpers import manifest_bytes


def test_port_in_use_is_a_clear_error(server: RunningServer, tmp_path: Path) -> None:
    with pytest.raises(errors.InvalidInputError, match="cannot bind gRPC"):
        BackgroundServer(tmp_path / "other", grpc_port=server.grpc_port).start()
    with pytest.raises(errors.InvalidInputError, match="web port"):
        BackgroundServer(tmp_path / "third", web_port=server.web_port).start()


def test_restart_keeps_state_and_admin_key(tmp_path: Path) -> None:
    data = tmp_path / "data"
    with BackgroundServer(data) as first:
        assert first.admin_key_path is not None
        key = first.admin_key_path.read_text().strip()
        with RelgateClient(first.address, api_key=key) as client:
            sha = client.register_release(manifest_bytes(1)).release.sha256
    with BackgroundServer(data) as second:
        assert second.admin_key_path is not None
        assert second.admin_key_path.read_text().strip() == key
        with RelgateClient(second.address, api_key=key) as client:
            assert client.get_release(sha).sha256 == sha
            assert client.verify_receipts().ok
    assert (data / "receipt_signing.key").stat().st_mode & 0o777 == 0o600
