"""Model engines. ``http`` is the one way relgate talks to an OpenAI-compatible server (a
release's model or an LLM judge); the rest start and stop model servers as managed child
processes on 127.0.0.1 (llama.cpp's server on CPU, vLLM's on GPU, or any command).

    from relgate.engines import LlamaCppServer

    with LlamaCppServer("smollm2", n_threads=2, seed=0) as engine:
        engine.base_url       # http://127.0.0.1:PORT/v1, what a release's model.endpoint names
        engine.served_model   # "smollm2", what requests put in "model"

See ``process`` for the lifecycle guarantees (readiness, stop, no leftovers) and ``llamacpp``
for the CPU defaults and why. vLLM is imported by nobody here: ``VLLMServer`` only looks it up
when started.
"""

from __future__ import annotations

from relgate.engines.client import ChatReply, EngineResponseError, chat
from relgate.engines.llamacpp import (
    SHIPPED_MODELS,
    LlamaCppServer,
    ShippedModel,
    cpu_has_amx,
    resolve_model,
    smollm2_gguf,
)
from relgate.engines.process import (
    CommandEngine,
    EngineError,
    ManagedEngine,
    check_models,
    free_port,
)
from relgate.engines.vllm_server import VLLMServer

__all__ = [
    "SHIPPED_MODELS",
    "ChatReply",
    "CommandEngine",
    "EngineError",
    "EngineResponseError",
    "LlamaCppServer",
    "ManagedEngine",
    "ShippedModel",
    "VLLMServer",
    "chat",
    "check_models",
    "cpu_has_amx",
    "free_port",
    "resolve_model",
    "smollm2_gguf",
]
