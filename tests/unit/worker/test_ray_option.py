"""`--ray [ADDRESS]`: alone it means a local Ray instance; a following token is the address
only when it looks like one, so a checkpoint path right after `--ray` stays a path."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from relgate.cli import app
from relgate.scale.reattest import ReattestEntry
from typer.testing import CliRunner


@pytest.mark.parametrize(
    ("args", "address", "paths"),
    [
        (["--ray", "{a}"], "local", ["{a}"]),
        (["{a}", "--ray"], "local", ["{a}"]),
        (["--ray", "ray://head:10001", "{a}"], "ray://head:10001", ["{a}"]),
        (["--ray", "10.0.0.5:6379", "{a}"], "10.0.0.5:6379", ["{a}"]),
        (["--ray", "auto", "{a}"], "auto", ["{a}"]),
    ],
)
def test_ray_option_value_is_optional(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, args: list[str], address: str, paths: list[str]
) -> None:
    a = str(tmp_path / "a.safetensors")
    seen: dict[str, Any] = {}

    def fake(
        todo: list[str], expect: Any, *, address: str, on_done: Any, cache_dir: Any = None
    ) -> list[ReattestEntry]:
        seen.update(todo=todo, address=address)
        return [ReattestEntry(p, "new", "0" * 64, None, 1, 8, 0.0) for p in todo]

    monkeypatch.setattr("relgate.scale.ray_tasks.ray_reattest", fake)
    result = CliRunner().invoke(app, ["reattest", *[x.format(a=a) for x in args], "--json"])
    assert result.exit_code == 0, result.output
    assert seen == {"todo": [p.format(a=a) for p in paths], "address": address}
