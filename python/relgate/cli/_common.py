"""Shared CLI plumbing: connection options, error handling with one exit code per error
class, and output (`--json` for machines, rich tables for people)."""

from __future__ import annotations

import functools
import inspect
import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn, ParamSpec, TypeVar

import typer
from rich.console import Console
from rich.table import Table

from relgate import errors

if TYPE_CHECKING:
    from relgate.client import RelgateClient

P = ParamSpec("P")
T = TypeVar("T")

# One exit code per error class (most specific class wins), so scripts can branch on them.
# 1 is any other relgate error (e.g. an unreachable server), 2 is a usage error (typer).
EXIT_CODES: tuple[tuple[type[errors.RelgateError], int], ...] = (
    (errors.ManifestConflictError, 4),
    (errors.ManifestError, 3),
    (errors.InvalidInputError, 3),
    (errors.NotFoundError, 5),
    (errors.AuthError, 6),
    (errors.IntegrityError, 7),
    (errors.InvalidTransitionError, 8),
    (errors.GateError, 8),
    (errors.JudgeError, 9),
)

ServerOpt = Annotated[
    str | None,
    typer.Option(
        "--server",
        envvar="RELGATE_SERVER",
        help="gRPC address of the relgate server [default: 127.0.0.1:50051].",
        show_default=False,
    ),
]
ApiKeyOpt = Annotated[
    str | None,
    typer.Option(
        "--api-key",
        envvar="RELGATE_API_KEY",
        help="API key (prefer the RELGATE_API_KEY environment variable).",
        show_default=False,
    ),
]
TlsCaOpt = Annotated[
    Path | None,
    typer.Option("--tls-ca", help="PEM CA bundle to verify the server; implies --tls."),
]
TlsOpt = Annotated[bool, typer.Option("--tls", help="Connect with TLS (system CAs).")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Machine-readable JSON on stdout.")]
TenantOpt = Annotated[str, typer.Option("--tenant", help="Tenant [default: the key's own].")]

console = Console()
err_console = Console(stderr=True)


def exit_code(exc: errors.RelgateError) -> int:
    """The CLI exit code of an error."""
    for cls, code in EXIT_CODES:
        if isinstance(exc, cls):
            return code
    return 1


def fail(exc: errors.RelgateError) -> NoReturn:
    """Print one line on stderr and exit with the error's code."""
    message = " ".join(str(exc).split()) or type(exc).__name__
    sys.stderr.write(f"error: {message}\n")
    raise typer.Exit(exit_code(exc))


def handle_errors(fn: Callable[P, T]) -> Callable[P, T]:
    """Turn relgate errors (and unreadable files) into one stderr line and an exit code."""

    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> T:
        try:
            return fn(*args, **kwargs)
        except errors.RelgateError as exc:
            fail(exc)
        except OSError as exc:
            fail(errors.InvalidInputError(f"{exc.strerror or exc}: {exc.filename or ''}".strip()))

    return wrapper


@dataclass(frozen=True)
class Connection:
    """The --server, --api-key, --tls and --tls-ca options of one command."""

    server: str | None = None
    api_key: str | None = None
    tls: bool = False
    tls_ca: Path | None = None

    @contextmanager
    def client(self) -> Iterator[RelgateClient]:
        """A client for one command, closed on exit (imported lazily: offline commands need
        no gRPC)."""
        from relgate.client import RelgateClient

        client = RelgateClient(self.server, api_key=self.api_key, tls=self.tls, tls_ca=self.tls_ca)
        try:
            yield client
        finally:
            client.close()


# The options `with_connection` puts where a command's `conn` parameter stands.
_CONNECTION_OPTIONS: tuple[tuple[str, Any, Any], ...] = (
    ("server", ServerOpt, None),
    ("api_key", ApiKeyOpt, None),
    ("tls", TlsOpt, False),
    ("tls_ca", TlsCaOpt, None),
)


def with_connection(fn: Callable[..., T]) -> Callable[..., T]:
    """Give a command the four connection options as one `conn: Connection` parameter.

    Typer reads options from the signature and has no option groups, so the signature typer
    sees has `conn` replaced, in place, by --server/--api-key/--tls/--tls-ca (their order in
    --help is where `conn` stands); the command itself receives one `Connection`.
    """
    sig = inspect.signature(fn, eval_str=True)
    if "conn" not in sig.parameters:
        raise TypeError(f"{fn.__qualname__}: with_connection needs a `conn` parameter")
    params: list[inspect.Parameter] = []
    for param in sig.parameters.values():
        if param.name != "conn":
            params.append(param)
            continue
        params += [
            inspect.Parameter(name, param.kind, annotation=annotation, default=default)
            for name, annotation, default in _CONNECTION_OPTIONS
        ]

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> T:
        conn = Connection(*(kwargs.pop(name) for name, _, _ in _CONNECTION_OPTIONS))
        return fn(*args, conn=conn, **kwargs)

    # functools.wraps copied fn's annotations (with `conn`); typer must see the expanded ones.
    wrapper.__annotations__ = {p.name: p.annotation for p in params}
    wrapper.__annotations__["return"] = sig.return_annotation
    setattr(wrapper, "__signature__", sig.replace(parameters=params))  # noqa: B010
    return wrapper


def print_json(value: Any) -> None:
    """JSON on stdout, one document."""
    sys.stdout.write(json.dumps(value, indent=2, sort_keys=True) + "\n")


def print_table(title: str, columns: list[str], rows: list[list[str]]) -> None:
    """A rich table on stdout."""
    table = Table(title=title)
    for column in columns:
        table.add_column(column, overflow="fold")
    for row in rows:
        table.add_row(*row)
    console.print(table)
