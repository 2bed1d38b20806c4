"""`with_connection`: one `conn` parameter becomes the four connection options, in place."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import pytest
import typer
from relgate.cli._common import Connection, JsonOpt, with_connection
from typer.testing import CliRunner


def _command() -> typer.Typer:
    app = typer.Typer()
    seen: list[tuple[Connection, str, bool]] = []

    @app.command()
    @with_connection
    def cmd(
        name: Annotated[str, typer.Argument()],
        *,
        conn: Connection,
        json_out: JsonOpt = False,
    ) -> None:
        seen.append((conn, name, json_out))
        typer.echo(repr(conn))

    app.seen = seen  # type: ignore[attr-defined]
    return app


def test_options_reach_the_command_as_one_connection(tmp_path: Path) -> None:
    app = _command()
    ca = tmp_path / "ca.pem"
    result = CliRunner().invoke(
        app,
        ["x", "--server", "h:1", "--api-key", "k", "--tls", "--tls-ca", str(ca), "--json"],
        env={"RELGATE_SERVER": "", "RELGATE_API_KEY": ""},
    )
    assert result.exit_code == 0, result.output
    assert app.seen == [(Connection("h:1", "k", True, ca), "x", True)]  # type: ignore[attr-defined]


def test_defaults_and_environment() -> None:
    app = _command()
    result = CliRunner().invoke(app, ["x"], env={"RELGATE_SERVER": "env:2", "RELGATE_API_KEY": ""})
    assert result.exit_code == 0, result.output
    assert app.seen == [(Connection("env:2", None, False, None), "x", False)]  # type: ignore[attr-defined]


def test_help_lists_the_options_where_conn_stands() -> None:
    result = CliRunner().invoke(_command(), ["--help"], env={"COLUMNS": "200", "NO_COLOR": "1"})
    out = result.output
    order = [out.index(opt) for opt in ("--server", "--api-key", "--tls ", "--tls-ca", "--json")]
    assert order == sorted(order)


def test_a_command_without_conn_is_refused() -> None:
    def no_conn(json_out: bool = False) -> None:
        pass

    with pytest.raises(TypeError, match="conn"):
        with_connection(no_conn)
