"""The CLI uses the default leaf cache: keep it out of the home directory."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _private_leaf_cache(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RELGATE_CACHE_DIR", str(tmp_path_factory.mktemp("leaf-cache")))
