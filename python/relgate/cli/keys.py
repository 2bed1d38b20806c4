"""`relgate keys create | list | revoke`."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from relgate._proto.relgate.v1 import key_pb2
from relgate.access import Role
from relgate.cli._common import (
    Connection,
    JsonOpt,
    TenantOpt,
    handle_errors,
    print_json,
    with_connection,
)

app = typer.Typer(
    help="Manage API keys (admin of a tenant; operator across tenants).", no_args_is_help=True
)


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
                "receipt_sha256": created.receipt.receipt_sha256,
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


@app.command("list")
@handle_errors
@with_connection
def list_(
    tenant: TenantOpt = "",
    *,
    conn: Connection,
    json_out: JsonOpt = False,
) -> None:
    """The tenant's keys: sha256, role, name, created, and revocation if any."""
    with conn.client() as client:
        keys = client.list_keys(tenant=tenant)
    rows = [_key_dict(k) for k in keys]
    if json_out:
        print_json(rows)
        return
    for row in rows:
        state = (
            f"revoked {row['revoked_at']} by {row['revoked_by']}" if row["revoked"] else "active"
        )
        typer.echo(
            f"{row['key_sha256'][:16]}  {row['role']:<8} {row['tenant']:<12} "
            f"{row['name']:<24} {row['created_at']}  {state}"
        )
    if not rows:
        typer.echo("no keys", err=True)


@app.command("revoke")
@handle_errors
@with_connection
def revoke(
    key_sha256: Annotated[
        str, typer.Argument(help="The key's sha256 (from `keys list`), or a unique prefix.")
    ],
    reason: Annotated[str, typer.Option("--reason", help="Why (kept in the receipt).")],
    tenant: TenantOpt = "",
    *,
    conn: Connection,
    json_out: JsonOpt = False,
) -> None:
    """Revoke a key: it stops working at once and a key_revoke receipt records it."""
    with conn.client() as client:
        reply = client.revoke_key(key_sha256, reason=reason, tenant=tenant)
    info = _key_dict(reply.key)
    if json_out:
        print_json({**info, "receipt_sha256": reply.receipt.receipt_sha256})
        return
    typer.echo(
        f"revoked {info['role']} key {info['name']!r} ({info['key_sha256'][:16]}) of tenant "
        f"{info['tenant']!r}; receipt {reply.receipt.receipt_sha256}"
    )


def _key_dict(key: key_pb2.KeyInfo) -> dict[str, Any]:
    return {
        "key_sha256": key.key_sha256,
        "role": Role(key.role).label,
        "name": key.name,
        "tenant": key.tenant,
        "created_at": key.created_at,
        "revoked": key.revoked,
        "revoked_at": key.revoked_at or None,
        "revoked_by": key.revoked_by or None,
        "revoke_reason": key.revoke_reason or None,
    }
