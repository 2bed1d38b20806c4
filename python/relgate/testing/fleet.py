"""Gateway replica processes for tests and benches: ``relgate gateway`` on loopback.

:func:`start_replicas` starts ``n`` replicas (``python -m relgate gateway``, any free ports),
waits for each to print its ports, and returns handles; :meth:`Replica.stop` sends SIGTERM (the
replica drains) and waits. Not product code: a deployment runs the command itself
(docs/scale-out-gateway.md).
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from collections import deque
from dataclasses import dataclass, field
from typing import Any

_READY = re.compile(r"serving on http://([\d.]+):(\d+) \(health http://[\d.]+:(\d+)/healthz")


@dataclass
class Replica:
    """One running replica process."""

    name: str
    proc: subprocess.Popen[str]
    port: int
    health_port: int
    output: deque[str] = field(default_factory=lambda: deque(maxlen=200))
    reader: threading.Thread | None = None

    @property
    def url(self) -> str:
        """The gateway's base URL."""
        return f"http://127.0.0.1:{self.port}"

    def health(self) -> dict[str, Any]:
        """The replica's /healthz body (any status)."""
        try:
            with urllib.request.urlopen(
                f"http://127.0.0.1:{self.health_port}/healthz", timeout=5
            ) as r:
                body: dict[str, Any] = json.loads(r.read())
        except urllib.error.HTTPError as e:
            body = json.loads(e.read())
        return body

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 15.0) -> int:
        """Signal the process and wait for it (SIGKILL after ``timeout``)."""
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        if self.reader is not None:
            self.reader.join(5)
        if self.proc.stdout is not None:
            self.proc.stdout.close()
        return self.proc.returncode


def start_replicas(
    control: str, api_key: str, n: int, *, prefix: str = "gw", timeout: float = 60.0
) -> list[Replica]:
    """Start ``n`` replicas watching ``control``; returns once each listens."""
    env = {**os.environ, "RELGATE_API_KEY": api_key, "PYTHONUNBUFFERED": "1"}
    started: list[Replica] = []
    try:
        for i in range(n):
            name = f"{prefix}-{i}"
            proc = subprocess.Popen(
                [sys.executable, "-m", "relgate", "gateway", "--control", control, "--port", "0",
                 "--health-port", "0", "--name", name],
                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env,
            )  # fmt: skip
            started.append(Replica(name, proc, 0, 0))
        deadline = time.monotonic() + timeout
        for r in started:
            assert r.proc.stdout is not None
            while r.port == 0:
                line = r.proc.stdout.readline()
                if not line:
                    raise RuntimeError(f"replica {r.name} exited: {''.join(r.output)}")
                r.output.append(line)
                m = _READY.search(line)
                if m:
                    r.port, r.health_port = int(m.group(2)), int(m.group(3))
                if time.monotonic() > deadline:
                    raise RuntimeError(f"replica {r.name} did not start: {''.join(r.output)}")
            r.reader = threading.Thread(target=_drain, args=(r,), daemon=True)
            r.reader.start()
    except BaseException:
        for r in started:
            r.stop(signal.SIGKILL)
        raise
    return started


def _drain(r: Replica) -> None:
    assert r.proc.stdout is not None
    for line in r.proc.stdout:
        r.output.append(line)


def stop_replicas(replicas: list[Replica]) -> None:
    """SIGTERM every replica, then wait for each."""
    for r in replicas:
        if r.proc.poll() is None:
            r.proc.send_signal(signal.SIGTERM)
    for r in replicas:
        r.stop()
