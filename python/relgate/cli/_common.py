"""Shared CLI plumbing: connection options, error handling with one exit code per error
class, and output (`--json` for machines, rich tables for people)."""

from __future__ import annotations

import functools
import inspect
import json
import math
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn, ParamSpec, TypeVar

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from typer.core import TyperGroup

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
        metavar="HOST:PORT",
        help="gRPC address of the relgate server.",
        show_default="127.0.0.1:50051",
    ),
]
ApiKeyOpt = Annotated[
    str | None,
    typer.Option(
        "--api-key",
        envvar="RELGATE_API_KEY",
        metavar="KEY",
        help="API key (prefer the RELGATE_API_KEY environment variable).",
        show_default=False,
    ),
]
TlsCaOpt = Annotated[
    Path | None,
    typer.Option(
        "--tls-ca", metavar="PEM_FILE", help="PEM CA bundle to verify the server; implies --tls."
    ),
]
TlsOpt = Annotated[bool, typer.Option("--tls", help="Connect with TLS (system CAs).")]
JsonOpt = Annotated[
    bool,
    typer.Option("--json", help="Machine-readable JSON on stdout (plain values, null if missing)."),
]
TenantOpt = Annotated[
    str,
    typer.Option(
        "--tenant", metavar="TENANT", help="Tenant to act in.", show_default="the key's own"
    ),
]

# When stdout is not a terminal (a pipe, a file, a test), nothing is wrapped or cut: rich would
# otherwise assume 80 columns and fold or crop long cells.
_WIDE = 100_000


def make_console(*, stderr: bool = False) -> Console:
    """A rich console that wraps only on a terminal (none when piped)."""
    stream = sys.stderr if stderr else sys.stdout
    tty = stream.isatty()
    return Console(stderr=stderr, width=None if tty else _WIDE, soft_wrap=not tty)


console = make_console()
err_console = make_console(stderr=True)

# Exit codes of every command (the gate's and the watch's are their outcomes).
EXIT_CODE_TABLE: tuple[tuple[str, str], ...] = (
    ("0", "success (gate: PASS; roll watch: completed, or at 100% and observed)"),
    ("1", "any other relgate error (e.g. the server is unreachable)"),
    ("2", "usage error (unknown option, missing argument)"),
    ("3", "invalid input or manifest (the message names the field)"),
    ("4", "manifest conflict (same handle, other content)"),
    ("5", "not found (release, rollout, key, suite; an ambiguous sha prefix is 3)"),
    ("6", "authentication or permission denied"),
    ("7", "integrity failure (hash, signature, receipt chain)"),
    ("8", "invalid transition or gate refusal (e.g. promote during a shadow)"),
    ("9", "judge error"),
    ("10", "roll simulate: receipts not as the timeline expects"),
    ("20", "gate: PASS WITH WARNINGS (slices the gate could not vouch for)"),
    ("21", "gate: INSUFFICIENT evidence"),
    ("22", "gate: FAIL"),
    ("30", "roll watch: rolled back (by a monitor, the observer or a human)"),
    ("31", "roll watch: aborted"),
    ("32", "roll watch: paused or inconclusive (a human must act)"),
)


def exit_code_lines() -> list[str]:
    """The exit-code table, one line per code."""
    return [f"{code:>3}  {what}" for code, what in EXIT_CODE_TABLE]


class RelgateGroup(TyperGroup):
    """The root command: before parsing, makes every command's help say what values are.

    One place instead of per-command fixes: ``-h`` as well as ``--help`` (inherited by every
    subcommand's context), metavars that name the value (``--tenant TENANT``, ``SHA``) instead of
    typer's ``<str>``/``<bool>``, help text that rich markup cannot eat (``[...]`` is escaped),
    the exit-code table as the root epilog, and plain click help without hard wraps when stdout
    is not a terminal.
    """

    def main(self, *args: Any, **kwargs: Any) -> Any:
        polish(self)
        return super().main(*args, **kwargs)


