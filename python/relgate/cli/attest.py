"""`relgate attest` and `relgate reattest`: weight attestation from the command line.

    relgate attest PATH [--json] [--spot-check K] [--in-toto OUT] [-o ATTESTATION.json]
                        [--no-cache | --paranoid] [--cache-dir DIR]
    relgate attest verify PATH --root HEX [--against ATTESTATION.json] [--spot-check K]
    relgate attest verify PATH --oms model.sig --public-key KEY.pub
    relgate attest sign PATH --private-key KEY.pem -o model.sig
    relgate attest prove PATH --tensor NAME [-o PROOF.json]
    relgate attest check-tensor PATH --proof PROOF.json --root HEX
    relgate reattest [PATH ...] [--list FILE] [--expect FILE] [--report OUT.json|.parquet]

`attest verify` exits 0 only when the root matches, 1 when it differs. A root alone cannot
say which tensors changed; given the attestation that produced the expected root
(`--against`, e.g. the file `relgate attest PATH -o` wrote, or an in-toto Statement), it
names them. A reference whose own root is not the expected one is not used. (No sidecar is
looked up implicitly: which attestation is trusted stays the caller's explicit choice.)

`attest PATH` and `reattest` use the leaf cache (``$RELGATE_CACHE_DIR`` or
``~/.cache/relgate/attest``, see relgate.attest.cache): unchanged files are not read again.
`--no-cache` hashes every byte; `--paranoid` hashes every byte and names every cached leaf
that disagrees with the bytes (exit 1 if one does). `attest sign` and `verify --oms` speak
OpenSSF Model Signing bundles (the `oms` extra; docs/attestation.md).

`attest PATH` runs the hidden `attest run PATH`; a checkpoint directory named like a
subcommand (`verify`, `prove`, `check-tensor`, `sign`) is written `./verify`.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from typer.core import TyperGroup

from relgate import errors, intoto
from relgate.attest import (
    Attestation,
    InclusionProof,
    attest,
    default_cache_dir,
    paranoid_attest,
    verify_attestation,
    verify_tensor,
)
from relgate.cli._common import (
    Connection,
    JsonOpt,
    console,
    err_console,
    handle_errors,
    print_json,
    with_connection,
)
from relgate.scale import ray_tasks
from relgate.scale.reattest import ReattestEntry, read_expectations, run_reattest, write_report


class _AttestGroup(TyperGroup):
    """`attest` is both a command (`relgate attest PATH`) and a group (`attest verify`):
    anything that is not a subcommand name goes to the hidden default command."""

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        if args and args[0] not in self.commands and args[0] not in ("--help", "-h"):
            args = ["run", *args]
        return super().parse_args(ctx, args)


attest_app = typer.Typer(
    cls=_AttestGroup,
    help="Attest open weights (tensor-merkle-blake3-v1): relgate attest PATH, or a subcommand.",
    no_args_is_help=True,
)

SpotOpt = Annotated[
    int | None,
    typer.Option("--spot-check", min=0, help="Hash only K random tensors (partial, no root)."),
]
SeedOpt = Annotated[
    int | None, typer.Option("--seed", min=0, help="Seed of the spot-check sample.")
]


NoCacheOpt = Annotated[
    bool, typer.Option("--no-cache", help="Hash every byte; neither read nor write the cache.")
]
CacheDirOpt = Annotated[
    Path | None,
    typer.Option(
        "--cache-dir", help="Leaf cache (default: $RELGATE_CACHE_DIR or ~/.cache/relgate/attest)."
    ),
]


def _cache(no_cache: bool, cache_dir: Path | None) -> Path | None:
    if no_cache:
        return None
    return cache_dir if cache_dir is not None else default_cache_dir()


def _short(h: str | None) -> str:
    return "-" if h is None else h[:16] + "…"


def _print_attestation(att: Attestation) -> None:
    table = Table(title="attestation", show_header=False)
    table.add_row("scheme", att.scheme)
    if att.root is not None:
        table.add_row("root", att.root)
    else:
        sampled = sum(t.leaf is not None for t in att.leaves)
        table.add_row("root", f"(spot check: {sampled} of {att.tensors} tensors hashed)")
    table.add_row("tensors", str(att.tensors))
    table.add_row("bytes", f"{att.bytes:,}")
    console.print(table)
    files = Table("file", "bytes", "tensors", "blake3", "header blake3")
    for f in att.files:
        files.add_row(
            f.path, f"{f.bytes:,}", str(f.tensors), _short(f.blake3), _short(f.header_blake3)
        )
    console.print(files)
    if att.unattested:
        err_console.print(
            "[yellow]not attestable at tensor level (pickle, never opened; not covered by the "
            f"root):[/yellow] {', '.join(att.unattested)}"
        )


@attest_app.command("run", hidden=True)
@handle_errors
def attest_cmd(
    path: Annotated[Path, typer.Argument(help="A .safetensors file, a directory, or an index.")],
    json_out: JsonOpt = False,
    spot_check: SpotOpt = None,
    seed: SeedOpt = None,
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write the attestation JSON here.")
    ] = None,
    in_toto: Annotated[
        Path | None, typer.Option("--in-toto", help="Write an in-toto Statement v1 here.")
    ] = None,
    file_digests: Annotated[
        bool,
        typer.Option(
            "--file-digests",
            help="Also a whole-file BLAKE3 per file, in the same pass (off: the tree alone).",
        ),
    ] = False,
    no_cache: NoCacheOpt = False,
    paranoid: Annotated[
        bool,
        typer.Option(
            "--paranoid",
            help="Hash every byte and name every cached leaf that disagrees (exit 1 if any).",
        ),
    ] = False,
    cache_dir: CacheDirOpt = None,
) -> None:
    """Attest a checkpoint: the tensor root (and per-file digests with --file-digests)."""
    disagreements: tuple[Any, ...] = ()
    if paranoid:
        if spot_check is not None or no_cache:
            raise errors.InvalidInputError("--paranoid takes neither --spot-check nor --no-cache")
        checked = paranoid_attest(path, cache_dir if cache_dir is not None else default_cache_dir())
        att, disagreements = checked.attestation, checked.disagreements
        if file_digests:
            att = attest(path, file_digests=True)
    else:
        att = attest(
            path,
            spot_check=spot_check,
            seed=seed,
            file_digests=file_digests,
            cache_dir=_cache(no_cache, cache_dir),
        )
    if output is not None:
        output.write_text(json.dumps(att.to_dict(), indent=2) + "\n", encoding="utf-8")
    if in_toto is not None:
        statement = intoto.statement(att, name=path.name)
        in_toto.write_text(json.dumps(statement, indent=2) + "\n", encoding="utf-8")
    if json_out:
        out = att.to_dict()
        if paranoid:
            out["cache_disagreements"] = [d.to_dict() for d in disagreements]
        print_json(out)
    else:
        _print_attestation(att)
    for d in disagreements:
        err_console.print(
            f"[red]cache disagrees[/red] {d.file}: {d.tensor} cached "
            f"{_short(d.cached_data_blake3)}, bytes hash to {_short(d.actual_data_blake3)} "
            "(entry dropped)"
        )
    if disagreements:
        raise typer.Exit(1)


@attest_app.command("sign")
@handle_errors
def sign_cmd(
    path: Annotated[Path, typer.Argument(help="The model directory (or file) to sign.")],
    private_key: Annotated[
        Path, typer.Option("--private-key", help="PEM EC private key (P-256/384/521).")
    ],
    output: Annotated[
        Path, typer.Option("--output", "-o", help="Where to write the bundle.")
    ] = Path("model.sig"),
    ignore: Annotated[
        list[Path] | None, typer.Option("--ignore", help="A path not to sign (repeatable).")
    ] = None,
    no_cache: NoCacheOpt = False,
    cache_dir: CacheDirOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Sign an OpenSSF Model Signing bundle that carries the tensor root too: stock
    `model_signing verify key` accepts it, `relgate attest verify --oms` checks both."""
    from relgate.attest import oms

    att = oms.sign(
        path,
        private_key,
        output,
        ignore_paths=ignore or (),
        cache_dir=_cache(no_cache, cache_dir),
    )
    if json_out:
        print_json({"signature": str(output), "root": att.root, "tensors": att.tensors})
    else:
        console.print(f"[green]signed[/green] {path} -> {output} (tensor root {att.root})")


