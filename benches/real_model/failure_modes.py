"""What llama.cpp's server (llama-cpp-python) does when things go wrong, and what relgate's
clients make of it: over-long prompts, malformed bodies, missing logprobs, a server killed or
frozen mid-request, streaming cut by a second request, a corrupt model file, a busy port.

    PYTHONPATH=python /work/main/.venv/bin/python benches/real_model/failure_modes.py
"""

from __future__ import annotations

import json
import os
import signal
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from common import DATA, machine, write_json
from relgate.answers import from_endpoint
from relgate.engines import EngineError, LlamaCppServer, chat
from relgate.errors import RelgateError
from relgate.judge.llm import OpenAIJudge, judge_messages


def raw_post(url: str, body: bytes, timeout_s: float = 60.0) -> dict[str, Any]:
    req = urllib.request.Request(
        url, data=body, headers={"Content-Type": "application/json"}, method="POST"
    )
    t0 = time.perf_counter()
    try:
        with urllib.request.urlopen(req, timeout=timeout_s) as resp:
            text = resp.read().decode("utf-8", "replace")
            status = resp.status
    except urllib.error.HTTPError as exc:
        text, status = exc.read().decode("utf-8", "replace"), exc.code
    except Exception as exc:
        return {"error": f"{type(exc).__name__}: {exc}", "s": time.perf_counter() - t0}
    return {"status": status, "body": text, "s": round(time.perf_counter() - t0, 3)}


def outcome(fn: Any) -> dict[str, Any]:
    t0 = time.perf_counter()
    try:
        value = fn()
        return {"ok": True, "value": value, "s": round(time.perf_counter() - t0, 3)}
    except RelgateError as exc:
        return {
            "ok": False,
            "error": type(exc).__name__,
            "message": " ".join(str(exc).split())[:400],
            "s": round(time.perf_counter() - t0, 3),
        }
    except Exception as exc:  # anything that is not a relgate error is itself a finding
        return {
            "ok": False,
            "unexpected": f"{type(exc).__name__}: {exc}"[:400],
            "s": round(time.perf_counter() - t0, 3),
        }


def bodies(engine: LlamaCppServer) -> dict[str, Any]:
    url = engine.base_url + "/chat/completions"
    msgs = [{"role": "user", "content": "Say hi."}]
    long_prompt = " ".join(["law"] * 400)
    out: dict[str, Any] = {}
    cases: dict[str, Any] = {
        "invalid_json": b"{not json",
        "no_messages": {"model": "smollm2", "max_tokens": 4},
        "messages_not_list": {"model": "smollm2", "messages": "hi", "max_tokens": 4},
        "empty_messages": {"model": "smollm2", "messages": [], "max_tokens": 4},
        "max_tokens_string": {"model": "smollm2", "messages": msgs, "max_tokens": "x"},
        "unknown_model_name": {"model": "no-such-model", "messages": msgs, "max_tokens": 4},
        "negative_temperature": {
            "model": "smollm2",
            "messages": msgs,
            "max_tokens": 4,
            "temperature": -1,
        },
        "top_logprobs_50": {
            "model": "smollm2",
            "messages": msgs,
            "max_tokens": 1,
            "logprobs": True,
            "top_logprobs": 50,
        },
        "prompt_over_n_ctx": {
            "model": "smollm2",
            "messages": [{"role": "user", "content": long_prompt}],
            "max_tokens": 4,
        },
        "prompt_plus_max_tokens_over_n_ctx": {
            "model": "smollm2",
            "messages": [{"role": "user", "content": " ".join(["law"] * 200)}],
            "max_tokens": 200,
        },
    }
    for name, body in cases.items():
        raw = body if isinstance(body, bytes) else json.dumps(body).encode()
        res = raw_post(url, raw)
        if name == "prompt_plus_max_tokens_over_n_ctx" and res.get("status") == 200:
            doc = json.loads(res["body"])
            res["finish_reason"] = (doc.get("choices") or [{}])[0].get("finish_reason")
            res["usage"] = doc.get("usage")
        if name == "top_logprobs_50" and res.get("status") == 200:
            try:
                doc = json.loads(res.pop("body"))
                res["top_logprobs_returned"] = len(
                    doc["choices"][0]["logprobs"]["content"][0]["top_logprobs"]
                )
            except (ValueError, KeyError, IndexError, TypeError) as exc:
                res["parse"] = repr(exc)
        if "body" in res:
            res["body"] = res["body"][:400]
        out[name] = res
        print(name, res, flush=True)
    # relgate's clients on the over-long prompt
    out["chat_client_prompt_over_n_ctx"] = outcome(
        lambda: (
            chat(
                engine.base_url, "smollm2", cases["prompt_over_n_ctx"]["messages"], max_tokens=4
            ).text
        )
    )
    out["judge_prompt_over_n_ctx"] = outcome(
        lambda: OpenAIJudge(engine.base_url, "smollm2", retries=1).agree(long_prompt, "yes")
    )
    # The gate's answer source on a prompt that fits but leaves no room to generate: the
    # server answers 200 with empty content, which is recorded as the release's answer.
    out["from_endpoint_prompt_near_n_ctx"] = outcome(
        lambda: from_endpoint(
            {"i1": " ".join(["law"] * 200)},
            base_url=engine.base_url,
            model="smollm2",
            max_tokens=200,
        )["i1"]
    )
    out["engine_alive_after_bad_bodies"] = outcome(engine.check)
    return out


