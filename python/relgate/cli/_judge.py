"""Options shared by the commands that build a judge locally (`judge calibrate`, `judge
batch`, `bench judge`, `worker`)."""

from __future__ import annotations

from typing import Annotated, Any

import typer

BackendOpt = Annotated[
    str, typer.Option("--judge", help="Judge backend: embedding, openai, transformers or vllm.")
]
ModelOpt = Annotated[
    str | None,
    typer.Option("--model", help="Model of an LLM judge (path, repo or served model name)."),
]
BaseUrlOpt = Annotated[
    str | None,
    typer.Option("--base-url", help="OpenAI-compatible endpoint of the openai judge (…/v1)."),
]


def judge_options(backend: str, model: str | None, base_url: str | None) -> dict[str, Any]:
    """Constructor arguments of a judge backend from CLI options."""
    options: dict[str, Any] = {}
    if backend == "openai":
        options = {"base_url": base_url or "http://127.0.0.1:8000/v1", "model": model or "judge"}
    elif backend in ("transformers", "vllm"):
        if model is None:
            raise typer.BadParameter("--model is required for this judge", param_hint="--model")
        options = {"model": model}
    elif model is not None:
        options = {"model_dir": model}
    return options
