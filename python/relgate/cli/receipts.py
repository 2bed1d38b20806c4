"""`relgate receipts list|export|verify|key`. `verify --bundle FILE` runs offline, against
trust the verifier holds: pinned keys (`--key`, `--keys`, or the environment), a witness
state (`--state`), anchor copies and TSA roots (`--anchor-dir`, `--tsa-root`)."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from relgate.cli._common import (
    Connection,
    JsonOpt,
    TenantOpt,
    console,
    err_console,
    handle_errors,
    print_json,
    print_table,
    with_connection,
)
from relgate.cli.release import receipt_dict
from relgate.errors import IntegrityError, InvalidInputError

if TYPE_CHECKING:
    from relgate.receipts import BundleReport

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


NO_TRUST = (
    "no trust anchor: a bundle's own key proves only that it is self-consistent, not who "
    "signed it. Pin the server's tree-head key: --key B64 (repeatable) or --keys FILE, or "
    "RELGATE_TRUSTED_KEYS / RELGATE_TRUSTED_KEYS_FILE; `relgate receipts key` prints it "
    "(or `relgate receipts key --data-dir DIR` on the server, from DIR/receipt_signing.key). "
    "To check consistency only, pass --trust-bundle-key"
)
_ALL_CHECKS = "chains, tree, signatures, consistency"


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def _say(text: str) -> None:
    """One line for people: never wrapped (scripts grep it), never read as markup."""
    console.print(text, soft_wrap=True, markup=False, highlight=False)


def _print_report(doc: dict[str, Any], bundle_key: bool) -> None:
    """People's view of a verification that succeeded (``doc`` as ``--json`` prints it)."""
    _say(f"ok: {doc['receipts']} receipts verified ({_ALL_CHECKS})")
    key = doc.get("key") or {}
    head = f"the head of size {doc['tree_size']}, root {doc['root_hex'][:16]}"
    if bundle_key:
        err_console.print(
            "[bold red]WARNING[/bold red]: trusted the bundle's own key "
            f"sha256:{key.get('fingerprint', '')}: self-asserted, proves consistency only, "
            "not origin. Pin the server's key with --key (see `relgate receipts key`).",
            soft_wrap=True,
        )
        _say(f"trust: {doc['trust']}: key sha256:{key.get('fingerprint', '')} signed {head}")
    else:
        _say(f"trust: {doc['trust']} key sha256:{key.get('fingerprint', '')} signed {head}")
    checks = doc["consistency"]
    by_source: dict[str, int] = {}
    for c in checks:
        by_source[c["source"]] = by_source.get(c["source"], 0) + 1
    sources = ", ".join(f"{n} from {s}" for s, n in sorted(by_source.items()))
    _say(
        f"heads: {_plural(len(doc['heads']), 'head')} signed by trusted keys; consistency: "
        + (
            f"{_plural(len(checks), 'proof')} {'holds' if len(checks) == 1 else 'hold'} ({sources})"
            if checks
            else "no older head"
        )
    )
    anchors = doc["anchors"]
    if not anchors:
        _say("anchors: none in the bundle")
    else:
        counts: dict[str, int] = {}
        for a in anchors:
            counts[a["status"]] = counts.get(a["status"], 0) + 1
        notes = sorted(
            {f"{a['sink']}: {a['detail']}" for a in anchors if a["status"] != "verified"}
        )
        line = ", ".join(f"{n} {status}" for status, n in sorted(counts.items()))
        _say(f"anchors: {line}" + (f" ({'; '.join(notes)})" if notes else ""))
    witness = doc.get("witness")
    if witness is None:
        _say("witness: no --state: an older or cut-back bundle cannot be told from this one")
    else:
        before = (
            f"the head of size {witness['previous_size']} accepted before"
            if witness["previous_size"] is not None
            else "nothing before"
        )
        saved = "updated" if witness["updated"] else "unchanged"
        _say(f"witness: {witness['outcome']} ({before}); state {witness['state']} {saved}")


