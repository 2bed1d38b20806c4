"""Model servers as managed child processes: start, wait until ready, stop, never leak.

A :class:`ManagedEngine` runs one OpenAI-compatible server (llama.cpp's, vLLM's, or any command)
as a child process bound to 127.0.0.1:

- **start** launches it in its own process group with stdout and stderr in a log file, then
  polls ``GET /v1/models`` until the server lists the served model name, within a deadline.
  If the process exits first, or the deadline passes, or the endpoint keeps answering something
  that is not a model list naming ``served_model``, the process group is killed and an
  :class:`EngineError` names the engine, the exit status, the log file and its last lines.
- **stop** sends SIGTERM to the process group, waits ``stop_grace_s``, then SIGKILLs whatever
  is left of the group (a server's own children included) and reaps the child.
- **no leftovers**: a finaliser (which also runs at interpreter exit) kills the group of an
  engine that was never stopped, and a child started from the main thread asks the kernel to
  SIGTERM it when its parent dies (``PR_SET_DEATHSIG``, set by the ``_launch`` shim), so a
  crashed test or a killed CLI does not leave a server behind.

Port 0 means "pick a free port": engines that report their bound port in their log (uvicorn
does: ``Uvicorn running on http://127.0.0.1:PORT``) are given 0 and the port is read back, so
there is no race; for the others a free port is chosen just before launch.
"""

from __future__ import annotations

import abc
import contextlib
import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
import weakref
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Self

from relgate.errors import InvalidInputError, JudgeUnavailableError

__all__ = [
    "LOOPBACK",
    "CommandEngine",
    "EngineError",
    "ManagedEngine",
    "check_models",
    "free_port",
    "port_is_free",
    "tail",
]

LOOPBACK = "127.0.0.1"
_LAUNCH = Path(__file__).with_name("_launch.py")
# Bound on what a readiness probe reads: a server that streams garbage must not fill memory.
_MAX_PROBE_BYTES = 1 << 20
#: How uvicorn (llama.cpp's server) reports the port it bound.
UVICORN_PORT = r"Uvicorn running on https?://[^\s:]+:(\d+)"


class EngineError(JudgeUnavailableError):
    """A managed model server could not be started, died, or is not answering as a server.

    A ``JudgeUnavailableError`` (the engine is what serves answers and LLM-judge scores), with
    what is needed to debug it: the log file, its last lines and the exit status if it exited.
    """

    def __init__(
        self,
        message: str,
        *,
        log_path: Path | None = None,
        returncode: int | None = None,
        log_tail: str = "",
    ) -> None:
        super().__init__(message)
        self.log_path = log_path
        self.returncode = returncode
        self.log_tail = log_tail


def free_port(host: str = LOOPBACK) -> int:
    """A TCP port nobody listens on right now (for engines that cannot report theirs)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def port_is_free(host: str, port: int) -> bool:
    """Whether nothing listens on ``host:port`` (``SO_REUSEADDR``: TIME_WAIT does not count)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
        return True


def tail(path: Path, lines: int = 20, max_bytes: int = 64 * 1024) -> str:
    """The last ``lines`` lines of a (possibly huge, possibly binary) log file."""
    try:
        with path.open("rb") as fh:
            fh.seek(0, os.SEEK_END)
            size = fh.tell()
            fh.seek(max(0, size - max_bytes))
            data = fh.read()
    except OSError:
        return ""
    text = data.decode("utf-8", errors="replace")
    return "\n".join(text.splitlines()[-lines:])


def _describe_exit(returncode: int) -> str:
    if returncode < 0:
        try:
            return f"was killed by {signal.Signals(-returncode).name}"
        except ValueError:
            return f"was killed by signal {-returncode}"
    return f"exited with code {returncode}"