def logprob_cases(engine: LlamaCppServer) -> dict[str, Any]:
    msgs = judge_messages("Paris is the capital of France.", "The capital of France is Paris.")
    out: dict[str, Any] = {}

    def probe(**params: Any) -> dict[str, Any]:
        r = chat(engine.base_url, "smollm2", msgs, max_tokens=1, temperature=0.0, **params)
        return {
            "text": r.text,
            "finish_reason": r.finish_reason,
            "top_logprobs": None if r.top_logprobs is None else [len(t) for t in r.top_logprobs],
            "logprobs_field": r.raw["choices"][0].get("logprobs") is not None,
        }

    out["logprobs_true_no_top"] = outcome(lambda: probe(logprobs=True))
    out["top_logprobs_0"] = outcome(lambda: probe(logprobs=True, top_logprobs=0))
    out["no_logprobs_requested"] = outcome(lambda: probe())
    out["stop_eats_the_answer_token"] = outcome(
        lambda: probe(logprobs=True, top_logprobs=20, stop=["yes", "Yes", "no", "No"])
    )
    # What the shipped judge makes of a reply whose first token is cut by a stop sequence is
    # not reachable (it sends no stop); an answer the model ends at once is: max_tokens=1 and
    # an empty completion. Count, over a few prompts, how often the content list is empty.
    print("logprobs", out, flush=True)
    return out


def kill_mid_request(tmp: Path) -> dict[str, Any]:
    out: dict[str, Any] = {}
    with LlamaCppServer("smollm2", n_threads=1, log_path=tmp / "kill.log") as engine:
        box: dict[str, Any] = {}

        def long_request() -> None:
            box["r"] = outcome(
                lambda: chat(
                    engine.base_url,
                    "smollm2",
                    [{"role": "user", "content": "Write a very long story about a lawyer."}],
                    max_tokens=400,
                    temperature=0.7,
                    timeout_s=60,
                ).text[:40]
            )

        t = threading.Thread(target=long_request)
        t.start()
        time.sleep(1.0)
        assert engine.pid is not None
        os.kill(engine.pid, signal.SIGKILL)
        t.join()
        out["chat_when_killed"] = box["r"]
        out["engine_check_after_kill"] = outcome(engine.check)
        out["judge_after_kill"] = outcome(
            lambda: OpenAIJudge(engine.base_url, "smollm2", retries=2).agree("a", "b")
        )
        out["answers_from_endpoint_after_kill"] = outcome(
            lambda: len(
                from_endpoint({"i1": "q"}, base_url=engine.base_url, model="smollm2", retries=1)
            )
        )
    out["returncode_after_stop"] = engine.returncode
    print("kill", out, flush=True)
    return out