def _finish(doc: dict[str, Any], json_out: bool, bundle_key: bool = False) -> None:
    """Print ``doc`` (JSON or text) and raise the first broken link as an IntegrityError."""
    if json_out:
        print_json(doc)
    first = doc["first_error"]
    if doc["ok"]:
        if not json_out:
            _print_report(doc, bundle_key)
        return
    if first is None:
        raise IntegrityError("receipt verification failed", rule="receipt_bundle")
    sha = first["receipt_sha256"] or "(no sha)"
    where = f"receipt #{first['index']} {sha}" if first["index"] >= 0 else "bundle"
    detail = f" ({first['detail']})" if first["detail"] else ""
    raise IntegrityError(f"{where}: {first['reason']}{detail}", rule="receipt_bundle")


@app.command("verify")
@handle_errors
@with_connection
def verify(
    bundle: Annotated[
        Path | None,
        typer.Option("--bundle", help="Verify this exported bundle offline (no server)."),
    ] = None,
    key: Annotated[
        list[str] | None,
        typer.Option(
            "--key",
            help="Pin a tree-head public key (base64; repeatable). `relgate receipts key` "
            "prints the server's (env RELGATE_TRUSTED_KEYS).",
            show_default=False,
        ),
    ] = None,
    keys_file: Annotated[
        list[Path] | None,
        typer.Option(
            "--keys",
            help="Pin the keys of a key-set file: JSON or YAML, keys with validity periods "
            "(env RELGATE_TRUSTED_KEYS_FILE).",
            show_default=False,
        ),
    ] = None,
    public_key: Annotated[
        str | None, typer.Option("--public-key", hidden=True, help="Same as --key.")
    ] = None,
    trust_bundle_key: Annotated[
        bool,
        typer.Option(
            "--trust-bundle-key",
            help="Trust the bundle's own key: proves consistency only, not origin.",
        ),
    ] = False,
    state: Annotated[
        Path | None,
        typer.Option(
            "--state",
            help="Witness state file: the last head accepted per tenant; an older or forked "
            "bundle is refused; moved forward on success (created if missing).",
        ),
    ] = None,
    anchor_dir: Annotated[
        list[Path] | None,
        typer.Option("--anchor-dir", help="Your copy of a directory anchor (repeatable)."),
    ] = None,
    tsa_root: Annotated[
        list[Path] | None,
        typer.Option("--tsa-root", help="PEM root(s) RFC 3161 tokens must chain to."),
    ] = None,
    require_anchor: Annotated[
        list[str] | None,
        typer.Option(
            "--require-anchor",
            help="dir or tsa: fail unless such an anchor of this tree verifies (repeatable).",
        ),
    ] = None,
    max_bundle_bytes: Annotated[
        int, typer.Option("--max-bundle-bytes", min=1, help="Refuse larger bundles.")
    ] = 1 << 30,
    max_heads: Annotated[
        int,
        typer.Option("--max-heads", min=1, help="Refuse more heads, proofs or anchors."),
    ] = 4096,
    tenant: TenantOpt = "",
    *,
    conn: Connection,
    json_out: JsonOpt = False,
) -> None:
    """Verify chains, Merkle tree, inclusion proofs, signatures by pinned keys, consistency
    between tree heads and anchors; name the first broken link."""
    # Imported here: offline verification needs no gRPC and no server.
    from relgate.receipts import AnchorPolicy, Limits
    from relgate.receipts.trust import trust_from_sources

    pinned = [*(key or []), *([public_key] if public_key else [])]
    trust = trust_from_sources(keys=pinned, key_files=keys_file or [], env=os.environ)
    if bundle is None:
        if state or anchor_dir or tsa_root or require_anchor or trust_bundle_key:
            raise InvalidInputError(
                "--state, --anchor-dir, --tsa-root, --require-anchor and --trust-bundle-key "
                "apply to --bundle"
            )
        _verify_online(conn, tenant, trust, json_out)
        return
    if trust is not None and trust_bundle_key:
        raise InvalidInputError("--trust-bundle-key and pinned keys exclude each other")
    if trust is None and not trust_bundle_key:
        raise InvalidInputError(NO_TRUST)
    if not bundle.is_file():
        raise FileNotFoundError(2, "no such bundle file", str(bundle))
    from relgate.receipts import verify_bundle

    report: BundleReport = verify_bundle(
        bundle,
        trust=trust,
        trust_bundle_key=trust is None,
        state=state,
        anchors=AnchorPolicy.build(
            dirs=anchor_dir or [], tsa_root_files=tsa_root or [], require=require_anchor or []
        ),
        limits=Limits(
            max_bundle_bytes=max_bundle_bytes,
            max_heads=max_heads,
            max_consistency_proofs=max_heads,
            max_anchors=max_heads,
        ),
    )
    _finish(report.to_dict(), json_out, bundle_key=trust is None)


