"""`relgate rollback --to SHA --reason TEXT`: swap the routing to any earlier release."""

from __future__ import annotations

from typing import Annotated

import typer

from relgate.cli._common import (
    Connection,
    JsonOpt,
    TenantOpt,
    console,
    handle_errors,
    print_json,
    with_connection,
)
from relgate.cli.release import receipt_dict


@handle_errors
@with_connection
def rollback(
    to: Annotated[
        str,
        typer.Option(
            "--to", metavar="SHA", help="The release to serve: sha256 or a unique prefix."
        ),
    ],
    reason: Annotated[
        str, typer.Option("--reason", metavar="TEXT", help="Why (required; in the receipt).")
    ],
    tenant: TenantOpt = "",
    *,
    conn: Connection,
    json_out: JsonOpt = False,
) -> None:
    """Manual rollback: one atomic routing swap to release --to, with a manual_rollback receipt."""
    with conn.client() as c:
        reply = c.rollback(to, reason, tenant=tenant)
    if json_out:
        print_json(
            {"routing_version": reply.routing_version, "receipt": receipt_dict(reply.receipt)}
        )
        return
    console.print(
        f"serving {to[:12]} (routing v{reply.routing_version}); receipt "
        f"{reply.receipt.kind} {reply.receipt.receipt_sha256}",
        markup=False,
    )
