"""`relgate keys create`."""

from __future__ import annotations

from typing import Annotated

import typer

from relgate.access import Role
from relgate.cli._common import (
    Connection,
    JsonOpt,
    TenantOpt,
    handle_errors,
    print_json,
    with_connection,
)

app = typer.Typer(help="Manage API keys (admin).", no_args_is_help=True)


@app.command("create")
@handle_errors
@with_connection
def create(
    role: Annotated[str, typer.Option("--role", help=f"One of {', '.join(Role.labels())}.")],
    name: Annotated[str, typer.Option("--name", help="A label for the key.")] = "",
    tenant: TenantOpt = "",
    *,
    conn: Connection,
    json_out: JsonOpt = False,
) -> None:
    """Create a key; prints the key once (it is stored hashed)."""
    parsed = Role.parse(role)  # InvalidInputError naming the roles
    with conn.client() as client:
        created = client.create_key(parsed.label, name=name, tenant=tenant)
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
