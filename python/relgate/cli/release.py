"""`relgate release register|show|list`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any, Literal

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
from relgate.errors import InvalidInputError

app = typer.Typer(help="Register and inspect releases.", no_args_is_help=True)


def release_dict(release: Any) -> dict[str, Any]:
    """A `relgate.v1.Release` as JSON data (the manifest as an object)."""
    return {
        "sha256": release.sha256,
        "release_id": release.release_id,
        "tenant": release.tenant,
        "actor": release.actor,
        "created_at": release.created_at,
        "previous_release": release.previous_release or None,
        "manifest": json.loads(release.manifest_json),
    }


def receipt_dict(receipt: Any) -> dict[str, Any]:
    """A `relgate.v1.Receipt` as JSON data (evidence as an object)."""
    return {
        "kind": receipt.kind,
        "tenant": receipt.tenant,
        "release_sha256": receipt.release_sha256,
        "evidence": json.loads(receipt.evidence_json or "{}"),
        "actor": receipt.actor,
        "reason": receipt.reason,
        "time": receipt.time,
        "prev_receipt_sha256": receipt.prev_receipt_sha256 or None,
        "prev_release_receipt_sha256": receipt.prev_release_receipt_sha256 or None,
        "receipt_sha256": receipt.receipt_sha256,
        "seq": receipt.seq,
    }


def _format(path: Path) -> Literal["json", "yaml"] | None:
    suffix = path.suffix.lower()
    if suffix == ".json":
        return "json"
    if suffix in (".yaml", ".yml"):
        return "yaml"
    return None


def _model(manifest: dict[str, Any]) -> str:
    model = manifest.get("model", {})
    kind = model.get("kind", "?")
    if kind == "hf":
        return f"hf:{model.get('repo')}@{str(model.get('revision', ''))[:12]}"
    if kind == "local":
        return f"local:{model.get('path')}"
    return f"api:{model.get('provider')}/{model.get('model')}"


@app.command("register")
@handle_errors
@with_connection
def register(
    file: Annotated[Path, typer.Option("--file", "-f", help="Manifest (JSON or YAML).")],
    expect_sha: Annotated[
        str | None,
        typer.Option("--expect-sha", help="Refuse unless the registered sha256 equals this."),
    ] = None,
    tenant: TenantOpt = "",
    *,
    conn: Connection,
    json_out: JsonOpt = False,
) -> None:
    """Register a release manifest; prints its sha256 (idempotent)."""
    data = file.read_bytes()
    if not data.strip():
        raise InvalidInputError(f"{file} is empty")
    with conn.client() as client:
        result = client.register_release(
            data, fmt=_format(file), expected_sha256=expect_sha, tenant=tenant
        )
    if json_out:
        print_json(
            {
                "created": result.created,
                "release": release_dict(result.release),
                "receipt": receipt_dict(result.receipt),
            }
        )
        return
    verb = "registered" if result.created else "already registered"
    console.print(f"{verb} {result.release.release_id}")
    console.print(f"sha256  {result.release.sha256}")
    console.print(f"receipt {result.receipt.receipt_sha256}")


@app.command("show")
@handle_errors
@with_connection
def show(
    sha: Annotated[
        str, typer.Argument(metavar="SHA", help="sha256, a unique prefix, or release id (rel_...).")
    ],
    *,
    conn: Connection,
    json_out: JsonOpt = False,
) -> None:
    """Show one release and its manifest."""
    with conn.client() as client:
        release = client.get_release(sha)
    data = release_dict(release)
    if json_out:
        print_json(data)
        return
    for key in ("release_id", "sha256", "tenant", "actor", "created_at", "previous_release"):
        console.print(f"[bold]{key}[/bold]: {data[key] or '-'}")
    console.print_json(json.dumps(data["manifest"]))


@app.command("list")
@handle_errors
@with_connection
def list_(
    limit: Annotated[int, typer.Option("--limit", min=1, max=10_000)] = 100,
    tenant: TenantOpt = "",
    *,
    conn: Connection,
    json_out: JsonOpt = False,
) -> None:
    """List releases of a tenant."""
    with conn.client() as client:
        releases = [release_dict(r) for r in client.list_releases(tenant=tenant, limit=limit)]
    if json_out:
        print_json(releases)
        return
    # 12-hex sha prefixes, which every verb accepts (`--json` or `show` give the full sha).
    rows = [
        [
            r["sha256"][:12],
            r["release_id"],
            _model(r["manifest"]),
            r["previous_release"][:12] if r["previous_release"] else "-",
            r["created_at"],
        ]
        for r in releases
    ]
    print_table("releases", ["sha", "id", "model", "previous", "created"], rows)
