"""`relgate model ...`: run a real model server on this machine (no relgate server needed).

    relgate model serve [--engine llamacpp|vllm] [--model PATH|smollm2] [--port N] ...
    relgate model list-shipped

`serve` starts the engine as a managed child on 127.0.0.1, prints its OpenAI-compatible base
URL (what a release's `model.endpoint` names) and runs until Ctrl-C or SIGTERM, or until the
engine dies (then it exits with the engine's error, exit code 9).
"""

from __future__ import annotations

import signal
import threading
from pathlib import Path
from typing import Annotated

import typer

from relgate.cli._common import JsonOpt, handle_errors, print_json, print_table

app = typer.Typer(help="Model servers: run a real model locally.", no_args_is_help=True)


@app.command("serve")
@handle_errors
def serve_cmd(
    engine: Annotated[
        str, typer.Option("--engine", help="llamacpp (CPU, GGUF) or vllm (GPU).")
    ] = "llamacpp",
    model: Annotated[
        str,
        typer.Option(
            "--model", help="A shipped model name (see list-shipped), a GGUF path or a vLLM model."
        ),
    ] = "smollm2",
    port: Annotated[int, typer.Option("--port", min=0, max=65535, help="0: a free port.")] = 0,
    alias: Annotated[
        str | None,
        typer.Option(
            "--alias", help="Served model name (default: the shipped name or the file stem)."
        ),
    ] = None,
    threads: Annotated[int, typer.Option("--threads", min=1, help="CPU threads (llamacpp).")] = 2,
    seed: Annotated[int, typer.Option("--seed", min=0)] = 0,
    n_ctx: Annotated[
        int, typer.Option("--n-ctx", min=64, help="Context tokens (llamacpp).")
    ] = 2048,
    log: Annotated[
        Path | None,
        typer.Option(
            "--log", help="Server log file (default: a temporary file, removed after a clean stop)."
        ),
    ] = None,
    startup_timeout: Annotated[
        float, typer.Option("--startup-timeout", min=1.0, help="Seconds to wait for readiness.")
    ] = 120.0,
    json_out: JsonOpt = False,
) -> None:
    """Serve MODEL on 127.0.0.1 until interrupted; print the base URL."""
    from relgate.engines import LlamaCppServer, ManagedEngine, VLLMServer

    server: ManagedEngine
    if engine == "llamacpp":
        server = LlamaCppServer(
            model,
            alias=alias,
            n_threads=threads,
            seed=seed,
            n_ctx=n_ctx,
            port=port,
            log_path=log,
            startup_timeout_s=startup_timeout,
        )
    elif engine == "vllm":
        server = VLLMServer(
            model,
            alias=alias,
            seed=seed,
            port=port,
            log_path=log,
            startup_timeout_s=max(startup_timeout, 600.0),
        )
    else:
        raise typer.BadParameter("llamacpp or vllm", param_hint="--engine")

    stop = threading.Event()
    previous = {
        sig: signal.signal(sig, lambda *_: stop.set()) for sig in (signal.SIGINT, signal.SIGTERM)
    }
    try:
        with server:
            info = {
                "engine": engine,
                "base_url": server.base_url,
                "served_model": server.served_model,
                "pid": server.pid,
                "log": str(server.log_path),
                "startup_s": round(server.startup_s or 0.0, 3),
            }
            if json_out:
                print_json(info)
            else:
                typer.echo(server.base_url)
                typer.echo(
                    f"{engine} serving {server.served_model!r} (pid {server.pid}, ready in "
                    f"{info['startup_s']} s, log {server.log_path}); Ctrl-C to stop",
                    err=True,
                )
            # Wake every second to notice an engine that died on its own.
            while not stop.wait(1.0):
                server.check()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    typer.echo("stopped", err=True)


@app.command("list-shipped")
@handle_errors
def list_shipped_cmd(json_out: JsonOpt = False) -> None:
    """Models that installed packages ship (no download): name, file, size, package."""
    from relgate.engines import SHIPPED_MODELS
    from relgate.errors import NotFoundError

    rows = []
    for name, shipped in SHIPPED_MODELS.items():
        try:
            path: Path | None = shipped.path()
        except NotFoundError:
            path = None
        rows.append(
            {
                "name": name,
                "path": str(path) if path else None,
                "size_bytes": path.stat().st_size if path else None,
                "description": shipped.description,
                "package": shipped.package,
            }
        )
    if json_out:
        print_json(rows)
        return
    print_table(
        "Shipped models",
        ["name", "file", "size", "what", "package"],
        [
            [
                str(r["name"]),
                str(r["path"] or "not installed"),
                f"{int(r['size_bytes']) / 1e6:.0f} MB" if r["size_bytes"] else "-",
                str(r["description"]),
                str(r["package"]),
            ]
            for r in rows
        ],
    )