def _registered_attestation(conn: Connection, release: str) -> dict[str, Any]:
    with conn.client() as client:
        found = client.get_release(release)
    manifest = json.loads(found.manifest_json)
    att = manifest.get("weights_attestation")
    if not isinstance(att, dict):
        raise errors.InvalidInputError(
            f"release {found.sha256} has no weights attestation (closed or unreachable weights "
            "at register time)"
        )
    return att


@attest_app.command("export")
@handle_errors
@with_connection
def export_cmd(
    path: Annotated[Path, typer.Argument(help="The model directory (or file) the export covers.")],
    *,
    conn: Connection,
    oms_out: Annotated[
        Path | None,
        typer.Option(
            "--oms",
            metavar="BUNDLE",
            help="Write a signed OpenSSF Model Signing bundle here (needs --private-key).",
        ),
    ] = None,
    in_toto: Annotated[
        Path | None,
        typer.Option("--in-toto", metavar="FILE", help="Write an unsigned in-toto Statement v1."),
    ] = None,
    private_key: Annotated[
        Path | None, typer.Option("--private-key", help="PEM EC private key for --oms.")
    ] = None,
    attestation: Annotated[
        Path | None,
        typer.Option("--attestation", help="Export this attestation (`attest -o` JSON)."),
    ] = None,
    release: Annotated[
        str | None,
        typer.Option(
            "--release",
            metavar="SHA",
            help="Export the attestation this release registered (asks the server).",
        ),
    ] = None,
    ignore: Annotated[
        list[Path] | None, typer.Option("--ignore", help="A path not to sign (repeatable).")
    ] = None,
    no_cache: NoCacheOpt = False,
    cache_dir: CacheDirOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Export an attestation for PATH: the one a release registered (--release), one from a
    file (--attestation), or one measured now. The checkpoint on disk must have its root
    (exit 7 and both roots named otherwise). --oms writes a bundle stock `model_signing
    verify key` accepts, carrying the tensor root; --in-toto an unsigned Statement."""
    from relgate.attest import oms

    if (oms_out is None) == (in_toto is None):
        raise errors.InvalidInputError("give one of --oms BUNDLE or --in-toto FILE")
    if attestation is not None and release is not None:
        raise errors.InvalidInputError("give --attestation or --release, not both")
    if oms_out is not None and private_key is None:
        raise errors.InvalidInputError("--oms needs --private-key KEY.pem")
    source: Path | dict[str, Any] | None = attestation
    if release is not None:
        source = _registered_attestation(conn, release)
    cache = _cache(no_cache, cache_dir)
    if oms_out is not None:
        assert private_key is not None
        att = oms.sign(
            path,
            private_key,
            oms_out,
            attestation=source,
            ignore_paths=ignore or (),
            cache_dir=cache,
        )
        out = oms_out
    else:
        assert in_toto is not None
        att = oms.matching_attestation(path, source, cache_dir=cache)
        statement = intoto.statement(att, name=path.name)
        in_toto.write_text(json.dumps(statement, indent=2) + "\n", encoding="utf-8")
        out = in_toto
    if json_out:
        print_json({"output": str(out), "root": att.root, "tensors": att.tensors})
    else:
        console.print(f"[green]exported[/green] {path} -> {out} (tensor root {att.root})")


def _verify_oms(path: Path, bundle: Path, public_key: Path | None, json_out: bool) -> None:
    from relgate.attest import oms

    if public_key is None:
        raise errors.InvalidInputError("--oms needs --public-key KEY.pub")
    result = oms.verify(path, bundle, public_key)
    if json_out:
        print_json(result.to_dict())
        return
    root = result.tensor_root or "none in the bundle (signed by model_signing alone)"
    console.print(
        f"[green]ok[/green] {bundle}: {len(result.files)} files match; tensor root: {root}"
    )


@attest_app.command("verify")
@handle_errors
def verify_cmd(
    path: Annotated[Path, typer.Argument(help="The checkpoint to check.")],
    root: Annotated[str | None, typer.Option("--root", help="The expected root (64 hex).")] = None,
    against: Annotated[
        Path | None,
        typer.Option("--against", help="Attestation (or in-toto Statement) of the expected root."),
    ] = None,
    spot_check: SpotOpt = None,
    seed: SeedOpt = None,
    oms_bundle: Annotated[
        Path | None,
        typer.Option("--oms", help="Verify this OpenSSF Model Signing bundle instead."),
    ] = None,
    public_key: Annotated[
        Path | None, typer.Option("--public-key", help="PEM public key for --oms.")
    ] = None,
    json_out: JsonOpt = False,
) -> None:
    """Exit 0 when the checkpoint's root is ROOT; otherwise exit 1 and name what differs.
    With --oms, verify a model_signing bundle (and the tensor root it carries, if any)."""
    if oms_bundle is not None:
        _verify_oms(path, oms_bundle, public_key, json_out)
        return
    if root is None:
        raise errors.InvalidInputError("give --root HEX (or --oms BUNDLE --public-key KEY)")
    result = verify_attestation(path, root, reference=against, spot_check=spot_check, seed=seed)
    if json_out:
        print_json(result.to_dict())
    elif result.ok:
        what = f"{result.checked} sampled tensors" if spot_check is not None else "root"
        console.print(f"[green]ok[/green] {what} match {root}")
    else:
        console.print(f"[red]mismatch[/red] expected {root}, got {result.actual_root or '-'}")
        if against is not None and not result.reference_used:
            console.print(f"  {against} is not the attestation of {root}: cannot name tensors")
        for label, names in (
            ("changed", result.changed),
            ("missing", result.missing),
            ("added", result.added),
        ):
            for name in names:
                console.print(f"  {label}: {name}")
    if not result.ok:
        raise typer.Exit(1)


@attest_app.command("prove")
@handle_errors
def prove_cmd(
    path: Annotated[Path, typer.Argument(help="The checkpoint.")],
    tensor: Annotated[str, typer.Option("--tensor", help="Tensor name.")],
    root: Annotated[
        str | None, typer.Option("--root", help="Fail unless the checkpoint has this root.")
    ] = None,
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Write it here.")] = None,
) -> None:
    """Print an inclusion proof (JSON) of one tensor under the checkpoint's root."""
    att = attest(path, file_digests=False)
    if root is not None and att.root != root.lower():
        raise errors.IntegrityError(
            f"{path}: root is {att.root}, not {root}",
            path=str(path),
            rule="root",
            expected=root,
            actual=att.root,
        )
    proof = att.prove(tensor).to_dict()
    if output is not None:
        output.write_text(json.dumps(proof, indent=2) + "\n", encoding="utf-8")
    print_json(proof)


@attest_app.command("check-tensor")
@handle_errors
def check_tensor_cmd(
    path: Annotated[Path, typer.Argument(help="The checkpoint.")],
    proof: Annotated[Path, typer.Option("--proof", help="Proof JSON from `attest prove`.")],
    root: Annotated[str, typer.Option("--root", help="The trusted root.")],
) -> None:
    """Check one tensor's bytes against a proof and a root, reading only that tensor."""
    p = InclusionProof.from_dict(json.loads(proof.read_text(encoding="utf-8")))
    if verify_tensor(path, p.name, p, root):
        console.print(f"[green]ok[/green] {p.name} is leaf {p.index} of {root}")
        return
    console.print(f"[red]mismatch[/red] {p.name} does not check out against {root}")
    raise typer.Exit(1)


@handle_errors
def reattest(
    paths: Annotated[list[Path] | None, typer.Argument(help="Checkpoints to re-attest.")] = None,
    list_file: Annotated[
        Path | None, typer.Option("--list", help="File with one checkpoint path per line.")
    ] = None,
    expect: Annotated[
        Path | None,
        typer.Option("--expect", help="Expected roots (JSON map, previous report, ROOT PATH)."),
    ] = None,
    report: Annotated[
        Path | None, typer.Option("--report", help="Write the report (.json or .parquet).")
    ] = None,
    workers: Annotated[int, typer.Option("--workers", min=1, help="Checkpoints at once.")] = 2,
    ray_address: Annotated[
        str | None,
        typer.Option(
            "--ray",
            help="Run one Ray task per checkpoint: on the cluster at ADDRESS, or on a local "
            "Ray instance when given without one (paths must be readable on every node).",
            metavar="[ADDRESS]",
        ),
    ] = None,
    no_cache: NoCacheOpt = False,
    cache_dir: CacheDirOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Re-attest many checkpoints and report which roots drifted (exit 1 if any did or
    failed)."""
    todo = [str(p) for p in paths or []]
    if list_file is not None:
        lines = list_file.read_text(encoding="utf-8").splitlines()
        todo += [s.strip() for s in lines if s.strip() and not s.startswith("#")]
    if not todo:
        raise errors.InvalidInputError("no checkpoints: give paths or --list FILE")
    expected = read_expectations(expect) if expect is not None else {}
    with Progress(
        TextColumn("re-attesting"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("{task.description}"),
        console=err_console,
    ) as progress:
        task = progress.add_task("", total=len(todo))

        def advance(entry: ReattestEntry) -> None:
            progress.update(task, advance=1, description=f"{entry.status} {entry.path}")

        cache = _cache(no_cache, cache_dir)
        cache_arg = None if cache is None else str(cache)
        if ray_address is not None:
            entries = ray_tasks.ray_reattest(
                todo, expected, address=ray_address, on_done=advance, cache_dir=cache_arg
            )
        else:
            entries = run_reattest(
                todo, expected, workers=workers, on_done=advance, cache_dir=cache_arg
            )
    if report is not None:
        write_report(entries, report)
    if json_out:
        print_json([asdict(e) for e in entries])
    else:
        table = Table("path", "status", "root", "expected", "tensors", "seconds")
        colors = {"ok": "green", "new": "cyan", "drift": "red", "error": "red"}
        for e in entries:
            table.add_row(
                e.path,
                f"[{colors[e.status]}]{e.status}[/{colors[e.status]}]",
                _short(e.root),
                _short(e.expected),
                "-" if e.tensors is None else str(e.tensors),
                f"{e.seconds:.2f}",
            )
        console.print(table)
        for e in entries:
            if e.error:
                err_console.print(f"[red]error[/red] {e.path}: {e.error}")
    if any(e.status in ("drift", "error") for e in entries):
        raise typer.Exit(1)
