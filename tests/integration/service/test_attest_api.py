"""Attest: releaser-only, clear errors for bad paths."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from relgate import errors
from relgate.client import RelgateClient


def test_attest_bad_paths(admin: RelgateClient, tmp_path: Path) -> None:
    with pytest.raises(errors.InvalidInputError, match="path is required"):
        admin.attest("")
    with pytest.raises(errors.NotFoundError, match="no such file"):
        admin.attest(str(tmp_path / "missing.safetensors"))


def test_attest_needs_releaser(client_for: Callable[..., RelgateClient], tmp_path: Path) -> None:
    with pytest.raises(errors.AuthError, match="needs releaser"):
        client_for("viewer").attest(str(tmp_path))