def freeze(tmp: Path) -> dict[str, Any]:
    """A server that hangs (SIGSTOP): timeouts, then stop() must still end it."""
    out: dict[str, Any] = {}
    engine = LlamaCppServer(
        "smollm2", n_threads=1, log_path=tmp / "freeze.log", stop_grace_s=3.0
    ).start()
    assert engine.pid is not None
    os.kill(engine.pid, signal.SIGSTOP)
    out["chat_timeout_3s"] = outcome(
        lambda: (
            chat(
                engine.base_url,
                "smollm2",
                [{"role": "user", "content": "hi"}],
                max_tokens=2,
                timeout_s=3,
            ).text
        )
    )
    out["judge_timeout_2s_retries_1"] = outcome(
        lambda: OpenAIJudge(engine.base_url, "smollm2", retries=1, timeout_s=2).agree("a", "b")
    )
    out["check_while_frozen"] = outcome(engine.check)
    t0 = time.perf_counter()
    code = engine.stop()
    out["stop_frozen"] = {"returncode": code, "s": round(time.perf_counter() - t0, 2)}
    print("freeze", out, flush=True)
    return out


def streaming_interrupt(tmp: Path, interrupt: bool) -> dict[str, Any]:
    """Two concurrent streams: does the second cut the first short?"""
    with LlamaCppServer(
        "smollm2", n_threads=1, interrupt_requests=interrupt, log_path=tmp / "stream.log"
    ) as engine:
        results: dict[str, Any] = {}

        def stream(name: str) -> None:
            body = json.dumps(
                {
                    "model": "smollm2",
                    "messages": [{"role": "user", "content": "Count from one to fifty in words."}],
                    "max_tokens": 48,
                    "temperature": 0.0,
                    "stream": True,
                }
            ).encode()
            req = urllib.request.Request(
                engine.base_url + "/chat/completions",
                data=body,
                headers={"Content-Type": "application/json"},
            )
            chunks, finish = 0, None
            with urllib.request.urlopen(req, timeout=120) as resp:
                for line in resp:
                    if not line.startswith(b"data: {"):
                        continue
                    doc = json.loads(line[6:])
                    choice = doc["choices"][0]
                    if choice.get("delta", {}).get("content"):
                        chunks += 1
                    finish = choice.get("finish_reason") or finish
            results[name] = {"content_chunks": chunks, "finish_reason": finish}

        first = threading.Thread(target=stream, args=("first",))
        first.start()
        time.sleep(1.0)
        second = threading.Thread(target=stream, args=("second",))
        second.start()
        first.join()
        second.join()
    out = {"interrupt_requests": interrupt, **results}
    print("stream", out, flush=True)
    return out


def bad_model(tmp: Path) -> dict[str, Any]:
    corrupt = tmp / "corrupt.gguf"
    corrupt.write_bytes(b"GGUF" + os.urandom(4096))
    res = outcome(
        lambda: (
            LlamaCppServer(corrupt, log_path=tmp / "corrupt.log", startup_timeout_s=60)
            .start()
            .stop()
        )
    )
    return res


def busy_port(tmp: Path) -> dict[str, Any]:
    with LlamaCppServer("smollm2", n_threads=1, log_path=tmp / "a.log") as first:
        second = LlamaCppServer(
            "smollm2", n_threads=1, port=first.port, log_path=tmp / "b.log", startup_timeout_s=30
        )
        res = outcome(lambda: second.start().port)
        if res["ok"]:
            second.stop()
    return res


def main() -> None:
    tmp = Path(os.environ.get("TMPDIR", "/tmp")) / f"relgate-failure-{os.getpid()}"
    tmp.mkdir(parents=True, exist_ok=True)
    result: dict[str, Any] = {"machine_before": machine()}
    with LlamaCppServer("smollm2", n_threads=1, n_ctx=256, log_path=tmp / "ctx.log") as engine:
        result["startup_s_n_ctx_256"] = engine.startup_s
        result["bodies_n_ctx_256"] = bodies(engine)
        result["logprobs"] = logprob_cases(engine)
    result["kill_mid_request"] = kill_mid_request(tmp)
    result["freeze"] = freeze(tmp)
    result["stream_interrupt_true"] = streaming_interrupt(tmp, True)
    result["stream_interrupt_false"] = streaming_interrupt(tmp, False)
    result["corrupt_model"] = bad_model(tmp)
    print("corrupt", result["corrupt_model"], flush=True)
    result["busy_port"] = busy_port(tmp)
    print("busy port", result["busy_port"], flush=True)
    result["machine_after"] = machine()
    write_json(DATA / "failure_modes.json", result)
    print("wrote", DATA / "failure_modes.json")
    _ = EngineError


if __name__ == "__main__":
    main()
