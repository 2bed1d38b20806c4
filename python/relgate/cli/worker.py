"""`relgate worker`: a judge worker process next to the accelerators.

    relgate worker --control HOST:PORT --backend embedding|openai|transformers|vllm [--model M]

It authenticates with a worker key (`relgate keys create --role worker`, passed as
RELGATE_API_KEY), registers its judge with the control plane, and scores the jobs it pulls
until SIGTERM / SIGINT.
"""

from __future__ import annotations

import logging
import signal
import threading
from typing import Annotated

import typer

from relgate.cli._common import ApiKeyOpt, handle_errors
from relgate.cli._judge import BaseUrlOpt, ModelOpt, judge_options
from relgate.errors import AuthError


@handle_errors
def worker_cmd(
    control: Annotated[
        str, typer.Option("--control", help="gRPC address of the control plane (HOST:PORT).")
    ],
    backend: Annotated[
        str, typer.Option("--backend", help="embedding, openai, transformers or vllm.")
    ] = "embedding",
    model: ModelOpt = None,
    base_url: BaseUrlOpt = None,
    device: Annotated[
        str | None, typer.Option("--device", help="cpu or cuda (local backends).")
    ] = None,
    capacity: Annotated[
        int, typer.Option("--capacity", min=1, max=1024, help="Jobs held at once.")
    ] = 1,
    name: Annotated[
        str | None, typer.Option("--name", help="Name shown by the control plane.")
    ] = None,
    api_key: ApiKeyOpt = None,
    tls: Annotated[bool, typer.Option("--tls", help="Connect with TLS (system CAs).")] = False,
) -> None:
    """Serve judge jobs for the control plane until interrupted."""
    from relgate.judge import make_judge
    from relgate.worker.runner import WorkerRunner

    if not api_key:
        raise AuthError("a worker needs its API key: RELGATE_API_KEY (role worker)")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    options = judge_options(backend, model, base_url)
    if device is not None and backend in ("embedding", "transformers"):
        options["device"] = device
    judge = make_judge(backend, **options)
    runner = WorkerRunner(
        control,
        api_key,
        judge,
        backends=[backend],
        model=model or "",
        capacity=capacity,
        name=name,
        tls=tls,
    )
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    typer.echo(f"worker judge {judge.judge_sha256} -> {control}", err=True)
    runner.run(stop)