@dataclass
class _Child:
    """What the finaliser needs: the process and its group, never the engine itself."""

    proc: subprocess.Popen[bytes]
    pgid: int
    log: IO[bytes]

    def kill_now(self) -> None:
        """SIGKILL the whole group and reap (finaliser and last resort)."""
        _signal_group(self.pgid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout=5)
        self.log.close()


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


class ManagedEngine(abc.ABC):
    """An OpenAI-compatible model server run as a child process on 127.0.0.1.

    Subclasses say how to launch it (:meth:`argv`); this class does the rest. Use it as a
    context manager, or call :meth:`start` and :meth:`stop`.
    """

    #: Human-readable engine name, used in errors.
    engine: str = "engine"
    #: Regex whose group 1 is the bound port in the log; ``None``: the port is chosen up front.
    port_pattern: str | None = None

    def __init__(
        self,
        *,
        served_model: str,
        port: int = 0,
        host: str = LOOPBACK,
        startup_timeout_s: float = 120.0,
        stop_grace_s: float = 10.0,
        log_path: str | Path | None = None,
        env: Mapping[str, str] | None = None,
        probe_interval_s: float = 0.1,
    ) -> None:
        if not 0 <= port <= 65535:
            raise InvalidInputError(f"port {port} is outside 0..65535")
        if not served_model:
            raise InvalidInputError("served_model must not be empty")
        self.served_model = served_model
        self.host = host
        self.requested_port = port
        self.startup_timeout_s = startup_timeout_s
        self.stop_grace_s = stop_grace_s
        self.extra_env = dict(env or {})
        self.probe_interval_s = probe_interval_s
        self._log_path = Path(log_path) if log_path is not None else None
        self._own_log = log_path is None
        self._child: _Child | None = None
        self._finalizer: weakref.finalize[Any, Any] | None = None
        self._port: int | None = None
        self._log_start = 0
        self.startup_s: float | None = None
        self.returncode: int | None = None

    # ---- what subclasses provide ---------------------------------------------------------

    @abc.abstractmethod
    def argv(self, port: int) -> list[str]:
        """The command that starts the server listening on ``host:port`` (port 0 only when
        ``port_pattern`` is set)."""

    def launch_options(self) -> list[str]:
        """Extra options for the ``_launch`` shim (see ``relgate/engines/_launch.py``)."""
        return []

    def child_env(self) -> dict[str, str]:
        """Environment of the child: ours, plus the engine's defaults, plus ``env``."""
        return {**os.environ, **self.extra_env}

    def preflight(self) -> None:  # noqa: B027 (optional hook, nothing to check by default)
        """Checks before launching (files exist, packages installed); raise ``EngineError``."""

    # ---- state ------------------------------------------------------------------------------

    @property
    def port(self) -> int:
        """The port the server listens on (known once started)."""
        if self._port is None:
            raise EngineError(f"{self.engine}: not started")
        return self._port

    @property
    def url(self) -> str:
        """``http://127.0.0.1:PORT`` (no ``/v1``)."""
        return f"http://{self.host}:{self.port}"

    @property
    def base_url(self) -> str:
        """The OpenAI-compatible base URL, ``http://127.0.0.1:PORT/v1``."""
        return f"{self.url}/v1"

    @property
    def pid(self) -> int | None:
        """The child's pid while it runs."""
        return self._child.proc.pid if self._child is not None else None

    @property
    def log_path(self) -> Path | None:
        """Where the server's stdout and stderr go."""
        return self._log_path

    def running(self) -> bool:
        """True while the child process is alive."""
        return self._child is not None and self._child.proc.poll() is None

    def _log_since_start(self, max_bytes: int = 1 << 20) -> str:
        """What this start wrote to the log so far (its first MiB)."""
        if self._log_path is None:
            return ""
        try:
            with self._log_path.open("rb") as fh:
                fh.seek(self._log_start)
                return fh.read(max_bytes).decode("utf-8", errors="replace")
        except OSError:
            return ""

    def log_tail(self, lines: int = 20) -> str:
        """The last lines of the log."""
        return tail(self._log_path, lines) if self._log_path is not None else ""

    # ---- lifecycle ----------------------------------------------------------------------------

    def start(self) -> Self:
        """Launch the server and wait until it lists ``served_model`` on ``GET /v1/models``."""
        if self._child is not None:
            raise EngineError(f"{self.engine}: already started (pid {self.pid})")
        self.preflight()
        if self._log_path is None:
            fd, name = tempfile.mkstemp(prefix=f"relgate-{self.engine}-", suffix=".log")
            os.close(fd)
            self._log_path = Path(name)
        self._log_path.parent.mkdir(parents=True, exist_ok=True)
        reports_port = self.port_pattern is not None
        port = self.requested_port
        if port == 0 and not reports_port:
            port = free_port(self.host)
        elif port != 0 and not reports_port and not port_is_free(self.host, port):
            # Otherwise whatever already listens there would answer the readiness probe.
            raise EngineError(
                f"{self.engine}: port {port} on {self.host} is already in use",
                log_path=self._log_path,
            )
        launch = [sys.executable, str(_LAUNCH), *self.launch_options()]
        # Death signal only from the main thread: the kernel sends it when the *thread* that
        # forked exits, which for a worker thread would kill a healthy server.
        if threading.current_thread() is threading.main_thread():
            launch += ["--parent", str(os.getpid())]
        cmd = [*launch, "--", *self.argv(port)]
        log = self._log_path.open("ab")
        log.write(f"# relgate: {' '.join(cmd)}\n".encode())
        log.flush()
        # A log reused across starts holds an earlier server's port line: read only ours.
        self._log_start = log.tell()
        started = time.monotonic()
        try:
            proc = subprocess.Popen(
                cmd,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=self.child_env(),
                # A fresh directory: `python -m` puts the working directory on sys.path, and a
                # stray `types.py` there breaks the interpreter.
                cwd=self._log_path.parent,
                start_new_session=True,
            )
        except OSError as exc:
            log.close()
            raise EngineError(
                f"{self.engine}: cannot launch {cmd[4] if len(cmd) > 4 else cmd}: {exc}",
                log_path=self._log_path,
            ) from exc
        self._child = _Child(proc, proc.pid, log)
        self._finalizer = weakref.finalize(self, self._child.kill_now)
        # An engine that reports its port is ready only once *it* says it bound one: a fixed
        # port may be held by another server that would answer the probe in its place.
        self._port = None if reports_port else port
        try:
            self._wait_ready(started)
        except BaseException:
            self._abort()
            raise
        self.startup_s = time.monotonic() - started
        return self

    def _wait_ready(self, started: float) -> None:
        deadline = started + self.startup_timeout_s
        last = "no answer yet"
        while True:
            assert self._child is not None
            code = self._child.proc.poll()
            if code is not None:
                raise self._error(f"{_describe_exit(code)} before it was ready", code)
            if self._port is None:
                match = re.search(self.port_pattern or "$^", self._log_since_start())
                if match:
                    bound = int(match.group(1))
                    if self.requested_port not in (0, bound):
                        raise self._error(
                            f"bound port {bound}, not the requested {self.requested_port}", None
                        )
                    self._port = bound
            if self._port is not None:
                ok, last = self._probe()
                if ok:
                    return
            if time.monotonic() >= deadline:
                where = f"on port {self._port}" if self._port is not None else "(port unknown)"
                raise self._error(
                    f"not ready after {self.startup_timeout_s:.0f} s {where}: {last}", None
                )
            time.sleep(self.probe_interval_s)

    def _probe(self) -> tuple[bool, str]:
        """One readiness check: (ready, what was seen)."""
        return check_models(f"{self.url}/v1/models", self.served_model, timeout_s=2.0)

    def check(self) -> None:
        """Raise ``EngineError`` unless the process is alive and lists ``served_model``."""
        if self._child is None:
            raise EngineError(f"{self.engine}: not started")
        code = self._child.proc.poll()
        if code is not None:
            raise self._error(_describe_exit(code), code)
        ok, seen = self._probe()
        if not ok:
            raise self._error(f"not answering as a model server: {seen}", None)

    def _error(self, what: str, code: int | None) -> EngineError:
        lines = self.log_tail(15)
        hint = ""
        if code in (-signal.SIGILL, 132):
            hint = (
                " (an illegal instruction: the engine was built for CPU features this machine "
                "does not enable; for llama.cpp on CPUs that advertise AMX, extra_bufts=False)"
            )
        message = (
            f"{self.engine} serving {self.served_model!r} (pid {self.pid}) {what}{hint}; "
            f"log {self._log_path}"
        )
        if lines:
            message += ", last lines:\n" + lines
        return EngineError(message, log_path=self._log_path, returncode=code, log_tail=lines)

    def _abort(self) -> None:
        child, self._child = self._child, None
        if child is not None:
            child.kill_now()
            self.returncode = child.proc.returncode
        if self._finalizer is not None:
            self._finalizer.detach()

    def stop(self) -> int | None:
        """SIGTERM the process group, SIGKILL it after ``stop_grace_s``, reap; return the exit
        status (None if it was never started). Idempotent."""
        child, self._child = self._child, None
        if child is None:
            return self.returncode
        if self._finalizer is not None:
            self._finalizer.detach()
        _signal_group(child.pgid, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            child.proc.wait(timeout=self.stop_grace_s)
        # Always: the leader may be gone while its children (vLLM's workers) are not.
        _signal_group(child.pgid, signal.SIGKILL)
        child.proc.wait()
        child.log.close()
        self.returncode = child.proc.returncode
        if self._own_log and self._log_path is not None:
            self._log_path.unlink(missing_ok=True)
        return self.returncode

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        state = f"pid {self.pid} on {self.base_url}" if self.running() else "stopped"
        return f"<{type(self).__name__} {self.served_model!r} {state}>"


def check_models(url: str, served_model: str, *, timeout_s: float) -> tuple[bool, str]:
    """GET an OpenAI ``/v1/models`` URL: (True, "") when it lists ``served_model``, else
    (False, a short description of what came back)."""
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as resp:
            body = resp.read(_MAX_PROBE_BYTES + 1)
    except urllib.error.HTTPError as exc:
        return False, f"GET /v1/models: HTTP {exc.code}"
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        return False, f"GET /v1/models: {type(reason).__name__}: {reason}"
    if len(body) > _MAX_PROBE_BYTES:
        return False, "GET /v1/models: answer larger than 1 MiB"
    try:
        doc = json.loads(body)
        names = [m["id"] for m in doc["data"]]
    except (ValueError, KeyError, TypeError) as exc:
        shown = body[:80].decode("utf-8", errors="replace")
        return False, f"GET /v1/models: not an OpenAI model list ({exc!r}): {shown!r}"
    if served_model not in names:
        return False, f"GET /v1/models lists {names[:5]}, not {served_model!r}"
    return True, ""


class CommandEngine(ManagedEngine):
    """Any OpenAI-compatible server started by a command; ``{port}`` and ``{host}`` in its
    arguments are replaced. With ``port_pattern`` (a regex with the port as group 1) the command
    is given port 0 and the port is read from its log; without it a free port is chosen."""

    engine = "command"

    def __init__(
        self,
        command: Sequence[str],
        *,
        served_model: str,
        port_pattern: str | None = None,
        name: str = "command",
        **kwargs: Any,
    ) -> None:
        super().__init__(served_model=served_model, **kwargs)
        if not command:
            raise InvalidInputError("command must not be empty")
        self.command = list(command)
        self.port_pattern = port_pattern
        self.engine = name

    def argv(self, port: int) -> list[str]:
        """The command with ``{port}`` and ``{host}`` filled in."""
        return [a.replace("{port}", str(port)).replace("{host}", self.host) for a in self.command]
