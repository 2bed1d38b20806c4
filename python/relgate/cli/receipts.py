"""`relgate receipts list|export|verify`. `verify --bundle FILE` runs offline."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from relgate.cli._common import (
    Connection,
    JsonOpt,
    TenantOpt,
    console,
    handle_errors,
    print_json,
    print_table,
    with_connection,
)
from relgate.cli.release import receipt_dict
from relgate.errors import IntegrityError

app = typer.Typer(help="List, export and verify receipts.", no_args_is_help=True)


@app.command("list")
@handle_errors
@with_connection
def list_(
    release: Annotated[
        str, typer.Option("--release", help="Only receipts of this release (sha256).")
    ] = "",
    limit: Annotated[int, typer.Option("--limit", min=0, help="0: all.")] = 0,
    tenant: TenantOpt = "",
    *,
    conn: Connection,
    json_out: JsonOpt = False,
) -> None:
    """List receipts in chain order."""
    with conn.client() as client:
        receipts = [
            receipt_dict(r)
            for r in client.list_receipts(tenant=tenant, release_sha256=release, limit=limit)
        ]
    if json_out:
        print_json(receipts)
        return
    rows = [
        [str(r["seq"]), r["kind"], "rel_" + r["release_sha256"][:12], r["actor"], r["time"],
         r["receipt_sha256"][:16]]
        for r in receipts
    ]  # fmt: skip
    print_table("receipts", ["seq", "kind", "release", "actor", "time", "receipt"], rows)


@app.command("export")
@handle_errors
@with_connection
def export(
    out: Annotated[
        Path | None, typer.Option("--out", "-o", help="Bundle file [default: stdout].")
    ] = None,
    tenant: TenantOpt = "",
    *,
    conn: Connection,
) -> None:
    """Export a self-contained bundle (receipts, proofs, tree heads, public key)."""
    with conn.client() as client:
        data = client.export_receipts(tenant=tenant)
    if out is None:
        sys.stdout.buffer.write(data + b"\n")
        return
    # Write then rename: a half-written bundle never sits under the final name.
    tmp = out.with_name(out.name + ".partial")
    tmp.write_bytes(data)
    tmp.replace(out)
    typer.echo(f"wrote {len(data)} bytes to {out}", err=True)


def _report(ok: bool, receipts: int, first_error: Any | None, json_out: bool) -> None:
    if json_out:
        print_json(
            {
                "ok": ok,
                "receipts": receipts,
                "first_error": None
                if first_error is None
                else {
                    "index": first_error.index,
                    "receipt_sha256": first_error.receipt_sha256 or None,
                    "reason": first_error.reason,
                    "detail": first_error.detail,
                },
            }
        )
    if ok:
        if not json_out:
            console.print(f"ok: {receipts} receipts verified (chains, tree, signatures)")
        return
    if first_error is None:
        raise IntegrityError("receipt verification failed", rule="receipt_bundle")
    sha = first_error.receipt_sha256 or "(no sha)"
    where = f"receipt #{first_error.index} {sha}" if first_error.index >= 0 else "bundle"
    detail = f" ({first_error.detail})" if first_error.detail else ""
    raise IntegrityError(f"{where}: {first_error.reason}{detail}", rule="receipt_bundle")


@app.command("verify")
@handle_errors
@with_connection
def verify(
    bundle: Annotated[
        Path | None,
        typer.Option("--bundle", help="Verify this exported bundle offline (no server)."),
    ] = None,
    public_key: Annotated[
        str | None,
        typer.Option(
            "--public-key",
            help="Pin the tree-head signing key (base64) instead of trusting the bundle's.",
        ),
    ] = None,
    tenant: TenantOpt = "",
    *,
    conn: Connection,
    json_out: JsonOpt = False,
) -> None:
    """Verify chains, Merkle tree, inclusion proofs and signatures; name the first break."""
    if bundle is not None:
        # Imported here: offline verification needs no gRPC and no server.
        from relgate.receipts import verify_bundle

        if not bundle.is_file():
            raise FileNotFoundError(2, "no such bundle file", str(bundle))
        report = verify_bundle(bundle, public_key_b64=public_key)
        _report(report.ok, report.receipts, report.first_error, json_out)
        return
    with conn.client() as client:
        response = client.verify_receipts(tenant=tenant)
    first = response.first_error if response.HasField("first_error") else None
    _report(response.ok, response.receipts, first, json_out)
