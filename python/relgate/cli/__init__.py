"""The `relgate` command line. One module per command group; this one only assembles them."""

from __future__ import annotations

import typer

from relgate import __version__
from relgate.cli import bench, gate, judge, keys, receipts, release, roll, rollback, serve
from relgate.cli._common import RelgateGroup
from relgate.cli.attest import attest_app, reattest
from relgate.cli.gateway import gateway_cmd
from relgate.cli.judge_batch import RayOptionCommand
from relgate.cli.model import app as model_app
from relgate.cli.worker import worker_cmd

app = typer.Typer(
    name="relgate",
    help="relgate: register, gate, roll and observe LLM releases, with receipts.",
    no_args_is_help=True,
    cls=RelgateGroup,
    pretty_exceptions_enable=False,
    add_completion=False,
)


app.command("serve")(serve.serve)
app.add_typer(release.app, name="release")
app.add_typer(receipts.app, name="receipts")
app.add_typer(keys.app, name="keys")
app.add_typer(roll.app, name="roll")
app.add_typer(judge.app, name="judge")
app.add_typer(gate.app, name="gate")
app.add_typer(bench.app, name="bench")
app.add_typer(model_app, name="model")
app.add_typer(
    attest_app,
    name="attest",
    help="Attest open weights (tensor-merkle-blake3-v1). `relgate attest PATH [--json]` hashes "
    "PATH (one safetensors/GGUF file, a directory or a sharded index) and prints its root; "
    "`attest verify|prove` check a root or prove one tensor.",
)
app.command("reattest", cls=RayOptionCommand)(reattest)
app.command("rollback")(rollback.rollback)
app.command("status")(roll.overview)
app.command("worker")(worker_cmd)
app.command("gateway")(gateway_cmd)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"relgate {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print the version and exit."
    ),
) -> None:
    """relgate: a release pipeline for LLMs."""


def main() -> None:
    """Entry point of the `relgate` script."""
    app()
