"""`relgate serve`: the gRPC API, the web port (health, metrics) and anchoring."""

from __future__ import annotations

import asyncio
import logging
import shlex
import sys
from pathlib import Path
from typing import Annotated

import typer

from relgate.access import DEFAULT_TENANT
from relgate.cli._common import handle_errors


@handle_errors
def serve(
    data_dir: Annotated[Path, typer.Option("--data-dir", help="State directory (store, keys).")],
    store: Annotated[
        str | None,
        typer.Option(
            "--store", help="Store URL (default: SQLite in --data-dir).", show_default=False
        ),
    ] = None,
    host: Annotated[str, typer.Option("--host", help="Bind address.")] = "127.0.0.1",
    grpc_port: Annotated[
        int,
        typer.Option(
            "--grpc-port", min=0, max=65535, envvar="RELGATE_GRPC_PORT", help="gRPC API port."
        ),
    ] = 50051,
    gateway_port: Annotated[
        int,
        typer.Option(
            "--gateway-port",
            min=0,
            max=65535,
            envvar="RELGATE_GATEWAY_PORT",
            help="OpenAI-compatible gateway (data plane).",
        ),
    ] = 8080,
    gateway_require_key: Annotated[
        bool,
        typer.Option(
            "--gateway-require-key",
            help="Refuse gateway requests without a gateway key (keys create --role gateway); "
            "without it they are the default tenant's.",
        ),
    ] = False,
    time_scale: Annotated[
        float,
        typer.Option(
            "--time-scale",
            min=0.001,
            help="Run the rollout clock (holds, observer minutes) this many times faster "
            "(demos and tests; the timeline is kept in --data-dir).",
        ),
    ] = 1.0,
    rollout_tick: Annotated[
        float,
        typer.Option("--rollout-tick", min=0.01, help="Seconds between rollout controller ticks."),
    ] = 1.0,
    lease_ttl: Annotated[
        float,
        typer.Option(
            "--lease-ttl",
            min=0.1,
            max=3600,
            help="Seconds the leader's lease lasts: with several servers on one store, a dead "
            "leader is replaced within about this long (docs/scale-out.md).",
        ),
    ] = 5.0,
    web_port: Annotated[
        int,
        typer.Option(
            "--web-port",
            min=0,
            max=65535,
            envvar="RELGATE_WEB_PORT",
            help="Dashboard, /healthz and /metrics.",
        ),
    ] = 8081,
    tls_cert: Annotated[Path | None, typer.Option("--tls-cert", help="PEM certificate.")] = None,
    tls_key: Annotated[Path | None, typer.Option("--tls-key", help="PEM private key.")] = None,
    anchor_dir: Annotated[
        Path | None, typer.Option("--anchor-dir", help="Anchor signed tree heads here.")
    ] = None,
    anchor_command: Annotated[
        str | None,
        typer.Option("--anchor-command", help="Command that receives each signed tree head."),
    ] = None,
    anchor_tsa: Annotated[
        str | None,
        typer.Option("--anchor-tsa", help="RFC 3161 timestamp authority URL for tree heads."),
    ] = None,
    anchor_interval: Annotated[
        float, typer.Option("--anchor-interval", min=0.01, help="Seconds between anchors.")
    ] = 300.0,
    weights_root: Annotated[
        Path | None,
        typer.Option(
            "--weights-root",
            help="Resolve relative weight paths of manifests here (default: working dir).",
        ),
    ] = None,
    suites_dir: Annotated[
        Path | None,
        typer.Option(
            "--suites-dir", help="Gate suites: manifests' dataset refs resolve here (or shipped)."
        ),
    ] = None,
    data_root: Annotated[
        Path | None,
        typer.Option(
            "--data-root",
            metavar="DIR",
            help="Answers files named by a server path (`gate run --answers server:PATH`) must "
            "lie under this directory (.. and symlinks resolved); without it only uploads and "
            "the package's shipped files are read.",
        ),
    ] = None,
    max_upload_bytes: Annotated[
        int,
        typer.Option(
            "--max-upload-bytes", metavar="BYTES", min=1, help="Largest answers/suite upload."
        ),
    ] = 256 << 20,
    gate_judge: Annotated[
        str,
        typer.Option(
            "--gate-judge", help="Default gate judge: embedding, openai, transformers or vllm."
        ),
    ] = "embedding",
    gate_judge_model: Annotated[
        str | None, typer.Option("--gate-judge-model", help="Model of the default judge.")
    ] = None,
    gate_judge_base_url: Annotated[
        str | None,
        typer.Option("--gate-judge-base-url", help="Endpoint of an openai default judge."),
    ] = None,
    gate_run_stale: Annotated[
        float,
        typer.Option(
            "--gate-run-stale",
            min=0.5,
            max=3600,
            help="Seconds a gate run may go without its server's heartbeat before the leader "
            "resumes it from the rows already scored (docs/scale-out.md).",
        ),
    ] = 10.0,
    reuse_answers: Annotated[
        bool,
        typer.Option(
            "--reuse-answers/--no-reuse-answers",
            help="Gating from the release's endpoint, take the previous release's answer to a "
            "request byte for byte the one it sent to the same attested weights instead of "
            "asking the model again (off: ask every item again).",
        ),
    ] = True,
    grace: Annotated[
        float, typer.Option("--grace", min=0.0, help="Seconds calls in flight get on SIGTERM.")
    ] = 10.0,
    log_level: Annotated[str, typer.Option("--log-level")] = "INFO",
) -> None:
    """Serve gRPC (--grpc-port), the gateway (--gateway-port) and /healthz, /metrics
    (--web-port) until SIGTERM."""
    from relgate import dashboard
    from relgate.app.gates import GateOptions
    from relgate.app.rollouts import RolloutOptions
    from relgate.cli._judge import judge_options
    from relgate.gate.sources import JudgeChoice
    from relgate.service.server import create_server, run_until_signal

    logging.basicConfig(
        level=log_level.upper(),
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    argv = shlex.split(anchor_command) if anchor_command else None
    gate = GateOptions(
        suites_dir=suites_dir,
        data_root=data_root,
        max_upload_bytes=max_upload_bytes,
        judge=JudgeChoice(
            gate_judge, judge_options(gate_judge, gate_judge_model, gate_judge_base_url)
        ),
        run_heartbeat_s=min(1.0, gate_run_stale / 4),
        run_stale_s=gate_run_stale,
        reuse_answers=reuse_answers,
    )

    async def main() -> None:
        running = await create_server(
            data_dir,
            store_url=store,
            host=host,
            grpc_port=grpc_port,
            web_port=web_port,
            tls_cert=tls_cert,
            tls_key=tls_key,
            anchor_dir=anchor_dir,
            anchor_command=argv,
            anchor_interval=anchor_interval,
            anchor_tsa=anchor_tsa,
            weights_root=weights_root,
            gateway_port=gateway_port,
            gateway_anonymous_tenant=None if gateway_require_key else DEFAULT_TENANT,
            time_scale=time_scale,
            rollout=RolloutOptions(tick_interval_s=rollout_tick, lease_ttl_s=lease_ttl),
            gate=gate,
            web_extension=dashboard.mount,
        )
        key = running.admin_key_path or "(bootstrap key already issued)"
        # One line on stdout with the bound ports: scripts and tests read it (ports may be 0).
        print(
            f"relgate serving grpc={running.address} web={running.web_url} admin_key={key} "
            f"gateway={running.gateway_url}",
            flush=True,
        )
        await run_until_signal(running, grace=grace)

    asyncio.run(main())
