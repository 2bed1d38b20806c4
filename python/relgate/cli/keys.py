"""`relgate keys create`."""

from __future__ import annotations

from typing import Annotated

import typer

from relgate.cli._common import (
    Connection,
    JsonOpt,
    TenantOpt,
    handle_errors,
    print_json,
    with_connection,
)
from relgate.errors import InvalidInputError

app = typer.Typer(help="Manage API keys (admin).", no_args_is_help=True)

ROLES = ("viewer", "releaser", "admin", "worker")


@app.command("create")
@handle_errors
@with_connection
def create(
    role: Annotated[str, typer.Option("--role", help="viewer, releaser, admin or worker.")],
    name: Annotated[str, typer.Option("--name", help="A label for the key.")] = "",
    tenant: TenantOpt = "",
    *,
    conn: Connection,
    json_out: JsonOpt = False,
) -> None:
    """Create a key; prints the key once (it is stored hashed)."""
    if role.lower() not in ROLES:
        raise InvalidInputError(
            f"unknown role {role!r} (expected viewer, releaser, admin or worker)"
        )
    with conn.client() as client:
        created = client.create_key(role.lower(), name=name, tenant=tenant)
    if json_out:
        print_json(
            {
                "key": created.key,
                "role": role.lower(),
                "name": created.name,
                "tenant": created.tenant,
                "key_sha256": created.key_sha256,
            }
        )
        return
    # The key alone on stdout (scriptable: KEY=$(relgate keys create ...)); the rest on stderr.
    typer.echo(created.key)
    typer.echo(
        f"created {role.lower()} key {created.name!r} for tenant {created.tenant!r} "
        "(shown once; store it now)",
        err=True,
    )
