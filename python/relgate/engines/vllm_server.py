"""vLLM's OpenAI-compatible API server as a managed engine (GPU nodes; never required).

``vllm`` is looked up only when a ``VLLMServer`` is started (``find_spec``, no import in this
process): relgate imports and runs without it. The module is not called ``vllm.py`` so that
nothing on this directory's path can shadow the real package.
"""

from __future__ import annotations

import importlib.util
from typing import Any

from relgate.engines.process import EngineError, ManagedEngine

__all__ = ["VLLMServer"]


class VLLMServer(ManagedEngine):
    """``python -m vllm.entrypoints.openai.api_server`` for one model on 127.0.0.1.

    ``model`` is a local path or a repo id already in the local Hugging Face cache (the
    child runs with ``HF_HUB_OFFLINE=1`` unless ``env`` says otherwise: nothing downloads
    weights at run time). vLLM's port is chosen up front (its log format is not a contract).
    """

    engine = "vllm"

    def __init__(
        self,
        model: str,
        *,
        alias: str | None = None,
        seed: int = 0,
        max_model_len: int | None = None,
        gpu_memory_utilization: float | None = None,
        extra_args: tuple[str, ...] = (),
        startup_timeout_s: float = 600.0,
        **kwargs: Any,
    ) -> None:
        super().__init__(served_model=alias or model, startup_timeout_s=startup_timeout_s, **kwargs)
        self.model = model
        self.seed = seed
        self.max_model_len = max_model_len
        self.gpu_memory_utilization = gpu_memory_utilization
        self.extra_args = tuple(extra_args)

    def preflight(self) -> None:
        """vLLM must be installed (``pip install 'relgate[gpu]'``)."""
        if importlib.util.find_spec("vllm") is None:
            raise EngineError("vllm: not installed; pip install 'relgate[gpu]' on a GPU node")

    def child_env(self) -> dict[str, str]:
        """Offline by default."""
        env = super().child_env()
        for name in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"):
            if name not in self.extra_env:
                env[name] = "1"
        return env

    def argv(self, port: int) -> list[str]:
        """``-m vllm.entrypoints.openai.api_server`` with model, name, loopback host, port."""
        args = [
            "-m",
            "vllm.entrypoints.openai.api_server",
            "--model",
            self.model,
            "--served-model-name",
            self.served_model,
            "--host",
            self.host,
            "--port",
            str(port),
            "--seed",
            str(self.seed),
        ]
        if self.max_model_len is not None:
            args += ["--max-model-len", str(self.max_model_len)]
        if self.gpu_memory_utilization is not None:
            args += ["--gpu-memory-utilization", str(self.gpu_memory_utilization)]
        return [*args, *self.extra_args]
