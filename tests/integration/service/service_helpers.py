"""Helpers for the service integration tests. A uniquely named module: several test
directories have a `conftest`, so `from conftest import ...` would be ambiguous."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc

_SERVING = re.compile(r"relgate serving grpc=(\S+) web=(\S+) admin_key=(\S+)")


def manifest_doc(n: int = 0, *, previous: str | None = None, **extra: Any) -> dict[str, Any]:
    """A valid closed-weight manifest; `n` varies the content (and so the sha)."""
    doc: dict[str, Any] = {
        "model": {
            "kind": "api",
            "provider": "openai-compatible",
            "model": f"test-model-{n}",
            "endpoint": "http://127.0.0.1:9/v1",
        },
        "prompt_template": {
            "ref": "qa-v1",
            "system": "Answer briefly.",
            "template": "Q: {question}\nA:",
            "variables": ["question"],
        },
        "routing": [{"domain": "general"}],
        "dataset": {"ref": "suite-v1", "sha256": "ab" * 32},
        "previous_release": previous,
    }
    doc.update(extra)
    return doc


def manifest_bytes(n: int = 0, *, previous: str | None = None, **extra: Any) -> bytes:
    """`manifest_doc` as JSON bytes."""
    return json.dumps(manifest_doc(n, previous=previous, **extra)).encode()


def status_code(fn: Callable[[], object]) -> grpc.StatusCode:
    """The gRPC status of a raw call that is expected to fail."""
    try:
        fn()
    except grpc.RpcError as exc:
        assert isinstance(exc, grpc.Call)
        return exc.code()
    raise AssertionError("call succeeded")


def raw_call(
    address: str, method: str, payload: bytes, key: str | None, *, timeout: float = 10
) -> bytes:
    """A unary call with a raw body and the key in metadata; raises grpc.RpcError."""
    with grpc.insecure_channel(address) as channel:
        stub = channel.unary_unary(method, request_serializer=None, response_deserializer=None)
        metadata = (("authorization", f"Bearer {key}"),) if key else ()
        reply: bytes = stub(payload, metadata=metadata, timeout=timeout)
        return reply


@dataclass
class ServeProcess:
    """A `relgate serve` subprocess and its bound addresses."""

    proc: subprocess.Popen[str]
    address: str
    web_url: str
    data_dir: Path
    stderr_lines: list[str]
    stderr_reader: threading.Thread

    @property
    def admin_key(self) -> str:
        return (self.data_dir / "admin.key").read_text().strip()

    def log(self) -> str:
        """Everything the server wrote to stderr; complete once the process has exited."""
        if self.proc.poll() is not None:
            self.stderr_reader.join(timeout=30)  # EOF follows exit
        return "".join(self.stderr_lines)

    def signal(self, sig: signal.Signals) -> int:
        self.proc.send_signal(sig)
        return self.proc.wait(timeout=30)


def start_serve(data_dir: Path, *extra: str, timeout: float = 60) -> ServeProcess:
    """Start `python -m relgate serve` on ports 0 and wait for its "serving" line."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    argv = [sys.executable, "-m", "relgate", "serve", "--data-dir", str(data_dir)]
    argv += ["--grpc-port", "0", "--web-port", "0", "--gateway-port", "0", "--grace", "5"]
    argv += extra
    proc = subprocess.Popen(
        argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
    )
    assert proc.stdout is not None and proc.stderr is not None
    stderr_lines: list[str] = []
    # Drain stderr continuously so the child never blocks on a full pipe.
    stderr_reader = threading.Thread(
        target=lambda: stderr_lines.extend(iter(proc.stderr.readline, "")),  # type: ignore[union-attr]
        daemon=True,
    )
    stderr_reader.start()
    found: list[str] = []
    reader = threading.Thread(target=lambda: found.append(proc.stdout.readline()), daemon=True)  # type: ignore[union-attr]
    reader.start()
    reader.join(timeout)
    match = _SERVING.search(found[0]) if found else None
    if match is None:
        proc.kill()
        proc.wait()
        raise AssertionError(f"serve did not start: {found} {''.join(stderr_lines)[-2000:]}")
    return ServeProcess(proc, match.group(1), match.group(2), data_dir, stderr_lines, stderr_reader)


def wait_for(predicate: Callable[[], bool], timeout: float = 20.0, what: str = "") -> None:
    """Poll `predicate` until true or the deadline (no fixed sleeps)."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what or predicate}")
        time.sleep(0.02)