def _verify_online(conn: Connection, tenant: str, trust: Any, json_out: bool) -> None:
    """The server verifies its own export against its own key; with keys pinned, that key
    must be one of them."""
    with conn.client() as client:
        r = client.verify_receipts(tenant=tenant)
    first = r.first_error if r.HasField("first_error") else None
    doc: dict[str, Any] = {
        "ok": r.ok,
        "receipts": r.receipts,
        "first_error": None
        if first is None
        else {
            "index": first.index,
            "receipt_sha256": first.receipt_sha256 or None,
            "reason": first.reason,
            "detail": first.detail,
        },
        "format": r.format,
        "tenant": tenant,
        "trust": f"server ({r.trust or 'pinned'} to its own key; pin it yourself offline)",
        "key": {"fingerprint": r.key_fingerprint, "public_key_b64": r.public_key_b64},
        "tree_size": r.tree_size,
        "root_hex": r.root_hex,
        "heads": [
            {
                "tree_size": h.tree_size,
                "root_hex": h.root_hex,
                "timestamp": h.timestamp,
                "key_fingerprint": h.key_fingerprint,
                "ok": h.ok,
                "detail": h.detail,
            }
            for h in r.heads
        ],
        "consistency": [
            {"old_size": c.old_size, "new_size": c.new_size, "source": c.source, "ok": c.ok}
            for c in r.consistency
        ],
        "anchors": [
            {
                "index": a.index,
                "sink": a.sink,
                "tree_size": a.tree_size,
                "root_hex": a.root_hex,
                "status": a.status,
                "detail": a.detail,
            }
            for a in r.anchors
        ],
        "witness": None,
    }
    if trust is not None and r.public_key_b64 and not trust.key_for(r.public_key_b64):
        raise IntegrityError(
            f"the server signs with key sha256:{r.key_fingerprint}, which is not a pinned key",
            rule="receipt_bundle",
        )
    _finish(doc, json_out)


@app.command("key")
@handle_errors
@with_connection
def key_(
    data_dir: Annotated[
        Path | None,
        typer.Option(
            "--data-dir",
            help="Read the public half of DATA_DIR/receipt_signing.key here instead of "
            "asking the server.",
        ),
    ] = None,
    *,
    conn: Connection,
    json_out: JsonOpt = False,
) -> None:
    """Print the server's tree-head public key (to pin with `receipts verify --key`); with
    --json, a key-set file for `--keys`. Compare the fingerprint out of band."""
    from relgate.receipts.tree import KEY_FILE
    from relgate.receipts.trust import KEY_SET_FORMAT, TrustedKey, public_key_of_key_file

    if data_dir is not None:
        b64, source = public_key_of_key_file(data_dir / KEY_FILE), str(data_dir / KEY_FILE)
    else:
        with conn.client() as client:
            b64, source = client.tree_head_key().public_key_b64, client.server
    pinned = TrustedKey(b64, name=f"relgate tree-head key of {source}")
    if json_out:
        print_json({"format": KEY_SET_FORMAT, "keys": [pinned.to_dict()]})
        return
    typer.echo(pinned.public_key_b64)
    typer.echo(f"fingerprint sha256:{pinned.fingerprint} ({source})", err=True)