def polish(root: Any) -> None:
    """Apply ``RelgateGroup``'s help conventions to ``root`` and every command under it."""
    tty = sys.stdout.isatty()
    mode = "rich" if tty else None
    root.context_settings.setdefault("help_option_names", ["-h", "--help"])
    if not tty:
        root.context_settings.setdefault("max_content_width", _WIDE)
        root.context_settings.setdefault("terminal_width", _WIDE)
    lines = exit_code_lines()
    if tty:
        root.epilog = "\n\n".join(["Exit codes:", *(escape(line) for line in lines)])
    else:
        root.epilog = "\b\nExit codes:\n" + "\n".join(lines)
    seen: set[int] = set()

    def walk(cmd: Any) -> None:
        if id(cmd) in seen:
            return
        seen.add(id(cmd))
        if hasattr(cmd, "rich_markup_mode"):
            cmd.rich_markup_mode = mode
        for param in cmd.params:
            _polish_param(param, escape_markup=tty)
        # typer vendors its own click: duck-typed, not isinstance.
        if isinstance(getattr(cmd, "commands", None), dict):
            for sub in cmd.commands.values():
                walk(sub)

    walk(root)


def _polish_param(param: Any, *, escape_markup: bool) -> None:
    if getattr(param, "_relgate_polished", False):
        return
    param._relgate_polished = True
    if param.param_type_name == "option":
        if param.is_flag and not param.count:
            param.metavar = ""
        elif param.metavar is None and not getattr(param.type_descriptor, "is_choice", False):
            # Choices keep typer's <a|b>; any other value is named after its option.
            longest = max(param.opts, key=len).lstrip("-")
            param.metavar = longest.upper().replace("-", "_")
        if param.help and escape_markup:
            param.help = escape(param.help)
    elif param.param_type_name == "argument" and param.name:
        if param.metavar is None:
            param.metavar = param.name.upper()
        # The metavar says what the value is (SHA, FILE); typer would append "<str>".
        param.display_type_rich = lambda ctx: None
        help_text = getattr(param, "help", None)
        if help_text and escape_markup:
            param.help = escape(help_text)


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


def plain(value: Any) -> Any:
    """``value`` as plain JSON data: protobuf messages become objects (numbers stay numbers,
    64-bit ones included; enums by name; an unset optional or message field is null),
    non-finite floats become null, tuples lists."""
    from google.protobuf.message import Message

    if isinstance(value, Message):
        return message_dict(value)
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    return value


def message_dict(msg: Any) -> dict[str, Any]:
    """A protobuf message as plain JSON data (see ``plain``); unlike ``MessageToDict`` it
    keeps uint64 as numbers and prints every field (null when unset)."""
    from google.protobuf.descriptor import FieldDescriptor

    out: dict[str, Any] = {}
    for field in msg.DESCRIPTOR.fields:
        value = getattr(msg, field.name)
        is_message = field.type == FieldDescriptor.TYPE_MESSAGE
        if field.is_repeated:
            if is_message and field.message_type.GetOptions().map_entry:
                out[field.name] = {k: plain(v) for k, v in value.items()}
            else:
                out[field.name] = [_field(field, v) for v in value]
        elif field.has_presence and not msg.HasField(field.name):
            out[field.name] = None
        else:
            out[field.name] = _field(field, value)
    return out


def _field(field: Any, value: Any) -> Any:
    from google.protobuf.descriptor import FieldDescriptor

    if field.type == FieldDescriptor.TYPE_ENUM:
        enum = field.enum_type.values_by_number.get(value)
        return enum.name if enum is not None else value
    if field.type == FieldDescriptor.TYPE_BYTES:
        return value.hex()
    return plain(value)


def print_json(value: Any) -> None:
    """JSON on stdout, one document of plain values (``plain``)."""
    sys.stdout.write(json.dumps(plain(value), indent=2, sort_keys=True, allow_nan=False) + "\n")


def print_json_line(value: Any) -> None:
    """One JSON document on one line (event streams: one line per event), flushed."""
    sys.stdout.write(json.dumps(plain(value), sort_keys=True, allow_nan=False) + "\n")
    sys.stdout.flush()


def print_table(title: str, columns: list[str], rows: list[list[str]]) -> None:
    """A rich table on stdout."""
    table = Table(title=title)
    for column in columns:
        table.add_column(column, overflow="fold")
    for row in rows:
        table.add_row(*row)
    console.print(table)
